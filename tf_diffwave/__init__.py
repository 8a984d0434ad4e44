"""tf-diffwave: diffusion waveform synthesis (DiffWave, WaveGrad, SaShiMi) in TensorFlow 2 / Keras 3."""

__all__ = ["load"]


def load(model_dir=None, precision="float32"):
    """Load a model folder (a training run, a bundle or a conversion; default: the bundled demo model) whose
    networks compute in `precision`: "float32", "bfloat16" (CPUs with AVX-512 BF16 or AMX), "float16" (GPUs) or
    "auto" (the fastest this CPU runs within the quality bound; `precision_choice` says which and why)."""
    from tf_diffwave.quiet import import_tensorflow

    import_tensorflow()  # on first use, not with the package, and without its start-up notices
    from tf_diffwave.inference.model import load as load_model

    return load_model(model_dir, precision)
