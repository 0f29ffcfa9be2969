"""HTML pieces of the pytest-html report: a step's details and each scenario's summary block.

Everything is inline (SVG, CSS) and escaped; nothing refers to another file or host, so the
report stays self-contained.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from pytest_cursus.reporting.baseline import describe_regression
from pytest_cursus.reporting.regression_thresholds import Thresholds
from pytest_cursus.reporting.run_report import ReportedStep, ScriptlessNode, StepRecord
from pytest_cursus.reporting.svg_charts import DagNode, dag_svg, memory_chart_svg
from pytest_cursus.reporting.terminal_tables import by_scenario

if TYPE_CHECKING:
    from pytest_cursus.data.profile_comparison import ColumnCells, ProfileComparison

LOG_OPEN_LINES = 20  # logs longer than this start collapsed

STYLE = """
<style>
.cursus-summary h3 { margin: 18px 0 6px; }
.cursus-charts { display: flex; flex-wrap: wrap; gap: 8px; }
.cursus-details table.cursus-metrics, .cursus-profile table.cursus-metrics { border-collapse: collapse; margin: 6px 0; }
.cursus-details table.cursus-metrics td, .cursus-details table.cursus-metrics th,
.cursus-profile table.cursus-metrics td, .cursus-profile table.cursus-metrics th {
  border: 1px solid #ddd; padding: 2px 8px; text-align: left; font-size: 12px; }
.cursus-details pre { background: #f6f6f6; padding: 6px; max-height: 480px; overflow: auto; white-space: pre-wrap; }
.cursus-failure { color: #c62828; }
.cursus-hint { color: #8a5300; }
.cursus-dag-box { overflow-x: auto; }
.cursus-profile td.cursus-differs { background: #fdecea; font-weight: bold; }
.cursus-profile td.cursus-absent { color: #888; }
</style>
"""


def step_cells(record: StepRecord | None) -> tuple[str, str, str]:
    """Wall, peak memory and cache cells of the results table (empty for non-step items)."""
    if record is None:
        return ("", "", "")
    if record.metrics is None:
        return ("-", "-", "")
    metrics = record.metrics
    return (f"{metrics.wall_seconds:.2f} s", f"{metrics.peak_rss_mb:.1f} MB", "cached" if record.cached else "ran")


def step_details(record: ReportedStep, thresholds: Thresholds | None = None) -> str:
    parts = [f'<div class="cursus-details" data-step="{escape(record.step)}">']
    if record.failure is not None:
        parts.append(
            f'<p class="cursus-failure"><b>{escape(record.failure.kind)}</b>: {escape(record.failure.message)}</p>'
        )
        if record.failure.script_traceback:
            parts.append(f"<h4>Script traceback</h4><pre>{escape(record.failure.script_traceback)}</pre>")
    if record.skip_reason:
        parts.append(f"<p>{escape(record.skip_reason)}</p>")
    if record.baseline is not None and record.baseline.status == "regressed":
        parts.append(
            '<p class="cursus-failure">baseline regression: '
            f"{escape(describe_regression(record.baseline, thresholds or Thresholds()))}</p>"
        )
    if record.metrics is not None:  # its memory chart is in the summary, with the scenario's others
        parts.append(_metrics_table(record))
    if record.recommendations:
        parts.append("<h4>Recommendations</h4><ul>")
        parts += [f'<li class="cursus-hint">{escape(hint.message)}</li>' for hint in record.recommendations]
        parts.append("</ul>")
    if record.outputs:
        parts.append(_outputs(record))
    if record.env:
        rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in sorted(record.env.items()))
        parts.append(
            f"<details><summary>Environment ({len(record.env)})</summary>"
            f'<table class="cursus-metrics">{rows}</table></details>'
        )
    for label, text in (("stdout", record.stdout_excerpt), ("stderr", record.stderr_excerpt)):
        parts.append(_log(label, text, record))
    if record.workspace:
        parts.append(f"<p>Workspace: <code>{escape(record.workspace)}</code></p>")
    parts.append("</div>")
    return "".join(parts)


def summary_block(
    records: Sequence[StepRecord],
    comparisons: Sequence[ProfileComparison] = (),
    scriptless: Sequence[ScriptlessNode] = (),
) -> str:
    """Per scenario: the DAG coloured by outcome (with a DAG scenario's data-source nodes and nodes not
    run), memory-over-time charts, recommendations and the synthetic-vs-real profiles of its real data."""
    parts = [STYLE, '<div class="cursus-summary"><h2>Pipeline steps</h2>']
    profiles: dict[tuple[str, str], list[ProfileComparison]] = {}
    for comparison in comparisons:
        profiles.setdefault((comparison.scenario_file or "", comparison.scenario), []).append(comparison)
    for (scenario_file, scenario), group in by_scenario(
        sorted(records, key=lambda r: (r.scenario_file, r.position))
    ).items():
        parts.append(f'<div class="cursus-scenario" data-scenario="{escape(scenario)}">')
        parts.append(f"<h3>Scenario {escape(scenario)} <small>({escape(scenario_file)})</small></h3>")
        nodes = dag_nodes(group, [n for n in scriptless if (n.scenario_file, n.scenario) == (scenario_file, scenario)])
        parts.append(f'<div class="cursus-dag-box">{dag_svg(nodes, title=f"DAG of {scenario}")}</div>')
        charts = [
            memory_chart_svg(
                r.metrics.memory_series,
                title=f"{r.step}{' (cached)' if r.cached else ''}",
                wall_seconds=r.metrics.wall_seconds,
                peak_bytes=r.metrics.peak_rss_bytes,
                limit_bytes=int(r.max_memory_mb * 2**20) if r.max_memory_mb else None,
            )
            for r in group
            if r.metrics is not None
        ]
        if charts:
            parts.append(f'<h4>Memory over time</h4><div class="cursus-charts">{"".join(charts)}</div>')
        hints = [(r, hint) for r in group for hint in r.recommendations]
        if hints:
            parts.append("<h4>Recommendations</h4><ul>")
            parts += [
                f'<li class="cursus-hint"><b>{escape(r.step)}</b>: {escape(hint.message)}</li>' for r, hint in hints
            ]
            parts.append("</ul>")
        parts += [profile_comparison(comparison) for comparison in profiles.pop((scenario_file, scenario), [])]
        parts.append("</div>")
    for (scenario_file, scenario), left in profiles.items():  # no step record of that scenario (rare)
        parts.append(
            f'<div class="cursus-scenario" data-scenario="{escape(scenario)}">'
            f"<h3>Scenario {escape(scenario)} <small>({escape(scenario_file)})</small></h3>"
        )
        parts += [profile_comparison(comparison) for comparison in left]
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


_DIFFERS = ' class="cursus-differs"'
# the cells of each side that show a kind of difference (0 type, 1 null rate, 2 range or values);
# a column on one side only is marked by its "absent" cell
_DIFFERING_CELLS = {
    "dtype": (0,),
    "null_rate": (1,),
    "range": (2,),
    "categories": (2,),
    "only_synthetic": (),
    "only_real": (),
}


def profile_comparison(comparison: ProfileComparison) -> str:
    """Synthetic and real data side by side: per column the type, null rate and range or value
    set of each side, differing cells marked, then what to change in the synthetic spec."""
    read_by = f" <small>(input of step {escape(comparison.step)})</small>" if comparison.step else ""
    parts = [
        f'<div class="cursus-profile" data-subject="{escape(comparison.subject)}">'
        f"<h4>Synthetic vs real: {escape(comparison.subject)}{read_by}</h4>"
    ]
    if not comparison.compared or comparison.synthetic is None or comparison.real is None:
        parts.append(f'<p class="cursus-hint">{escape(comparison.headline())}</p></div>')
        return "".join(parts)
    synthetic, real = comparison.synthetic, comparison.real
    parts.append(
        '<table class="cursus-metrics cursus-profile-table">'
        '<tr><th rowspan="2">column</th><th colspan="3">synthetic</th><th colspan="3">real</th></tr>'
        "<tr><th>type</th><th>nulls</th><th>range / values</th><th>type</th><th>nulls</th><th>range / values</th></tr>"
        '<tr class="cursus-profile-source"><th>data</th>'
        f'<td colspan="3"><code>{escape(synthetic.location)}</code></td>'
        f'<td colspan="3"><code>{escape(real.location)}</code></td></tr>'
        f'<tr class="cursus-profile-rows"><th>rows</th><td colspan="3">{escape(synthetic.size_text())}</td>'
        f'<td colspan="3">{escape(real.size_text())}</td></tr>'
    )
    for row in comparison.side_by_side():
        marked = {index for kind in row.differs for index in _DIFFERING_CELLS[kind]}
        parts.append(
            f'<tr data-column="{escape(row.column)}"><td{_DIFFERS if row.differs else ""}>{escape(row.column)}</td>'
            f"{_profile_cells(row.synthetic, marked)}{_profile_cells(row.real, marked)}</tr>"
        )
    parts.append("</table>")
    if comparison.differences:
        parts.append('<p>What to change in the synthetic spec:</p><ul class="cursus-profile-differences">')
        parts += [
            f'<li data-kind="{d.kind}"><b>{escape(d.column)}</b>: {d.kind.replace("_", " ")}: '
            f"synthetic {escape(d.synthetic)}, real {escape(d.real)} &rarr; "
            f'<span class="cursus-hint">{escape(d.hint)}</span></li>'
            for d in comparison.differences
        ]
        parts.append("</ul>")
    else:
        parts.append("<p>No differences in columns, types, null rates, ranges or value sets.</p>")
    parts.append("</div>")
    return "".join(parts)


def _profile_cells(cells: ColumnCells, marked: set[int]) -> str:
    if not cells.dtype:
        return '<td colspan="3" class="cursus-absent cursus-differs">absent</td>'
    return "".join(f"<td{_DIFFERS if index in marked else ''}>{escape(text)}</td>" for index, text in enumerate(cells))


def dag_nodes(group: Sequence[StepRecord], scriptless: Sequence[ScriptlessNode] = ()) -> dict[str, DagNode]:
    """The steps of one scenario, and its DAG nodes that run no script: a data source with an edge to
    each step reading it, a node not run greyed with an edge from each upstream node, the reason as tooltip."""
    nodes: dict[str, DagNode] = {}
    known = {r.step for r in group}
    sources = [n for n in scriptless if n.role == "data source"]
    for node in sources:
        tooltip = f"{node.node}: data source, {node.reason}; its outputs come from the scenario's data:"
        nodes[node.node] = DagNode(node.node, "data source", tooltip=tooltip, kind="data-source")
    for record in group:
        for upstream in record.upstream:  # an upstream neither selected nor run: drawn grey
            if upstream not in known and upstream not in nodes:
                nodes[upstream] = DagNode(upstream, "not run", tooltip=f"{upstream}: not run in this session")
    for record in group:
        metrics = record.metrics
        tooltip = f"{record.step}: {record.outcome}" + (
            f", {metrics.wall_seconds:.2f}s, peak {metrics.peak_rss_mb:.1f} MB" if metrics else ""
        )
        upstream = tuple(record.upstream) + tuple(n.node for n in sources if record.step in n.read_by)
        nodes[record.step] = DagNode(record.step, record.outcome, upstream, record.cached, tooltip)
    for node in scriptless:
        if node.role == "not run":
            tooltip = f"{node.node}: not run, {node.reason}"
            nodes[node.node] = DagNode(node.node, "not run", tuple(node.upstream), tooltip=tooltip, kind="not-run")
    return nodes


def _metrics_table(record: StepRecord) -> str:
    m = record.metrics
    assert m is not None
    rows = [
        (
            "cache",
            f"cached (key {record.cache_key[:12]}...)"
            if record.cached and record.cache_key
            else (
                "cached"
                if record.cached
                else "ran in this session" + (f": {record.run_reason}" if record.run_reason else "")
            ),
        ),
        ("wall time", f"{m.wall_seconds:.3f} s (import {m.import_seconds:.3f} s, main {m.main_seconds:.3f} s)"),
        ("CPU time", f"{m.cpu_seconds:.3f} s ({m.cpu_utilisation:.0%} of one core, {m.cpu_count} available)"),
        (
            "peak memory",
            f"{m.peak_rss_mb:.1f} MB" + (f" of {record.max_memory_mb:g} MB limit" if record.max_memory_mb else ""),
        ),
        ("read / written", f"{_size(m.read_bytes)} / {_size(m.write_bytes)}"),
        ("storage read / written", f"{_size(m.disk_read_bytes)} / {_size(m.disk_write_bytes)}"),
        ("inputs", _size(m.input_bytes)),
        (
            "outputs",
            f"{_size(record.bytes_out)}" + (f", {record.rows_out:,} rows" if record.rows_out is not None else ""),
        ),
        ("timeout", f"{record.timeout_seconds:g} s" if record.timeout_seconds else "none"),
    ]
    # every cell is a label or a number of ours: nothing to escape (a 1,000-step report pays per cell)
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="cursus-metrics cursus-metric-table">{body}</table>'


def _outputs(record: StepRecord) -> str:
    rows = []
    for name, output in record.outputs.items():
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{output.files}</td><td>{_size(output.bytes)}</td>"
            f"<td>{'' if output.rows is None else f'{output.rows:,}'}</td>"
            f"<td><code>{escape(output.path)}</code></td></tr>"
        )
    parts = [
        (
            '<h4>Outputs</h4><table class="cursus-metrics cursus-outputs">'
            "<tr><th>output</th><th>files</th><th>size</th>"
            f"<th>rows</th><th>path</th></tr>{''.join(rows)}</table>"
        ),
    ]
    for name, output in record.outputs.items():
        if not output.listing:
            continue
        listing = "".join(
            f"<tr><td>{escape(f.path)}</td><td>{_size(f.bytes)}</td>"
            f"<td>{'' if f.rows is None else f'{f.rows:,}'}</td></tr>"
            for f in output.listing
        )
        more = f"<p>... {output.files - len(output.listing)} more files</p>" if output.listing_truncated else ""
        parts.append(
            f"<details><summary>Files of {escape(name)} ({output.files})</summary>"
            '<table class="cursus-metrics"><tr><th>file</th><th>size</th><th>rows</th></tr>'
            f"{listing}</table>{more}</details>"
        )
    return "".join(parts)


def _log(label: str, text: str, record: StepRecord) -> str:
    if not text.strip():
        if record.cached:
            return f"<p>{label}: not shown for a cached step (logs of the run that produced it)</p>"
        return f"<p>{label}: empty</p>"
    lines = text.count("\n") + 1
    opened = " open" if lines <= LOG_OPEN_LINES else ""
    return f"<details{opened}><summary>{label} ({lines} lines)</summary><pre>{escape(text)}</pre></details>"


def _size(value: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return f"{value} B"
