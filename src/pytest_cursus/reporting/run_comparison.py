"""Text for ``cursus-runtime compare`` and ``trend``, and the data of the trend chart."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_cursus.reporting.baseline import compare_runs
from pytest_cursus.reporting.regression_thresholds import Thresholds
from pytest_cursus.reporting.run_report import BaselineCheck, RunReport, StepRecord
from pytest_cursus.reporting.svg_charts import sparkline

TREND_TABLE_RUNS = 6  # runs shown as numbers; the sparkline covers all of them


def comparison_lines(
    old: RunReport, new: RunReport, thresholds: Thresholds, baseline_file: str
) -> tuple[list[str], int]:
    """The table of every step of ``new`` against ``old``, and how many regressed."""
    pairs = compare_runs(old, new, thresholds, baseline_file)
    name_width = max([len(_name(s)) for s, _ in pairs] + [4])
    header = (
        f"{'step':<{name_width}}  {'wall old':>9} {'wall new':>9} {'ratio':>6}  "
        f"{'peak old':>9} {'peak new':>9} {'ratio':>6}  verdict"
    )
    lines = [header, "-" * len(header)]
    regressed = 0
    for step, check in pairs:
        regressed += check.status == "regressed"
        lines.append(f"{_name(step):<{name_width}}  {_cells(check)}  {_verdict(check)}")
    missing = sorted(set(old.by_key()) - set(new.by_key()))
    if missing:
        lines.append(f"in the old run only: {', '.join(f'{s}::{t}' for s, t in missing)}")
    lines.append(
        f"thresholds: time x{thresholds.max_time_ratio:g} (and +{thresholds.min_time_increase_s:g}s), "
        f"memory x{thresholds.max_memory_ratio:g} (and +{thresholds.min_memory_increase_mb:g} MB)"
    )
    return lines, regressed


def trend_series(reports: Sequence[RunReport]) -> dict[str, tuple[list[float | None], list[float | None]]]:
    """``scenario::step`` -> (wall seconds per run, peak MB per run); None where a run lacks it
    or took it from the cache (a cached step's numbers are an older run's)."""
    names: list[str] = []
    for report in reports:
        for step in report.steps:
            if _name(step) not in names:
                names.append(_name(step))
    series: dict[str, tuple[list[float | None], list[float | None]]] = {}
    for name in names:
        walls: list[float | None] = []
        peaks: list[float | None] = []
        for report in reports:
            found = next((s for s in report.steps if _name(s) == name), None)
            metrics = found.metrics if found is not None and not found.cached else None
            walls.append(metrics.wall_seconds if metrics else None)
            peaks.append(metrics.peak_rss_mb if metrics else None)
        series[name] = (walls, peaks)
    return series


def trend_lines(reports: Sequence[RunReport], labels: Sequence[str]) -> list[str]:
    series = trend_series(reports)
    shown = list(range(len(reports)))[-TREND_TABLE_RUNS:]
    name_width = max([len(n) for n in series] + [4])
    runs = "".join(f" {_fit(labels[i], 10):>10}" for i in shown)
    header = f"{'step':<{name_width}}  {'measure':<8}{runs}  trend"
    lines = [header, "-" * len(header)]
    if len(reports) > len(shown):
        lines.insert(0, f"(last {len(shown)} of {len(reports)} runs as numbers; the trend covers all)")
    for name, (walls, peaks) in series.items():
        for measure, values, fmt in (("wall s", walls, "{:.2f}"), ("peak MB", peaks, "{:.1f}")):
            cells = "".join(f" {'-' if values[i] is None else fmt.format(values[i]):>10}" for i in shown)
            lines.append(
                f"{name if measure == 'wall s' else '':<{name_width}}  {measure:<8}{cells}  {sparkline(values)}"
            )
    return lines


def _name(step: StepRecord) -> str:
    return f"{step.scenario}::{step.step}"


def _cells(check: BaselineCheck) -> str:
    if check.status == "not_compared":
        return f"{'-':>9} {'-':>9} {'':>6}  {'-':>9} {'-':>9} {'':>6}"
    return (
        f"{check.old_wall_seconds:>8.2f}s {check.new_wall_seconds:>8.2f}s {_ratio(check.time_ratio)}  "
        f"{(check.old_peak_rss_bytes or 0) / 2**20:>6.1f} MB {(check.new_peak_rss_bytes or 0) / 2**20:>6.1f} MB "
        f"{_ratio(check.memory_ratio)}"
    )


def _verdict(check: BaselineCheck) -> str:
    if check.status == "regressed":
        return "REGRESSED (" + ", ".join(check.regressed) + ")"
    if check.status == "not_compared":
        return f"not compared: {check.reason}"
    return "ok"


def _ratio(value: float | None) -> str:
    return f"{'x' + format(value, '.2f') if value is not None else '':>6}"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]
