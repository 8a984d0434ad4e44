"""The error users see: one line that names the file or key and the problem."""


class UserError(Exception):
    """Bad input from the user (a file, a config key, a flag). Printed as one line, no traceback."""
