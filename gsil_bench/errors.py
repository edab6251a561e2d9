"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user: a path, a record, a config key, a loss name.

    The message must say what is wrong and where (file, line, key) and what was expected.
    """


class TrainingError(RuntimeError):
    """Training cannot learn; the message names the loss, the step and the quantity."""


class NonFiniteLossError(TrainingError):
    """Training produced a NaN/inf loss (or gradient norm); carries the loss name, step and
    offending values."""


class StalledTrainingError(TrainingError):
    """The loss did not change and the weights did not move over the first optimizer steps."""
