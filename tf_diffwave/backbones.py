"""The denoising networks a config can name (`model.backbone`); each meets the contract in family.py."""

import contextlib

import keras

from tf_diffwave.ar_sashimi import ArSashimiBackbone
from tf_diffwave.sashimi import SashimiBackbone
from tf_diffwave.wavegrad import WaveGradBackbone
from tf_diffwave.wavenet import WaveNetBackbone

BACKBONES = {"wavenet": WaveNetBackbone, "sashimi": SashimiBackbone, "wavegrad": WaveGradBackbone,
             "ar_sashimi": ArSashimiBackbone}


def backbone_config(config):
    """The model keys the configured backbone reads: the common `model.*` keys and its own `model.<name>.*`."""
    model = config["model"]
    common = {key: value for key, value in model.items() if not isinstance(value, dict)}
    return {**common, **model[model["backbone"]]}


def build_backbone(config, policy="float32"):
    """The backbone named by config key 'model.backbone', its layers computing under the Keras dtype policy
    `policy` ("float32", or "mixed_bfloat16" / "mixed_float16": float32 weights, reduced-precision arithmetic)."""
    with dtype_policy(policy):
        return BACKBONES[config["model"]["backbone"]](backbone_config(config), config["audio"])


@contextlib.contextmanager
def dtype_policy(policy):
    """Keras' global dtype policy set to `policy` inside the block and restored after it (layers take the policy
    that is current when they are built)."""
    saved = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(saved)


def tf32_allowed(config):
    """Whether GPU matmuls may use TF32, by config key `model.tf32`: "on", "off", or "auto" (off for backbones
    that lose accuracy to it)."""
    setting = config["model"]["tf32"]
    return setting == "on" or (setting == "auto" and not BACKBONES[config["model"]["backbone"]].wants_full_float32)
