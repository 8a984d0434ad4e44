"""Model families: the contract (contract.py), the registry, shared layers, S4, and one package per family."""
