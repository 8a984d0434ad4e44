"""Copy a run's newest EMA weights and config into a small inference-only model folder.

usage: python -m tf_diffwave.bundle RUN_DIR OUT_DIR
The result loads with `tf_diffwave.load(OUT_DIR)` and `infer.py --model-dir OUT_DIR`; the optimizer state and the
training weights are left behind (a quarter of the size of a training checkpoint).
"""

import argparse
import os
import shutil

from tf_diffwave.errors import run_cli
from tf_diffwave.model_io import load, save_ema


def bundle(run_dir, out_dir):
    """Write <out_dir>/config.json and one checkpoint holding only the step and the EMA weights."""
    model = load(run_dir)
    os.makedirs(out_dir, exist_ok=True)
    shutil.copy(os.path.join(run_dir, "config.json"), os.path.join(out_dir, "config.json"))
    return save_ema(model.backbone.model, model.step, out_dir)


def main(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    print(f"wrote {bundle(args.run_dir, args.out_dir)}")


if __name__ == "__main__":
    run_cli(main)
