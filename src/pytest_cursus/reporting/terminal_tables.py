"""The end-of-session tables: one per scenario, aligned to fit 100 columns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pytest_cursus.reporting.baseline import describe_regression
from pytest_cursus.reporting.regression_thresholds import Thresholds
from pytest_cursus.reporting.run_report import ScriptlessNode, StepRecord

WIDTH = 100
_COLUMNS = (
    ("outcome", 7, "<"),
    ("cached", 6, "<"),
    ("wall", 8, ">"),
    ("CPU", 8, ">"),
    ("peak MB", 8, ">"),
    ("rows out", 13, ">"),
)
_GAP = "  "


def by_scenario(records: Iterable[StepRecord]) -> dict[tuple[str, str], list[StepRecord]]:
    """Records grouped by (scenario file, scenario name), in the order they were first seen."""
    groups: dict[tuple[str, str], list[StepRecord]] = {}
    for record in records:
        groups.setdefault((record.scenario_file, record.scenario), []).append(record)
    return groups


def scenario_table(records: Sequence[StepRecord], width: int = WIDTH) -> list[str]:
    fixed = sum(size for _, size, _ in _COLUMNS) + len(_GAP) * len(_COLUMNS)
    step_width = max(12, min(width - fixed, max([len(_step_label(r)) for r in records] + [4])))
    header = f"{'step':<{step_width}}" + "".join(f"{_GAP}{title:{align}{size}}" for title, size, align in _COLUMNS)
    lines = [header, "-" * len(header)]
    for record in records:
        cells = (
            record.outcome,
            "cached" if record.cached else "",
            _seconds(record.metrics.wall_seconds) if record.metrics else "-",
            _seconds(record.metrics.cpu_seconds) if record.metrics else "-",
            f"{record.metrics.peak_rss_mb:.1f}" if record.metrics else "-",
            f"{record.rows_out:,}" if record.rows_out is not None else "-",
        )
        lines.append(
            f"{_fit(_step_label(record), step_width):<{step_width}}"
            + "".join(
                f"{_GAP}{_fit(cell, size):{align}{size}}"
                for cell, (_, size, align) in zip(cells, _COLUMNS, strict=True)
            )
        )
    ran = [r.metrics for r in records if r.metrics is not None and not r.cached]
    if len(records) > 1 and ran:
        total = (
            f"{'total (ran now)':<{step_width}}{_GAP}{'':7}{_GAP}{'':6}"
            f"{_GAP}{_seconds(sum(m.wall_seconds for m in ran)):>8}"
        )
        total += f"{_GAP}{_seconds(sum(m.cpu_seconds for m in ran)):>8}{_GAP}{max(m.peak_rss_mb for m in ran):>8.1f}"
        lines += ["-" * len(header), total]
    return lines


def summary_lines(
    records: Sequence[StepRecord],
    *,
    verbose: bool,
    thresholds: Thresholds | None = None,
    scriptless: Sequence[ScriptlessNode] = (),
) -> list[str]:
    lines: list[str] = []
    for (scenario_file, scenario), group in by_scenario(records).items():
        lines += ["", f"scenario {scenario} ({scenario_file})", *scenario_table(group)]
        setup_only = [r.step for r in group if r.as_setup]
        if setup_only:
            lines.append(f"(run only as setup of selected items: {', '.join(setup_only)})")
        lines += scriptless_lines([n for n in scriptless if (n.scenario_file, n.scenario) == (scenario_file, scenario)])
    lines += why_lines(records)
    noted = [(record, note) for record in records for note in record.notes]
    if noted:
        lines += ["", "notes (what a SageMaker container would allow, or do differently):"]
        lines += [f"  {record.scenario}::{record.step}: {note}" for record, note in noted]
    regressions = [r for r in records if r.baseline is not None and r.baseline.status == "regressed"]
    if regressions:
        lines += ["", f"baseline regressions (against {regressions[0].baseline.baseline_file}):"]  # type: ignore[union-attr]
        for record in regressions:
            lines.append(
                f"  {record.scenario}::{record.step}: "
                f"{describe_regression(record.baseline, thresholds or Thresholds())}"
            )  # type: ignore[arg-type]
    uncompared = [r for r in records if r.baseline is not None and r.baseline.status == "not_compared"]
    if uncompared:  # a green run says nothing of these steps: say that they were not checked
        by_reason: dict[str, list[str]] = {}
        for record in uncompared:
            reason = record.baseline.reason or "no reason recorded"  # type: ignore[union-attr]
            by_reason.setdefault(reason, []).append(f"{record.scenario}::{record.step}")
        baseline_file = uncompared[0].baseline.baseline_file  # type: ignore[union-attr]
        lines += ["", f"{len(uncompared)} step(s) not compared with the baseline {baseline_file}:"]
        lines += [f"  {len(steps)} {reason}: {', '.join(steps)}" for reason, steps in by_reason.items()]
    hints = [(r, hint) for r in records for hint in r.recommendations]
    if hints and verbose:
        lines += ["", "recommendations:"]
        lines += [f"  {record.scenario}::{record.step}: {hint.message}" for record, hint in hints]
    elif hints:
        lines += [
            "",
            f"{len(hints)} recommendation(s) for {len({r.key for r, _ in hints})} step(s): run with -v to see them",
        ]
    return lines


def why_lines(records: Sequence[StepRecord]) -> list[str]:
    """Why each step ran (the key parts changed since its last cache entry), and which cached steps
    an upstream step that ran again left cached (it wrote the same outputs: early cutoff). Nothing
    when every step that ran was simply not in the cache, as in a first run."""
    ran = {record.key for record in records if record.metrics is not None and not record.cached}
    lines = []
    for record in records:
        if record.run_reason and record.key in ran:
            lines.append(f"  {record.scenario}::{record.step}: ran: {record.run_reason}")
        elif record.cached and any((record.scenario, upstream) in ran for upstream in record.upstream):
            reran = [upstream for upstream in record.upstream if (record.scenario, upstream) in ran]
            lines.append(f"  {record.scenario}::{record.step}: cached: inputs unchanged though {', '.join(reran)} ran")
    if all(line.endswith(": ran: not in cache") for line in lines):
        return []
    return ["", "why steps ran (key parts changed since the step's last cache entry):", *lines]


def scriptless_lines(nodes: Sequence[ScriptlessNode]) -> list[str]:
    """One line per DAG node that runs no script, with why: the data sources and the nodes not run."""
    lines = []
    for node in nodes:
        if node.role == "data source":
            lines.append(f"data source  {node.node}: {node.reason}; read by {', '.join(node.read_by)} from data:")
        else:
            lines.append(f"not run      {node.node}: {node.reason}")
    return lines


def _step_label(record: StepRecord) -> str:
    return record.step + (" (setup)" if record.as_setup else "")


def _seconds(value: float) -> str:
    if value < 10:
        return f"{value:.2f}s"
    if value < 600:
        return f"{value:.1f}s"
    return f"{value / 60:.1f}min"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
