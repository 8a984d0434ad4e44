"""tf-diffwave: diffusion waveform synthesis (DiffWave, WaveGrad, FreGrad, SaShiMi) in TensorFlow 2 / Keras 3."""

# the config sections other parts of the package own, registered with tf_diffwave.config before any config loads:
# the model families' (each family's package is imported when a config names it) and the digit classifier's. Neither
# imports TensorFlow.
from tf_diffwave.evaluation import classifier_section as _classifier_section  # noqa: F401
from tf_diffwave.models import registry as _registry  # noqa: F401

__all__ = ["load"]


def load(model_dir=None, precision="float32"):
    """Load a model folder (a training run, a bundle or a conversion; default: the bundled vocoder, FreGrad
    trained on a recorded voice at 16 kHz) whose networks compute in `precision`: "float32", "bfloat16" (CPUs with
    AVX-512 BF16 or AMX, TPUs), "float16" (GPUs) or "auto" (the reduced precisions this CPU has instructions
    for, tried on the model itself: the fastest within the quality bound is kept, and `precision_choice` says
    which and why). The sampler's arithmetic stays in float32. TensorFlow is imported on first use, not with the
    package, without its start-up notices."""
    from tf_diffwave.tensorflow_import import import_tensorflow

    import_tensorflow()
    from tf_diffwave.inference.model import load as load_model

    return load_model(model_dir, precision)
