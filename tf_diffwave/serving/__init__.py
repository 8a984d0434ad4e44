"""Exports: SavedModels for TF Serving, LiteRT models and the LiteRT runtime."""
