"""``cursus-runtime list``: the scenarios, steps and edges pytest would collect, without running.

Files are found as the plugin finds them (``*.yaml``/``*.yml`` with a top-level ``steps:``, in
sorted order, skipping the directories pytest skips by default) and resolved with the same
``load_scenario``, so an invalid scenario shows the message its pytest item would fail with.
The JSON form (``--json``) is :class:`ScenarioListing`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from pytest_cursus.errors import ConfigError, ConfigErrors
from pytest_cursus.plan.scenario_plan import FileLookups, PlanOptions, ScenarioPlan, load_scenario, looks_like_scenario

# pytest's default norecursedirs
SKIPPED_DIRS = ("*.egg", ".*", "_darcs", "build", "CVS", "dist", "node_modules", "venv", "{arch}")


class ListedStep(BaseModel):
    name: str
    nodeid: str
    contract: str
    script: str
    upstream: list[str] = Field(default_factory=list)


class ListedEdge(BaseModel):
    nodeid: str
    upstream: str
    output: str
    downstream: str
    input: str


class ListedNode(BaseModel):
    """A node of a DAG scenario that runs no script, and why (docs/dag.md)."""

    name: str
    reason: str
    read_by: list[str] = Field(default_factory=list)  # a data source: the steps reading its outputs


class ListedScenario(BaseModel):
    file: str
    name: str | None = None
    description: str | None = None
    error: str | None = None  # the invalid scenario's message; steps and edges are then empty
    steps: list[ListedStep] = Field(default_factory=list)
    edges: list[ListedEdge] = Field(default_factory=list)
    # a DAG scenario's nodes that run no script: data sources fed from `data:`, and nodes not run
    data_sources: list[ListedNode] = Field(default_factory=list)
    not_run: list[ListedNode] = Field(default_factory=list)


class ScenarioListing(BaseModel):
    """The ``--json`` document."""

    format: str = "pytest-cursus-listing"
    rootdir: str
    scenarios: list[ListedScenario]

    @property
    def invalid(self) -> list[ListedScenario]:
        return [scenario for scenario in self.scenarios if scenario.error is not None]


def scenario_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Scenario files under ``paths`` (files or directories), each once, in sorted order."""
    seen: set[Path] = set()
    for path in paths:
        candidates = [path] if path.is_file() else sorted(_yaml_files(path))
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved not in seen and looks_like_scenario(candidate):
                seen.add(resolved)
                yield resolved


def list_scenarios(paths: Iterable[Path], options: PlanOptions, rootdir: Path) -> ScenarioListing:
    listed = []
    lookups = FileLookups()  # the scenarios' shared contract directories are read once
    for path in scenario_files(paths):
        shown = _relative(path, rootdir)
        try:
            plan = load_scenario(path, options, lookups)
        except (ConfigError, ConfigErrors) as exc:
            listed.append(ListedScenario(file=shown, error=exc.render(rootdir)))
            continue
        listed.append(_listed(plan, shown, rootdir))
    return ScenarioListing(rootdir=str(rootdir), scenarios=listed)


def render_text(listing: ScenarioListing) -> str:
    lines: list[str] = []
    for scenario in listing.scenarios:
        if scenario.error is not None:
            lines += [f"{scenario.file}: INVALID", *(f"  {line}" for line in scenario.error.splitlines()), ""]
            continue
        lines.append(
            f"{scenario.file}: scenario {scenario.name} ({len(scenario.steps)} step(s), {len(scenario.edges)} edge(s))"
        )
        width = max(len(step.name) for step in scenario.steps)
        for step in scenario.steps:
            after = f"  after {', '.join(step.upstream)}" if step.upstream else ""
            lines.append(f"  step  {step.name:<{width}}  {step.contract} ({step.script}){after}")
        for edge in scenario.edges:
            lines.append(f"  edge  {edge.upstream}.{edge.output} -> {edge.downstream}.{edge.input}")
        for node in scenario.data_sources:
            lines.append(f"  data source  {node.name}: {node.reason}; read by {', '.join(node.read_by)} from data:")
        for node in scenario.not_run:
            lines.append(f"  not run      {node.name}: {node.reason}")
        lines.append("")
    valid = [s for s in listing.scenarios if s.error is None]
    lines.append(
        f"{len(valid)} scenario(s), {sum(len(s.steps) for s in valid)} step(s), "
        f"{sum(len(s.edges) for s in valid)} edge(s)"
        + (f"; {len(listing.invalid)} invalid scenario(s)" if listing.invalid else "")
    )
    return "\n".join(lines)


def node_ids(listing: ScenarioListing) -> list[str]:
    """Item ids in collection order: each step preceded by the edges into it, as pytest collects them."""
    ids = []
    for scenario in listing.scenarios:
        for step in scenario.steps:
            ids += [edge.nodeid for edge in scenario.edges if edge.downstream == step.name]
            ids.append(step.nodeid)
    return ids


def _listed(plan: ScenarioPlan, shown: str, rootdir: Path) -> ListedScenario:
    steps = [
        ListedStep(
            name=name,
            nodeid=f"{shown}::{name}",
            contract=step.contract.name,
            script=_relative(step.script, rootdir),
            upstream=[other for other in plan.steps if other in step.upstream_steps],
        )
        for name, step in plan.steps.items()
    ]
    edges = [
        ListedEdge(
            nodeid=f"{shown}::compat[{edge.id}]",
            upstream=edge.upstream,
            output=edge.output,
            downstream=edge.downstream,
            input=edge.input,
        )
        for edge in plan.edges
    ]
    wiring = plan.wiring
    data_sources = (
        [
            ListedNode(name=node, reason=wiring.nodes[node].not_runnable or "", read_by=read_by)
            for node, read_by in wiring.data_sources().items()
        ]
        if wiring is not None
        else []
    )
    return ListedScenario(
        file=shown,
        name=plan.name,
        description=plan.description,
        steps=steps,
        edges=edges,
        data_sources=data_sources,
        not_run=[ListedNode(name=node, reason=reason) for node, reason in plan.not_run.items()],
    )


def _yaml_files(directory: Path) -> Iterator[Path]:
    for entry in sorted(directory.iterdir()):
        if entry.is_dir():
            if not any(fnmatch.fnmatch(entry.name, pattern) for pattern in SKIPPED_DIRS):
                yield from _yaml_files(entry)
        elif entry.suffix in (".yaml", ".yml"):
            yield entry


def _relative(path: Path, rootdir: Path) -> str:
    try:
        return path.resolve().relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return str(path)
