"""Copy a run's newest EMA weights and config into a small inference-only model folder.

usage: python -m tf_diffwave.bundle RUN_DIR OUT_DIR
The result loads with `tf_diffwave.load(OUT_DIR)` and `infer.py --model-dir OUT_DIR`; the optimizer state and the
training weights are left behind (a quarter of the size of a training checkpoint).
"""

import argparse
import os
import shutil

import tensorflow as tf

from tf_diffwave.errors import run_cli
from tf_diffwave.model_io import load


def bundle(run_dir, out_dir):
    """Write <out_dir>/config.json and one checkpoint holding only the step and the EMA weights."""
    model = load(run_dir)
    os.makedirs(out_dir, exist_ok=True)
    shutil.copy(os.path.join(run_dir, "config.json"), os.path.join(out_dir, "config.json"))
    step = tf.Variable(model.step, dtype=tf.int64)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(step=step, ema=model.backbone.model), out_dir,
                                         max_to_keep=1)
    return manager.save(checkpoint_number=model.step)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    print(f"wrote {bundle(args.run_dir, args.out_dir)}")


if __name__ == "__main__":
    run_cli(main)
