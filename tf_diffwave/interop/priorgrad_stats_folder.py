"""The training-set statistics PriorGrad's preprocessing writes beside its data (no TensorFlow: the convert command
reads them before importing it)."""

import os

import numpy as np

from tf_diffwave.data.mel_files import load_npy
from tf_diffwave.errors import UserError

STATS_FOLDER = "stats_priorgrad"
STATS_FILES = {"energy_min": "energy_min_train.npy", "energy_max": "energy_max_train.npy"}


def read_statistics(stats_dir):
    """{'energy_min': float, 'energy_max': float} from PriorGrad's statistics files in `stats_dir` or in its
    `stats_priorgrad/` folder."""
    folder = os.path.join(stats_dir, STATS_FOLDER)
    folder = folder if os.path.isdir(folder) else stats_dir
    if not os.path.isdir(folder):
        raise UserError(f"{stats_dir}: statistics folder not found (give the folder holding {STATS_FOLDER}/, or "
                        f"energy_min= and energy_max=)")
    found = {}
    for key, name in STATS_FILES.items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise UserError(f"{path}: PriorGrad statistics file not found (or give {key}=VALUE)")
        try:
            value = load_npy(path)
        except Exception as err:
            raise UserError(f"{path}: not a readable .npy array ({err})") from None
        if value.size != 1 or not np.issubdtype(value.dtype, np.number) or not np.isfinite(value).all():
            raise UserError(f"{path}: expected one finite number, got an array of shape {value.shape}")
        found[key] = float(value.reshape(()))
    return found


def given_statistics(overrides):
    """The statistics keys that `key=value` overrides set (`energy_min=`, or spelt `diffusion.energy_min=`)."""
    return {text.split("=", 1)[0].strip().split(".")[-1] for text in overrides} & set(STATS_FILES)


def statistics_for(stats_dir, overrides):
    """The statistics read from `stats_dir`, unless the overrides give both (then None each: the overrides fill
    them in)."""
    if given_statistics(overrides) == set(STATS_FILES):
        return {key: None for key in STATS_FILES}
    return read_statistics(stats_dir)
