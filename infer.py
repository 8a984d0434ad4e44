"""python infer.py ARGS ...: the same as `tf-diffwave infer ARGS ...`"""

import sys

from tf_diffwave.cli.main import main

if __name__ == "__main__":
    main(["infer", *sys.argv[1:]])
