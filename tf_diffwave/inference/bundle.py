"""A run's newest EMA weights and config copied into a small inference-only model folder.

The result loads with `tf_diffwave.load(OUT_DIR)` and `infer.py --model-dir OUT_DIR`; the optimizer state and the
training weights are left behind (a quarter of the size of a training checkpoint).
"""

import os
import shutil

from tf_diffwave.atomic import whole_folder
from tf_diffwave.inference.model import load
from tf_diffwave.models.checkpoints import save_ema


def bundle(run_dir, out_dir):
    """Write <out_dir>/config.json and one checkpoint holding only the step and the EMA weights."""
    model = load(run_dir)
    with whole_folder(out_dir) as partial:
        shutil.copy(os.path.join(run_dir, "config.json"), os.path.join(partial, "config.json"))
        saved = save_ema(model.backbone.model, model.step, partial)
    return os.path.join(out_dir, os.path.basename(saved))
