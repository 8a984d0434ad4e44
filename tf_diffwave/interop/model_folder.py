"""Model folders for weights trained by other implementations: checked weight look-up in a PyTorch state dict,
assignment to a backbone, and the folder written as a training run would leave it."""

import logging
import os

import numpy as np
import tensorflow as tf

from tf_diffwave.atomic import whole_folder
from tf_diffwave.config import save_config, used_keys
from tf_diffwave.diffusion.schedules import Schedule, fitting_schedule, plain
from tf_diffwave.errors import UserError
from tf_diffwave.inference.model import load
from tf_diffwave.models.checkpoints import save_ema
from tf_diffwave.models.registry import build_backbone

logger = logging.getLogger(__name__)  # printed by the commands; silenced like any library's


class StateDict:
    """A PyTorch state dict whose tensors are taken once each, with their shapes checked; errors name `path`."""

    def __init__(self, state, path):
        self.unused, self.path = dict(state), path

    def take(self, key, shape):
        """The float32 array of `key`, which must have `shape`."""
        if key not in self.unused:
            raise UserError(f"{self.path}: the state dict has no key '{key}' (or it was used twice)")
        value = np.asarray(self.unused.pop(key))
        if value.shape != tuple(shape):
            raise UserError(f"{self.path}: '{key}' has shape {value.shape}, expected {tuple(shape)} for the model "
                            f"its config describes")
        return value.astype(np.float32)

    def shape(self, key):
        """The shape of `key`, which must be there (not yet taken)."""
        if key not in self.unused:
            raise UserError(f"{self.path}: the state dict has no key '{key}' (or it was used twice)")
        return tuple(np.shape(self.unused[key]))

    def weight_normed(self, key, shape):
        """The weight [out, ...] of a layer under torch.nn.utils.weight_norm (dim 0), from `weight_g` and
        `weight_v`: g v / ||v||, the norm over all axes but the first, computed in float64 and rounded once."""
        v = self.take(f"{key}.weight_v", shape).astype(np.float64)
        g = self.take(f"{key}.weight_g", (shape[0],) + (1,) * (len(shape) - 1)).astype(np.float64)
        norm = np.sqrt(np.sum(v * v, axis=tuple(range(1, len(shape))), keepdims=True))
        return (g * v / norm).astype(np.float32)

    def conv1d(self, key, out, inp, k=1, normed=False):
        """A Conv1d's weight [out, in, k] (weight-normed if `normed`) and bias as Keras' kernel [k, in, out] and
        bias."""
        weight = self.weight_normed(key, (out, inp, k)) if normed else self.take(f"{key}.weight", (out, inp, k))
        return {"kernel": weight.transpose(2, 1, 0), "bias": self.take(f"{key}.bias", (out,))}

    def linear(self, key, out, inp):
        """A Linear's weight [out, in] and bias as Keras' kernel [in, out] and bias."""
        return {"kernel": self.take(f"{key}.weight", (out, inp)).T, "bias": self.take(f"{key}.bias", (out,))}

    def check_all_used(self):
        """Raise UserError when some keys were not taken."""
        if self.unused:
            keys = sorted(self.unused)
            raise UserError(f"{self.path}: the state dict has keys the model its config describes does not use: "
                            f"{', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}")


def assign_weights(model, weights, path):
    """Set every variable of `model` from `weights` {layer name: {weight name: array}}."""
    flat = {f"{layer}/{name}": value for layer, values in weights.items() for name, value in values.items()}
    for variable in model.weights:
        if variable.path not in flat:
            raise UserError(f"{path}: nothing in the checkpoint for the model's variable '{variable.path}'")
        variable.assign(flat.pop(variable.path))
    if flat:
        raise UserError(f"{path}: converted weights without a place in the model: {', '.join(sorted(flat))}")


def fit_fast_schedule(diffusion, path):
    """Replace `diffusion.fast_schedule` (a converter's default) by one of the training schedule's own noise levels
    when it is noisier or less noisy than that schedule allows, and say so."""
    given = [float(b) for b in diffusion["fast_schedule"]]
    fitted = fitting_schedule(Schedule.from_config(diffusion), given, len(given))
    if fitted != given:
        logger.warning(f"{path}: the fast schedule {plain(given)} does not fit the checkpoint's training schedule "
                       f"({diffusion['num_steps']} steps, betas {diffusion['beta_start']:g} to "
                       f"{diffusion['beta_end']:g}); --steps fast takes {plain(fitted)}, its noise levels at "
                       f"{len(fitted)} evenly spaced steps")
        diffusion["fast_schedule"] = fitted


def write_model_folder(config, weights, step, out_dir, path, export=True):
    """Build the config's backbone, set its weights (None: keep the random initial ones, for measures that do not
    depend on them), write config.json, a checkpoint of them (as EMA weights) and, with `export`,
    export/<step>/; return the loaded model (tf_diffwave.load)."""
    if os.path.exists(os.path.join(out_dir, "config.json")) or tf.train.latest_checkpoint(out_dir) is not None:
        raise UserError(f"{out_dir}: already holds a model; convert into a new folder")
    fit_fast_schedule(config["diffusion"], path)
    backbone = build_backbone(config)
    if weights is not None:
        assign_weights(backbone.model, weights, path)
    with whole_folder(out_dir) as partial:
        save_config(used_keys(config), partial)
        save_ema(backbone.model, step, partial)
        if export:
            load(partial).export(os.path.join(partial, "export"))
    return load(out_dir)
