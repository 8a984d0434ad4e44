"""python preprocess.py ARGS ...: the same as `tf-diffwave preprocess ARGS ...`"""

import sys

from tf_diffwave.cli.main import main

if __name__ == "__main__":
    main(["preprocess", *sys.argv[1:]])
