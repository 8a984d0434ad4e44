"""The error users see: one line that names the file or key and the problem."""

import sys


class UserError(Exception):
    """Bad input from the user (a file, a config key, a flag). Printed as one line, no traceback."""


def run_cli(main):
    """Run a command-line entry point, turning UserError into a one-line message and exit code 2."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
