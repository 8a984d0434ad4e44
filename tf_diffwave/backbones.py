"""The denoising networks a config can name (`model.backbone`). Each offers `denoiser`, `conditioner` (None for
unconditional models) and the training `model` chaining them; the diffusion core drives any of them."""

from tf_diffwave.sashimi import SashimiBackbone
from tf_diffwave.wavenet import Backbone as WaveNetBackbone


def build_backbone(config):
    """The backbone named by config key 'model.backbone'."""
    kind = {"wavenet": WaveNetBackbone, "sashimi": SashimiBackbone}[config["model"]["backbone"]]
    return kind(config["model"], config["audio"])
