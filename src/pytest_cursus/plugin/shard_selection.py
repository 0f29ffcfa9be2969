"""``--cursus-shard I/N``: keep this runner's share of the collected items (run/sharding.py decides)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_cursus.plugin.items import ScenarioItem
from pytest_cursus.run.options import CursusOptions
from pytest_cursus.run.sharding import WorkItem, assign_units, durations_from_report, shard_loads, unit_weights


def select_shard(config: pytest.Config, options: CursusOptions, items: list[pytest.Item]) -> str | None:
    """Deselect the items of the other shards; the line to show, or None when not sharding."""
    shard = options.shard
    if shard is None:
        return None
    durations = {}
    if options.shard_durations is not None:
        try:
            durations = durations_from_report(options.shard_durations)
        except ValueError as exc:  # RunReportError: unreadable, another format or schema version
            raise pytest.UsageError(f"--cursus-shard-durations / cursus_shard_durations: {exc}") from None
    work = [_work_item(item, config.rootpath) for item in items]
    weights = unit_weights(work, durations)
    assigned = assign_units(weights, shard.count)
    kept = [item for item, unit in zip(items, work, strict=True) if assigned[unit.unit] == shard.index]
    dropped = [item for item, unit in zip(items, work, strict=True) if assigned[unit.unit] != shard.index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    loads = shard_loads(weights, assigned, shard.count)
    files = sum(1 for shard_index in assigned.values() if shard_index == shard.index)
    return (
        f"cursus: shard {shard}: {files} of {len(assigned)} files, {len(kept)} of {len(work)} items "
        f"(expected {loads[shard.index]:.1f}s of {sum(loads):.1f}s"
        f"{'' if durations else '; no --cursus-shard-durations: every step counted the same'})"
    )


def _work_item(item: pytest.Item, rootdir: Path) -> WorkItem:
    path = Path(item.path)
    try:
        unit = path.resolve().relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        unit = path.as_posix()
    if isinstance(item, ScenarioItem) and item.runs_the_step:
        return WorkItem(unit, (item.plan.name, getattr(item, "step", "")))
    return WorkItem(unit)
