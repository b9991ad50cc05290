"""Typed errors raised by the library; only the CLI turns them into one-line messages."""

from __future__ import annotations


class PrefkitError(Exception):
    """Base class for errors a user can cause and fix; `exit_code` is what the CLI returns."""

    exit_code = 1


class InputError(PrefkitError):
    """A file the user gave is missing, unreadable or holds a bad record."""

    exit_code = 2

    def __init__(self, message: str, path: str | None = None, line: int | None = None, skippable: bool = False):
        self.path = path
        self.line = line
        self.skippable = skippable  # a bad line that a command's --skip-invalid could set aside
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")


class ConfigError(PrefkitError):
    """A config file or flag is invalid: unknown key, bad value, missing setting."""

    exit_code = 2


class MissingExtraError(PrefkitError):
    """An optional dependency group is not installed."""

    exit_code = 3

    def __init__(self, extra: str, module: str):
        super().__init__(f"this command needs '{module}', which is not installed: pip install 'prefkit[{extra}]'")


class TeacherError(PrefkitError):
    """The teacher endpoint refused or failed in a way retrying will not fix."""

    exit_code = 4


class FatalTeacherError(TeacherError):
    """A failure no retry can fix (bad key, unknown model, bad request): the run stops."""


class TrainingDiverged(PrefkitError):
    """The loss became NaN or infinite."""

    exit_code = 5


class OutputLocked(PrefkitError):
    """Another live prefkit process is writing the same output or run directory."""

    exit_code = 2


class ReviewPending(PrefkitError):
    """`prefkit run` pushed pairs to a review queue whose reviewers are not done yet: run again later."""

    exit_code = 6


class ServerError(PrefkitError):
    """A review server (Argilla, its Redis or its environment) could not be started, reached or used."""

    exit_code = 7
