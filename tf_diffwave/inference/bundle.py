"""A run's newest EMA weights and config copied into a small inference-only model folder.

The result loads with `tf_diffwave.load(OUT_DIR)` and `infer.py --model-dir OUT_DIR`; the optimizer state and the
training weights are left behind (a quarter of the size of a training checkpoint).
"""

import os
import shutil

from tf_diffwave.inference.model import load
from tf_diffwave.models.checkpoints import save_ema


def bundle(run_dir, out_dir):
    """Write <out_dir>/config.json and one checkpoint holding only the step and the EMA weights."""
    model = load(run_dir)
    os.makedirs(out_dir, exist_ok=True)
    shutil.copy(os.path.join(run_dir, "config.json"), os.path.join(out_dir, "config.json"))
    return save_ema(model.backbone.model, model.step, out_dir)
