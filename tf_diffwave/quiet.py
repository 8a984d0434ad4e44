"""TensorFlow imported without its start-up notices.

When first imported, TensorFlow's C++ runtime writes notices to file descriptor 2 before any Python logging setting
applies (oneDNN, CPU features, CUDA probing on machines without a GPU) that read like failures. They are sent to
/dev/null during that import only; nothing else is changed, so a TF_CPP_MIN_LOG_LEVEL the user sets still governs
every later message.
"""

import importlib
import os
import sys


def import_tensorflow():
    """The tensorflow module, imported with file descriptor 2 silenced if this is its first import (unless the user
    asked for TensorFlow's notices with TF_CPP_MIN_LOG_LEVEL=0)."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return importlib.import_module("tensorflow")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        return importlib.import_module("tensorflow")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
