"""tf-diffwave: DiffWave diffusion waveform synthesis in TensorFlow 2 / Keras 3."""

__all__ = ["load"]


def load(model_dir=None, precision="float32"):
    """Load a model folder (a training run, a bundle or a conversion; default: the bundled demo model) whose
    networks compute in `precision`: "float32", "bfloat16" (CPUs with AVX-512 BF16 or AMX) or "float16" (GPUs)."""
    from tf_diffwave.model_io import load as load_model  # TensorFlow is imported on first use, not with the package

    return load_model(model_dir, precision)
