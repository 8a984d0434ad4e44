"""Precompute log-mels: python preprocess.py --config CFG data.mel_dir=DIR"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_diffwave.cli import preprocess_main  # noqa: E402
from tf_diffwave.errors import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli(preprocess_main)
