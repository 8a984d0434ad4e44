"""Vocode mels: python infer.py --mel LJ001-0001 [--model-dir DIR] [--steps fast|full]"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_diffwave.cli import infer_main  # noqa: E402
from tf_diffwave.errors import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli(infer_main)
