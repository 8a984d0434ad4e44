"""tf-diffwave: DiffWave diffusion waveform synthesis in TensorFlow 2 / Keras 3."""

__all__ = ["load"]


def load(model_dir=None):
    """Load a model folder (a training run, a bundle or a conversion; default: the bundled demo model)."""
    from tf_diffwave.model_io import load as load_model  # TensorFlow is imported on first use, not with the package

    return load_model(model_dir)
