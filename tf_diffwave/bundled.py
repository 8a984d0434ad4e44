"""Files shipped with tf-diffwave: the demo model, the digit classifier, the demo corpora and the configs. In a clone
they are in the repository; `pip install` puts them in <prefix>/share/tf-diffwave."""

import os
import sys

ROOTS = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.path.join(sys.prefix, "share", "tf-diffwave"))


def bundled(relative):
    """The path of a shipped file or folder (e.g. "checkpoints/demo"): in the clone, else in the installed share
    folder; the clone's path when neither has it."""
    for root in ROOTS:
        path = os.path.join(root, relative)
        if os.path.exists(path):
            return path
    return os.path.join(ROOTS[0], relative)
