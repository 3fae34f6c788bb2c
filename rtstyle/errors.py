"""Exceptions the library raises; the CLI turns each into one line and an exit code.

Exit codes: 1 for runtime failures, 2 for bad input from the user, 130 for Ctrl-C, 143 for
SIGTERM.
"""


class RtstyleError(Exception):
    """Base class; `exit_code` tells the CLI how to exit."""

    exit_code = 1


class UserInputError(RtstyleError):
    """Something the user gave us is wrong: a path, a name, an option value."""

    exit_code = 2


class UnknownStyleError(UserInputError):
    def __init__(self, name: str, valid: list[str], suggestions: list[str] | None = None):
        self.name = name
        self.valid = valid
        self.suggestions = suggestions or []
        choices = ", ".join(valid) if valid else "(none installed; see `rtstyle styles`)"
        guess = " or ".join(f"'{s}'" for s in self.suggestions)
        super().__init__(f"unknown style '{name}'; "
                         + (f"did you mean {guess}? " if guess else "")
                         + f"choose from: {choices}")


class WeightsError(UserInputError):
    """A weights file is missing, corrupt, of the wrong architecture or unsafe to load."""


class MediaError(UserInputError):
    """An input image or video is missing, unreadable or has no usable stream."""


class OutputExistsError(UserInputError):
    """The output exists and `--overwrite` was not given."""


class DeviceError(UserInputError):
    """The requested device (e.g. cuda) is not available."""


class OutputUnavailableError(UserInputError):
    """The requested output cannot be opened here (no display for a window, no virtual camera
    driver); checked before the model warms up."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (docker stop, systemd, `kill`), handled as Ctrl-C: the output so far is
    finalized, then the process exits with 143."""


class BackendUnavailableError(RtstyleError):
    """An inference backend cannot be built on this machine (missing extra, wrong device)."""
