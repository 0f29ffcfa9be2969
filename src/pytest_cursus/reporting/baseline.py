"""Comparing a run with an earlier ``--cursus-json`` file: which steps got slower or hungrier.

A step regresses when its new value is more than ``ratio`` times the old one *and* grew by more
than an absolute floor, so tiny steps (10 ms -> 20 ms) never fail on noise.

    >>> thresholds = Thresholds()
    >>> compare_metrics(2.0, 3.5, 100 * 2**20, 110 * 2**20, thresholds, "old.json").regressed
    ['time']
"""

from __future__ import annotations

from typing import Literal

from pytest_cursus.reporting.regression_thresholds import Thresholds
from pytest_cursus.reporting.run_report import BaselineCheck, RunReport, StepRecord
from pytest_cursus.results import StepMetrics


def compare_metrics(
    old_wall: float, new_wall: float, old_peak: int, new_peak: int, thresholds: Thresholds, baseline_file: str
) -> BaselineCheck:
    time_ratio = _ratio(new_wall, old_wall)
    memory_ratio = _ratio(new_peak, old_peak)
    regressed: list[Literal["time", "memory"]] = []
    if time_ratio > thresholds.max_time_ratio and new_wall - old_wall > thresholds.min_time_increase_s:
        regressed.append("time")
    if memory_ratio > thresholds.max_memory_ratio and (new_peak - old_peak) / 2**20 > thresholds.min_memory_increase_mb:
        regressed.append("memory")
    return BaselineCheck(
        baseline_file=baseline_file,
        status="regressed" if regressed else "ok",
        old_wall_seconds=old_wall,
        new_wall_seconds=new_wall,
        time_ratio=time_ratio,
        old_peak_rss_bytes=old_peak,
        new_peak_rss_bytes=new_peak,
        memory_ratio=memory_ratio,
        regressed=regressed,
    )


def check_step(
    scenario: str,
    step: str,
    metrics: StepMetrics | None,
    *,
    cached: bool,
    baseline: RunReport,
    thresholds: Thresholds,
    baseline_file: str,
) -> BaselineCheck:
    """The comparison of one step of this run with the baseline's, or why it was not compared."""
    old = baseline.by_key().get((scenario, step))

    def not_compared(reason: str) -> BaselineCheck:
        return BaselineCheck(baseline_file=baseline_file, status="not_compared", reason=reason)

    if old is None or old.metrics is None:
        return not_compared("not in the baseline")
    if metrics is None:
        return not_compared("did not run")
    if cached:
        return not_compared("taken from the step cache: its numbers are not new (use --cursus-no-cache)")
    if old.cached:
        return not_compared("cached in the baseline run: no measurement to compare with")
    if old.failure is not None:
        return not_compared("failed in the baseline run")
    return compare_metrics(
        old.metrics.wall_seconds,
        metrics.wall_seconds,
        old.metrics.peak_rss_bytes,
        metrics.peak_rss_bytes,
        thresholds,
        baseline_file,
    )


def compare_runs(
    old: RunReport, new: RunReport, thresholds: Thresholds, baseline_file: str
) -> list[tuple[StepRecord, BaselineCheck]]:
    return [
        (
            step,
            check_step(
                step.scenario,
                step.step,
                step.metrics,
                cached=step.cached,
                baseline=old,
                thresholds=thresholds,
                baseline_file=baseline_file,
            ),
        )
        for step in new.steps
    ]


def describe_regression(check: BaselineCheck, thresholds: Thresholds) -> str:
    """``wall time 2.00s -> 3.50s (x1.75 > x1.5)``; one clause per regressed measure."""
    parts = []
    if "time" in check.regressed:
        parts.append(
            f"wall time {check.old_wall_seconds:.2f}s -> {check.new_wall_seconds:.2f}s "
            f"(x{check.time_ratio:.2f} > max x{thresholds.max_time_ratio:g})"
        )
    if "memory" in check.regressed:
        parts.append(
            f"peak memory {(check.old_peak_rss_bytes or 0) / 2**20:.0f} MB -> "
            f"{(check.new_peak_rss_bytes or 0) / 2**20:.0f} MB "
            f"(x{check.memory_ratio:.2f} > max x{thresholds.max_memory_ratio:g})"
        )
    return "; ".join(parts)


def _ratio(new: float, old: float) -> float:
    if old <= 0:
        return float("inf") if new > 0 else 1.0
    return new / old
