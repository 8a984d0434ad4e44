"""The commands: one module per command, parsing and printing only (tf-diffwave is cli/main.py)."""
