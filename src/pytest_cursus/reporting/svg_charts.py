"""Inline SVG pictures for the HTML report and ``cursus-runtime trend``: a scenario's DAG coloured
by outcome, memory over time, and values across runs. Plain strings, no JavaScript, no external
reference, so a report stays one self-contained file.

The DAG layout is layered: a step's column is the length of the longest path from a root to it;
within a column, steps are ordered by the mean row of their upstream steps (one barycentre pass),
which keeps the edges of pipeline-shaped graphs from crossing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

OUTCOME_COLOURS = {  # fill, stroke
    "passed": ("#c8e6c9", "#2e7d32"),
    "failed": ("#ffcdd2", "#c62828"),
    "error": ("#ffcdd2", "#8e0000"),
    "skipped": ("#fff3c4", "#b28704"),
    "not run": ("#eeeeee", "#9e9e9e"),
    "data source": ("#e3f2fd", "#1565c0"),  # a DAG node that runs no script; its outputs come from `data:`
}
SERIES_COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#ad1457")
_CHAR_PX = 7.2  # width of a character at the 12px font used in boxes
_NODE_H, _COL_GAP, _ROW_GAP, _PAD, _ARC_H = 40, 60, 18, 12, 34


@dataclass(frozen=True)
class DagNode:
    name: str
    outcome: str  # a key of OUTCOME_COLOURS
    upstream: tuple[str, ...] = ()
    cached: bool = False
    tooltip: str = ""
    kind: str = "step"  # "step", or for a DAG node that runs no script "data-source" or "not-run"


def layers(nodes: Mapping[str, DagNode]) -> list[list[str]]:
    """Steps by column (longest path from a root), each column ordered by upstream barycentre."""
    depth: dict[str, int] = {}
    for start in nodes:  # iterative DFS: a chain of a thousand steps must not hit the recursion limit
        stack, entered = [start], set()
        while stack:
            name = stack[-1]
            if name in depth:
                stack.pop()
                continue
            ups = [u for u in nodes[name].upstream if u in nodes and u not in entered]
            pending = [u for u in ups if u not in depth]
            if pending and name not in entered:
                entered.add(name)  # a cycle (never in a valid scenario) is cut here
                stack.extend(pending)
                continue
            depth[name] = 1 + max((depth[u] for u in ups if u in depth), default=-1)
            stack.pop()

    columns: dict[int, list[str]] = {}
    for name in nodes:
        columns.setdefault(depth[name], []).append(name)
    ordered: list[list[str]] = []
    row: dict[str, float] = {}
    for index in sorted(columns):
        column = columns[index]
        if ordered:
            column.sort(key=lambda n: _mean([row[u] for u in nodes[n].upstream if u in row], default=len(column)))
        for position, name in enumerate(column):
            row[name] = position
        ordered.append(column)
    return ordered


def dag_svg(nodes: Mapping[str, DagNode], title: str = "") -> str:
    columns = layers(nodes)
    column_of = {name: index for index, column in enumerate(columns) for name in column}
    # an edge skipping a column is drawn as an arc over the boxes between: room for it on top
    arc = (
        _ARC_H
        if any(column_of[n] - column_of[u] > 1 for n in nodes for u in nodes[n].upstream if u in column_of)
        else 0
    )
    widths = [max(_box_width(nodes[n]) for n in column) for column in columns]
    rows = max((len(c) for c in columns), default=1)
    height = _PAD * 2 + arc + rows * _NODE_H + (rows - 1) * _ROW_GAP
    width = _PAD * 2 + sum(widths) + _COL_GAP * max(len(columns) - 1, 0)
    position: dict[str, tuple[float, float, float]] = {}  # x, y (top left), box width
    x = float(_PAD)
    for column, column_width in zip(columns, widths, strict=True):
        offset = (height - 2 * _PAD - (len(column) * _NODE_H + (len(column) - 1) * _ROW_GAP)) / 2
        for index, name in enumerate(column):
            position[name] = (x, arc + _PAD + offset + index * (_NODE_H + _ROW_GAP) - arc / 2, column_width)
        x += column_width + _COL_GAP
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="cursus-dag" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(title or "pipeline DAG")}">'
        ),
        (
            '<defs><marker id="cursus-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>'
        ),
    ]
    for name, node in nodes.items():
        x2, y2, _ = position[name]
        for upstream in node.upstream:
            if upstream not in position:
                continue
            x1, y1, w1 = position[upstream]
            if column_of[name] - column_of[upstream] > 1:  # over the boxes between, top to top
                w2 = position[name][2]
                start, end = (x1 + w1 * 0.7, y1), (x2 + w2 * 0.3, y2)
                lift = min(start[1], end[1]) - _ARC_H
                controls = f"{start[0]:.1f} {lift:.1f} {end[0]:.1f} {lift:.1f}"
            else:
                start, end = (x1 + w1, y1 + _NODE_H / 2), (x2, y2 + _NODE_H / 2)
                bend = (end[0] - start[0]) / 2
                controls = f"{start[0] + bend:.1f} {start[1]:.1f} {end[0] - bend:.1f} {end[1]:.1f}"
            parts.append(
                f'<path class="cursus-edge" d="M {start[0]:.1f} {start[1]:.1f} C {controls} {end[0]:.1f} {end[1]:.1f}" '
                'fill="none" stroke="#555" stroke-width="1.4" marker-end="url(#cursus-arrow)"/>'
            )
    for name, node in nodes.items():
        x, y, w = position[name]
        fill, stroke = OUTCOME_COLOURS.get(node.outcome, OUTCOME_COLOURS["not run"])
        dash = ' stroke-dasharray="5 3"' if node.cached or node.kind != "step" else ""
        greyed = ' opacity="0.6"' if node.kind == "not-run" else ""
        label = node.outcome + (", cached" if node.cached else "")
        parts.append(
            f'<g class="cursus-node" data-step="{escape(name)}" data-outcome="{escape(node.outcome)}" '
            f'data-kind="{escape(node.kind)}"{greyed}>'
            f"<title>{escape(node.tooltip or f'{name}: {label}')}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{_NODE_H}" rx="6" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/>'
            f'<text x="{x + w / 2:.1f}" y="{y + 17:.1f}" text-anchor="middle" font-family="sans-serif" font-size="12" '
            f'font-weight="bold" fill="#222">{escape(name)}</text>'
            f'<text x="{x + w / 2:.1f}" y="{y + 32:.1f}" text-anchor="middle" font-family="sans-serif" font-size="10" '
            f'fill="{stroke}">{escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def memory_chart_svg(
    series: Sequence[tuple[float, int]],
    *,
    title: str,
    wall_seconds: float,
    peak_bytes: int,
    limit_bytes: int | None = None,
    width: int = 300,
    height: int = 130,
) -> str:
    """RSS over the step's run; a dashed line at the memory limit when there is one.

    ``peak_bytes`` is the step's peak as every other view shows it (``metrics.peak_rss_bytes``): it
    can exceed the series, which misses what the step's process held when ``main()`` returned."""
    left, right, top, bottom = 46, 10, 20, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(peak_bytes, max((rss for _, rss in series), default=0))
    top_value = max(peak, 1)
    if limit_bytes and limit_bytes < 4 * top_value:
        top_value = max(top_value, limit_bytes)
    span = max(wall_seconds, max((t for t, _ in series), default=0.0), 1e-3)
    # the text style is set once on the root and inherited: a report holds a thousand of these
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="cursus-memory-chart" width="{width}" height="{height}" '
            'font-family="sans-serif" font-size="9" fill="#555" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        ),
        f'<text x="{left}" y="13" font-size="11" font-weight="bold" fill="#222">'
        f"{escape(_short_end(title, (width - left) // 12))}</text>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{top_value * fraction / 2**20:.0f} MB</text>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 6}">0s</text>'
        f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">{span:.2f}s</text>'
    )
    if limit_bytes and limit_bytes <= top_value:
        y = top + plot_h * (1 - limit_bytes / top_value)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#c62828" stroke-dasharray="4 3"/>'
        )
    if series:
        points = [(left + plot_w * min(t / span, 1.0), top + plot_h * (1 - rss / top_value)) for t, rss in series]
        if len(points) == 1:
            points.append((left + plot_w, points[0][1]))
        coordinates = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        area = f"{points[0][0]:.1f},{top + plot_h} {coordinates} {points[-1][0]:.1f},{top + plot_h}"
        parts.append(f'<polygon points="{area}" fill="#1565c0" fill-opacity="0.15"/>')
        parts.append(
            f'<polyline class="cursus-memory-line" points="{coordinates}" '
            'fill="none" stroke="#1565c0" stroke-width="1.6"/>'
        )
    else:
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle">'
            "no samples (step too short)</text>"
        )
    if peak_bytes:
        parts.append(
            f'<text x="{left + plot_w}" y="13" text-anchor="end" font-size="10" fill="#1565c0">'
            f"peak {peak_bytes / 2**20:.1f} MB</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def trend_chart_svg(
    runs: Sequence[str], panels: Sequence[tuple[str, Mapping[str, Sequence[float | None]]]], *, width: int = 720
) -> str:
    """One panel per measure (e.g. wall seconds, peak MB): a line per step across the runs."""
    panel_h, left, right, top, legend_h = 180, 60, 20, 26, 18
    steps = sorted({step for _, values in panels for step in values})
    height = len(panels) * (panel_h + 30) + legend_h * ((len(steps) + 2) // 3) + 20
    plot_w = width - left - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cursus-trend-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    for index, (label, values) in enumerate(panels):
        y0 = index * (panel_h + 30) + top
        plot_h = panel_h - top
        highest = max((v for series in values.values() for v in series if v is not None), default=1.0) or 1.0
        parts.append(
            f'<text x="{left}" y="{y0 - 8}" font-family="sans-serif" font-size="12" font-weight="bold">'
            f"{escape(label)}</text>"
        )
        parts.append(f'<rect x="{left}" y="{y0}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>')
        for fraction in (0.0, 0.5, 1.0):
            y = y0 + plot_h * (1 - fraction)
            parts.append(
                f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-family="sans-serif" font-size="9">'
                f"{highest * fraction:.3g}</text>"
            )
        for run_index, run in enumerate(runs):
            x = left + (plot_w * run_index / max(len(runs) - 1, 1))
            parts.append(
                f'<text x="{x:.1f}" y="{y0 + plot_h + 12}" text-anchor="middle" '
                f'font-family="sans-serif" font-size="9">{escape(_short(run))}</text>'
            )
        for step in steps:
            colour = SERIES_COLOURS[steps.index(step) % len(SERIES_COLOURS)]
            series = values.get(step, [])
            points = [
                (left + plot_w * i / max(len(runs) - 1, 1), y0 + plot_h * (1 - v / highest))
                for i, v in enumerate(series)
                if v is not None
            ]
            if len(points) > 1:
                parts.append(
                    f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" '
                    f'fill="none" stroke="{colour}" stroke-width="1.6"/>'
                )
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in points]
    legend_y = len(panels) * (panel_h + 30) + 10
    for index, step in enumerate(steps):
        x = left + (index % 3) * (plot_w / 3)
        y = legend_y + (index // 3) * legend_h
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        parts.append(f'<rect x="{x:.1f}" y="{y - 8}" width="10" height="10" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + 14:.1f}" y="{y + 1}" font-family="sans-serif" font-size="10">{escape(step)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


SPARK_CHARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """``▁▃█`` for a series; a gap (space) where a run had no value."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    low, high = min(present), max(present)
    spread = high - low
    return "".join(
        " " if v is None else SPARK_CHARS[0 if spread == 0 else round((v - low) / spread * (len(SPARK_CHARS) - 1))]
        for v in values
    )


def _box_width(node: DagNode) -> float:
    return max(90.0, len(node.name) * _CHAR_PX + 24)


def _mean(values: Sequence[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _short_end(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
