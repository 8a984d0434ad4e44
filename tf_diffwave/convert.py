"""python -m tf_diffwave.convert FORMAT ...: the same as `tf-diffwave convert FORMAT ...` (the spelling earlier
versions documented)."""

import sys

from tf_diffwave.cli.main import main

if __name__ == "__main__":
    main(["convert", *sys.argv[1:]])
