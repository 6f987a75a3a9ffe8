"""Exceptions that the CLI turns into a one-paragraph message and exit code 1."""


class UserError(Exception):
    """Invalid input from the user: a bad value, a missing file, an unknown name.

    The message names the value and the fix. The CLI prints it without a
    traceback.
    """


class DatasetError(UserError):
    """A dataset folder that cannot be read, paired or resolved."""


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded safely or does not fit the model."""


class ConfigError(UserError):
    """An unknown or invalid configuration key or value."""


class TrainingFailed(Exception):
    """A run that stopped on a numerical failure; the run record is written as failed."""

    def __init__(self, reason: str, epoch: int, step: int):
        super().__init__(f"{reason} at epoch {epoch}, step {step}")
        self.reason = reason
        self.epoch = epoch
        self.step = step
