"""tf-diffwave bundle: copy a run's EMA weights into a small inference-only model folder."""

import argparse

from tf_diffwave.cli.common import writable_folder
from tf_diffwave.config import load_run_config
from tf_diffwave.tensorflow_import import import_tensorflow


def main(argv=None, prog=None):
    """tf-diffwave bundle --model-dir RUN --out-dir OUT"""
    parser = argparse.ArgumentParser(prog=prog, description="Copy a run's newest EMA weights and its config into a "
                                                            "small model folder (no optimizer state).")
    parser.add_argument("--model-dir", required=True, help="the training run to bundle")
    parser.add_argument("--out-dir", required=True, help="the model folder to write")
    args = parser.parse_args(argv)
    load_run_config(args.model_dir)
    writable_folder(args.out_dir, "--out-dir")
    import_tensorflow()
    from tf_diffwave.inference.bundle import bundle

    print(f"wrote {bundle(args.model_dir, args.out_dir)}")
