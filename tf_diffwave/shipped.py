"""Files shipped with tf-diffwave: the bundled vocoders, the digit classifier, the demo corpora and the configs. In a
clone they are in the repository; `pip install` puts them in <prefix>/share/tf-diffwave."""

import os
import sys

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the folder holding tf_diffwave/: a clone
ROOTS = (PACKAGE_PARENT, os.path.join(sys.prefix, "share", "tf-diffwave"))


def shipped_path(relative):
    """The path of a shipped file or folder (e.g. "checkpoints/demo"): in the clone, else in the installed share
    folder; the clone's path when neither has it."""
    for root in ROOTS:
        path = os.path.join(root, relative)
        if os.path.exists(path):
            return path
    return os.path.join(ROOTS[0], relative)


# What commands and load() use by default: FreGrad trained on a recorded voice (configs/fregrad_allison_16k.json).
DEFAULT_MODEL_DIR = shipped_path(os.path.join("checkpoints", "fregrad-allison-16k"))
DEMO_CORPUS_DIR = shipped_path(os.path.join("data", "ljspeech-demo"))  # where utterance ids resolve last


def is_shipped_model(model_dir):
    """Whether `model_dir` is one of the model folders shipped in checkpoints/ (which commands must not change)."""
    shipped = os.path.abspath(shipped_path("checkpoints"))
    return os.path.commonpath([shipped, os.path.abspath(model_dir)]) == shipped


def existing_path(path):
    """`path` as given if it exists, else the shipped file or folder of that relative name (a config's
    "data/ljspeech-demo" outside the clone), else None."""
    for candidate in (path, shipped_path(path)):
        if path and os.path.exists(candidate):
            return candidate
    return None
