"""The user errors: what a stage reports as one ``error: …`` line (exit status 2) instead of a
traceback. Each names the key or file at fault and what is allowed; all are raised before any
compute or output, so a failed stage leaves nothing half-written.

They live in this dependency-free module so that any layer (config, data, report, command line)
can raise or catch them without importing the training stack.
"""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A bad parameter; the message is one line naming the key, the value and what is allowed."""


class DataError(Exception):
    """A dataset could not be found, fetched or parsed.

    The message says what was looked for, where, and how to get it.
    """


class InputError(ValueError):
    """A missing or incompatible input file; one line, names the file."""


USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, DataError, InputError)


def require_file(path: Path, made_by: str) -> None:
    """Fail with the stage that makes ``path`` when it is missing."""
    if not path.is_file():
        raise InputError(f"{path}: not found; it is made by the {made_by} stage (dvc repro)")
