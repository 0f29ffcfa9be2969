"""pytest-cursus: pipeline scripts as pytest items.

``run_scenario`` and ``run_step`` (the notebook API, ``notebook/api.py``) are imported on first
use, so ``import pytest_cursus`` (which pytest does for every run) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_cursus.version import __version__

__all__ = ["run_scenario", "run_step", "__version__"]

if TYPE_CHECKING:
    from pytest_cursus.notebook.api import run_scenario, run_step


def __getattr__(name: str) -> Any:
    if name in ("run_scenario", "run_step"):
        from pytest_cursus.notebook import api as notebook_api

        return getattr(notebook_api, name)
    raise AttributeError(f"module 'pytest_cursus' has no attribute {name!r}")
