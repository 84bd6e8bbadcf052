"""Errors a user can fix: the CLI prints their message on one line and exits non-zero."""


class UserError(Exception):
    """Bad input from the user; the message names the bad value and the fix."""
