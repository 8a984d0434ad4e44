"""python train.py ARGS ...: the same as `tf-diffwave train ARGS ...`"""

import sys

from tf_diffwave.cli.main import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
