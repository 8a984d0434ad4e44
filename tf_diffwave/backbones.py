"""The denoising networks a config can name (`model.backbone`); each meets the contract in family.py."""

from tf_diffwave.sashimi import SashimiBackbone
from tf_diffwave.wavenet import WaveNetBackbone

BACKBONES = {"wavenet": WaveNetBackbone, "sashimi": SashimiBackbone}


def build_backbone(config):
    """The backbone named by config key 'model.backbone'."""
    return BACKBONES[config["model"]["backbone"]](config["model"], config["audio"])


def tf32_allowed(config):
    """Whether GPU matmuls may use TF32, by config key `model.tf32`: "on", "off", or "auto" (off for backbones
    that lose accuracy to it)."""
    setting = config["model"]["tf32"]
    return setting == "on" or (setting == "auto" and not BACKBONES[config["model"]["backbone"]].wants_full_float32)
