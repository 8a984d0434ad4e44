"""Audio I/O, mel features, corpora and training input pipelines."""
