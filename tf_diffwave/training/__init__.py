"""The training loop: the trainer, distribution strategies, TensorBoard summaries."""
