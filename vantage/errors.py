"""Errors the command line turns into one line and exit code 2."""


class UsageError(Exception):
    """A bad flag, option or target: printed as one line, exit code 2, no traceback."""
