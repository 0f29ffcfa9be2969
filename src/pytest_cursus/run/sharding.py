"""Splitting a session's items across N machines (``--cursus-shard I/N``, docs/deployment.md).

The unit is a collected file: a scenario file goes whole to one shard, so no step is separated
from its upstream steps (which would then run on two machines); a test module goes whole too. Units
are balanced by expected seconds, longest first onto the least loaded shard (LPT scheduling). Every
runner of a CI matrix computes the partition on its own, so it must depend on nothing a runner has
and another lacks: the collected files, and step durations from a file all runners are given
(``--cursus-shard-durations``, a ``--cursus-json`` report of an earlier full run), never a
runner's local cache.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STEP_SECONDS = 1.0  # a step no durations file knows, when the file knows none at all
# what running a step costs besides its recorded wall time: staging its inputs, starting its
# process, checking its outputs (about 0.2 s each on a 2-core machine, docs/benchmarks.md)
STEP_OVERHEAD_SECONDS = 0.2
OTHER_ITEM_SECONDS = 0.1  # an edge check, a contract check, a plain test: cheap beside a step
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    index: int  # from 0, as Kubernetes' JOB_COMPLETION_INDEX
    count: int

    @classmethod
    def parse(cls, value: str) -> Shard:
        found = _SHARD.fullmatch(value)
        if found is None:
            raise ValueError(f"expected I/N (shard I of N, 0 <= I < N, e.g. 0/4), got {value!r}")
        index, count = int(found[1]), int(found[2])
        if count < 1 or index >= count:
            raise ValueError(f"expected I/N with 0 <= I < N, got {value!r}")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class WorkItem:
    """What sharding needs of a collected item: its file and, for an item running a step, which."""

    unit: str  # the collected file, relative to the rootdir (the same on every runner)
    step: tuple[str, str] | None = None  # (scenario, step) when the item runs a step


def durations_from_report(path: Path) -> dict[tuple[str, str], float]:
    """Wall seconds of each (scenario, step) that ran in the ``--cursus-json`` report at ``path``."""
    from pytest_cursus.reporting.run_report import read_run_report  # pydantic: only when sharding

    report = read_run_report(path)
    return {
        step.key: step.metrics.wall_seconds for step in report.steps if step.metrics is not None and not step.cached
    }


def unit_weights(items: Iterable[WorkItem], durations: Mapping[tuple[str, str], float]) -> dict[str, float]:
    """Expected seconds of each unit: its steps' recorded durations (a step not recorded counts as
    the median recorded step) plus each step's overhead, and a little for every other item."""
    unknown_step = statistics.median(durations.values()) if durations else DEFAULT_STEP_SECONDS
    weights: dict[str, float] = {}
    for item in items:
        if item.step is None:
            seconds = OTHER_ITEM_SECONDS
        else:
            seconds = durations.get(item.step, unknown_step) + STEP_OVERHEAD_SECONDS
        weights[item.unit] = weights.get(item.unit, 0.0) + seconds
    return weights


def assign_units(weights: Mapping[str, float], count: int) -> dict[str, int]:
    """Each unit's shard: heaviest first onto the least loaded shard, ties broken by name and
    index, so that every runner computes the same partition."""
    loads = [0.0] * count
    assigned: dict[str, int] = {}
    for unit in sorted(weights, key=lambda name: (-weights[name], name)):
        shard = min(range(count), key=lambda index: (loads[index], index))
        assigned[unit] = shard
        loads[shard] += weights[unit]
    return assigned


def shard_loads(weights: Mapping[str, float], assigned: Mapping[str, int], count: int) -> list[float]:
    loads = [0.0] * count
    for unit, shard in assigned.items():
        loads[shard] += weights[unit]
    return loads
