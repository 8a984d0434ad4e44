"""python -m tf_diffwave.bench ...: the same as `tf-diffwave bench ...`."""

import sys

from tf_diffwave.cli.main import main

main(["bench", *sys.argv[1:]])
