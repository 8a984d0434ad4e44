"""Trained models: load(), the model object, checkpoint I/O, bundles."""
