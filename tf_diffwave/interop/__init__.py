"""Checkpoints of other implementations: the torch.save reader, format detection, one converter per format."""
