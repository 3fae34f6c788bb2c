"""Exceptions the library raises; `cli.py` turns each into one line and an exit code.

Exit codes: 1 for runtime failures, 2 for bad input from the user, 130 for an interruption.
"""


class RtstyleError(Exception):
    """Base class; `exit_code` tells the CLI how to exit."""

    exit_code = 1


class UserInputError(RtstyleError):
    """Something the user gave us is wrong: a path, a name, an option value."""

    exit_code = 2


class UnknownStyleError(UserInputError):
    def __init__(self, name: str, valid: list[str]):
        self.name = name
        self.valid = valid
        choices = ", ".join(valid) if valid else "(none installed; see `rtstyle styles`)"
        super().__init__(f"unknown style '{name}'; choose from: {choices}")


class WeightsError(UserInputError):
    """A weights file is missing, corrupt, of the wrong architecture or unsafe to load."""


class MediaError(UserInputError):
    """An input image or video is missing, unreadable or has no usable stream."""


class OutputExistsError(UserInputError):
    """The output exists and `--overwrite` was not given."""


class DeviceError(UserInputError):
    """The requested device (e.g. cuda) is not available."""


class BackendUnavailableError(RtstyleError):
    """An inference backend cannot be built on this machine (missing extra, wrong device)."""
