"""The lines that say, as a run goes, which step started and how it finished (as dbt and kedro do):

    cursus: [3/7] credit_risk::train started
    cursus: [3/7] credit_risk::train passed in 12.4s (peak 1.2 GB)

Written by the pytest plugin in its terminal (``plugin/live_lines.py``) and by the notebook API.
A finished step is a :class:`FinishedStep`, plain data, so an xdist worker can send it to the
controller on its test report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from pytest_cursus.results import StepResult

Reuse = Literal["cached", "shared"]


@dataclass(frozen=True)
class FinishedStep:
    """How one step ended, as the progress line shows it."""

    scenario: str
    step: str
    outcome: str  # passed, failed
    failure_kind: str | None
    wall_seconds: float
    peak_rss_bytes: int
    reuse: Reuse | None  # taken from the step cache: stored by an earlier run, or by this one
    as_setup: bool  # produced as the upstream of another item

    @classmethod
    def of(cls, result: StepResult, *, reuse: Reuse | None, as_setup: bool) -> FinishedStep:
        return cls(
            scenario=result.scenario,
            step=result.step,
            outcome=result.outcome,
            failure_kind=result.failure.kind if result.failure else None,
            wall_seconds=result.metrics.wall_seconds,
            peak_rss_bytes=result.metrics.peak_rss_bytes,
            reuse=reuse,
            as_setup=as_setup,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FinishedStep:
        return cls(**data)

    def line(self, number: str) -> str:
        setup = " (as setup)" if self.as_setup else ""
        if self.reuse is not None:
            return f"cursus: {number} {self.scenario}::{self.step} {self.reuse}{setup}"
        outcome = self.outcome if self.failure_kind is None else f"{self.outcome} ({self.failure_kind})"
        if self.wall_seconds <= 0:  # it never started: its data or a hook failed
            return f"cursus: {number} {self.scenario}::{self.step} {outcome}{setup}"
        measured = f"in {self.wall_seconds:.1f}s (peak {memory_text(self.peak_rss_bytes)})"
        return f"cursus: {number} {self.scenario}::{self.step} {outcome} {measured}{setup}"


def started_line(number: str, scenario: str, step: str, *, as_setup: bool) -> str:
    return f"cursus: {number} {scenario}::{step} started{' (as setup)' if as_setup else ''}"


def step_number(index: int, total: int) -> str:
    """``[3/7]``; ``[8]`` past the expected count (a step run again: another item reran it)."""
    return f"[{index}/{total}]" if 0 < index <= total else f"[{index}]"


def memory_text(size: int) -> str:
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.0f} MB"


class StepNumbers:
    """Numbers the steps of a run in the order they are first heard of; the same step keeps its number."""

    def __init__(self, total: int = 0) -> None:
        self.total = total
        self._numbers: dict[tuple[str, str], int] = {}

    def of(self, scenario: str, step: str) -> str:
        index = self._numbers.setdefault((scenario, step), len(self._numbers) + 1)
        return step_number(index, self.total)
