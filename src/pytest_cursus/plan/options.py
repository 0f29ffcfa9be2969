"""What the command line or ini adds to every scenario, apart from the resolver itself.

Its own module so the option table (run/options.py, imported at every pytest start) does not pull
in the scenario and contract file models, YAML and the resolver: a session without scenarios
never needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DEFAULT_TIMEOUT_S = 600.0
SOURCE_VARIANTS = ("synthetic", "local", "s3")
PIP_POLICIES = ("check", "strict", "allow")
PipPolicy = Literal["check", "strict", "allow"]


@dataclass(frozen=True)
class PlanOptions:
    """What the command line or ini adds to every scenario."""

    contracts: tuple[Path, ...] = ()
    scripts: tuple[Path, ...] = ()
    source: str = "synthetic"
    timeout: float = DEFAULT_TIMEOUT_S
    max_memory_mb: float | None = None
    execution: str | None = None  # overrides a scenario's own `execution:` URI
    execution_layout: str | None = None
    inputs_read_only: bool = False  # the scenario's and step's `inputs_read_only:` win
    pip: PipPolicy = "check"
