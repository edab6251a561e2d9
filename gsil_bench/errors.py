"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user: a path, a record, a config key, a loss name.

    The message must say what is wrong and where (file, line, key) and what was expected.
    """


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; carries the loss name, step and offending values."""
