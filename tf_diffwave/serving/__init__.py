"""Exports: SavedModels for TF Serving, LiteRT models and the LiteRT runtime, and the choice of precision="auto"."""
