"""tf-diffwave: DiffWave diffusion waveform synthesis in TensorFlow 2 / Keras 3."""

from tf_diffwave.model_io import load

__all__ = ["load"]
