"""``cursus-runtime wire``: how a pipeline DAG's inputs are wired (docs/dag.md), as a table or JSON.

The rows are ``DagWiring.wirings`` in DAG order: node, input, ``<node>.<output>`` that feeds it and the
rule that chose it (name, alias, compatible_source, explicit, data source, unwired). The JSON form is
``{"wirings": [{"node", "input", "from", "rule"}], "unwired": [{"node", "input", "required"}]}``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pytest_cursus.plan.wiring import DagWiring

_HEADERS = ("node", "input", "from", "rule")


def wiring_json(wiring: DagWiring) -> str:
    document = {
        "wirings": [{"node": w.node, "input": w.input, "from": w.source, "rule": w.rule} for w in wiring.wirings],
        "unwired": [{"node": w.node, "input": w.input, "required": w.required} for w in wiring.unwired()],
    }
    return json.dumps(document, indent=2)


def unresolved_nodes(wiring: DagWiring) -> list[str]:
    """DAG nodes with no interface: none of their inputs can be wired."""
    return [node for node in wiring.dag.dag.nodes if node not in wiring.nodes]


def failed(wiring: DagWiring) -> bool:
    """A required input is unwired, or a node has no interface (so its inputs are unknown)."""
    return any(w.required for w in wiring.unwired()) or bool(unresolved_nodes(wiring))


def render_table(wiring: DagWiring, shown: Path | str) -> str:
    rows = [(w.node, w.input, w.source or "-", w.rule) for w in wiring.wirings]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(_HEADERS)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=True)).rstrip()

    unwired = wiring.unwired()
    required = [w for w in unwired if w.required]
    lines = [
        f"{shown}: {len(wiring.dag.dag.nodes)} node(s), {len(rows) - len(unwired)} input(s) wired, "
        f"{len(unwired)} unwired ({len(required)} required)",
        line(_HEADERS),
        line(tuple("-" * width for width in widths)),
        *(line(row) for row in rows),
    ]
    nodes = wiring.nodes
    for node, read_by in wiring.data_sources().items():
        lines.append(f"data source  {node}: {nodes[node].not_runnable}; read by {', '.join(read_by)}")
    for node, reason in wiring.not_run.items():
        lines.append(f"not run      {node}: {reason}")
    if wiring.problems:
        lines += ["", "problems:", *(f"  {message}" for _, message in wiring.problems)]
    return "\n".join(lines)
