"""What configs of S4 networks (the SaShiMi families) must satisfy, checked without TensorFlow."""

import math

from tf_diffwave.errors import UserError


def check_s4_clip(config, section):
    """The pooling of `model.<section>` divides the clip, and S4 kernels set to a fixed length (`s4_length`) cover
    it."""
    model, own = config["model"], config["model"][section]
    total = math.prod(own["pool"])
    if model["audio_length"] % total:
        raise UserError(f"config key 'model.audio_length' = {model['audio_length']} must be a multiple of the "
                        f"product of 'model.{section}.pool' ({total})")
    if own["s4_length"] is not None and own["s4_length"] < model["audio_length"]:
        raise UserError(f"config key 'model.{section}.s4_length' = {own['s4_length']} must be at least "
                        f"'model.audio_length' ({model['audio_length']})")
