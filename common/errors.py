"""Errors a user can fix: the CLI prints their message on one line and exits non-zero."""


class UserError(Exception):
    """Bad input from the user; the message names the bad value and the fix."""


class BadArgument(UserError, ValueError):
    """A bad argument to a library call: one line at the command line like any UserError, and a
    ValueError to Python code that calls the library and catches that."""
