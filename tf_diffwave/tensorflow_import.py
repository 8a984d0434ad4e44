"""TensorFlow imported without its start-up notices.

When first imported and when it first looks for devices, TensorFlow's C++ runtime writes notices to file descriptor 2
before any Python logging setting applies (oneDNN, CPU features, "failed call to cuInit" on machines without a GPU)
that read like failures. Both are done here with that descriptor sent to /dev/null, and only then; nothing else is
changed, so a TF_CPP_MIN_LOG_LEVEL the user sets still governs every later message.
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
        tensorflow = importlib.import_module("tensorflow")
        tensorflow.config.list_physical_devices()  # the device probe, which reports a missing GPU as an error
        return tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
