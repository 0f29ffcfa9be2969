"""Errors raised for bad user input: each names the file, the line and the field; and telling a
full disk from other failures, wherever it surfaces."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceLocation:
    """Where in a user's file a problem is: shown as ``path:line: field:``."""

    path: Path
    line: int | None = None
    field: str | None = None

    def prefix(self, root: Path | None = None) -> str:
        shown = _relative(self.path, root)
        head = f"{shown}:{self.line}" if self.line else shown
        return f"{head}: {self.field}" if self.field else head


class CursusError(Exception):
    """Base class: the message is meant for the user as it is, no traceback needed."""


class ConfigError(CursusError):
    """A scenario or contract file is invalid."""

    def __init__(self, message: str, location: SourceLocation | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(self.render())

    def render(self, root: Path | None = None) -> str:
        if self.location is None:
            return self.message
        return f"{self.location.prefix(root)}: {self.message}"


class ConfigErrors(CursusError):
    """Several problems found in one file, reported together so the user fixes them in one go."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__(self.render())

    def render(self, root: Path | None = None) -> str:
        return "\n".join(error.render(root) for error in self.errors)


class DataSourceError(CursusError):
    """A data source could not be materialised (missing file, infeasible synthetic spec...)."""


class MissingExtra(CursusError):
    """A feature needs a package of an optional extra that is not installed (pyproject.toml's
    ``[project.optional-dependencies]``: ``s3``, ``fuzz``, ``html``, ``xdist``)."""

    def __init__(self, module: str, extra: str, feature: str) -> None:
        self.module, self.extra = module, extra
        super().__init__(f"{feature} needs {module}, which is not installed: pip install 'pytest-cursus[{extra}]'")

    @classmethod
    def check(cls, module: str, extra: str, feature: str) -> None:
        """Raise when ``module`` cannot be imported; cheap (no import), so callable before each use."""
        from importlib.util import find_spec

        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):  # a broken installation is as good as none
            found = False
        if not found:
            raise cls(module, extra, feature)


_NO_SPACE_TEXT = os.strerror(errno.ENOSPC)  # "No space left on device"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from or while handling, says the disk is full.

    By errno (``ENOSPC``), or by text where the errno was lost on the way: ``shutil.copytree``
    gathers its failures into one ``shutil.Error`` of messages, and libraries (pyarrow, polars)
    put the system's message into their own exceptions.
    """
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (isinstance(current, OSError) and current.errno == errno.ENOSPC) or _NO_SPACE_TEXT in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)
