"""Wiring a pipeline DAG into scenario steps by logical name (docs/dag.md).

A DAG node ``<StepType>[_<job type>]`` resolves to the interface whose ``step_type`` is the longest
``_``-separated prefix of its name (compared case-insensitively, alphanumerics only). Each dependency
of a node is wired from the outputs of its direct upstream nodes only, by the first rule that gives
exactly one candidate: (a) an output of the same logical name, (b) an output that lists the name in
its ``aliases``, (c) the one output of a compatible type (``COMPATIBLE_TYPES``) from a step type in
the dependency's ``compatible_sources``. An output feeds at most one dependency of a node. Nothing
is wired by similarity: what is not wired by these rules is reported, with each candidate and why it
was refused, so the user wires it under ``nodes:``.

Nodes that run no script of ours (no ``entry_point``, or a script not found) feed their consumers
from the scenario's ``data:`` entries named ``<Node>.<output>``; those with no runnable consumer are
not run, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_cursus.errors import ConfigError, CursusError
from pytest_cursus.formats.contract_files import ChannelSpec, SpecDependency, SpecOutput
from pytest_cursus.formats.contracts import Contract, ContractNotFound, ContractRegistry, contract_variant
from pytest_cursus.formats.dag_file import DagFile, load_dag_file
from pytest_cursus.formats.scenario_file import NodeEntry
from pytest_cursus.plan.dag import CycleError, topological_order

# A dependency of the type on the left accepts outputs of the types on the right. Equal types always
# match; a dependency or output that declares no type is not refused for its type.
COMPATIBLE_TYPES: dict[str, frozenset[str]] = {
    "processing_output": frozenset({"processing_output", "training_data"}),
    "training_data": frozenset({"training_data", "processing_output"}),
    "payload_samples": frozenset({"payload_samples", "processing_output"}),
    "model_artifacts": frozenset({"model_artifacts"}),
    "hyperparameters": frozenset({"hyperparameters"}),
    "custom_property": frozenset({"custom_property"}),
}

RULE_NAME = "name"
RULE_ALIAS = "alias"
RULE_COMPATIBLE = "compatible_source"
RULE_EXPLICIT = "explicit"
RULE_DATA = "data source"
RULE_UNWIRED = "unwired"


def type_compatible(dependency_type: str | None, output_type: str | None) -> bool:
    if not dependency_type or not output_type:
        return True
    wanted, offered = dependency_type.lower(), output_type.lower()
    return wanted == offered or offered in COMPATIBLE_TYPES.get(wanted, frozenset())


def comparable_name(name: str) -> str:
    """Step types compare case-insensitively on their letters and digits: Cradle_Data_Loading = cradledataloading."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class Wiring:
    """One input of a node and what feeds it: ``source`` is ``<Node>.<output>`` or a data source."""

    node: str
    input: str
    source: str | None
    rule: str
    required: bool


@dataclass
class DagNode:
    name: str
    contract: Contract
    job_type: str | None
    # why the node runs no script (it is then a data source for its consumers), None when it runs
    not_runnable: str | None = None

    @property
    def step_type(self) -> str:
        return self.contract.name


@dataclass
class DagWiring:
    """The DAG read, every node resolved and every input wired, and what went wrong, all at once."""

    path: Path
    dag: DagFile
    nodes: dict[str, DagNode] = field(default_factory=dict)
    wirings: list[Wiring] = field(default_factory=list)
    # `<Node>.<output>` data sources the scenario lacks, generated from the output's `data:` schema
    generated_data: dict[str, ChannelSpec] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    # `<Node>.<output>` references with no data to feed them (reported among the problems)
    missing_data: set[str] = field(default_factory=set)
    # (node or None, message): the message names the DAG file, the node and what to do
    problems: list[tuple[str | None, str]] = field(default_factory=list)

    def order(self) -> list[str]:
        return topological_order(self.dag.dag.nodes, {n: set(u) for n, u in self.dag.dag.upstreams().items()})

    def runnable(self) -> list[str]:
        return [name for name in self.order() if name in self.nodes and self.nodes[name].not_runnable is None]

    def inputs_of(self, node: str) -> dict[str, str]:
        return {
            w.input: w.source
            for w in self.wirings
            if w.node == node and w.source is not None and w.source not in self.missing_data
        }

    def unwired(self) -> list[Wiring]:
        return [w for w in self.wirings if w.rule == RULE_UNWIRED]

    def data_sources(self) -> dict[str, list[str]]:
        """Nodes that run no script but feed nodes that run, each with the nodes reading it (DAG order)."""
        read_by: dict[str, list[str]] = {}
        for w in self.wirings:
            upstream = (w.source or "").partition(".")[0]
            if upstream in self.nodes and self.nodes[upstream].not_runnable is not None:
                if w.node not in read_by.setdefault(upstream, []):
                    read_by[upstream].append(w.node)
        return {name: read_by[name] for name in self.order() if name in read_by}


def read_dag(path: Path) -> DagFile:
    """The DAG file, checked to have no cycle."""
    dag, document = load_dag_file(path)
    upstreams = {node: set(ups) for node, ups in dag.dag.upstreams().items()}
    try:
        topological_order(dag.dag.nodes, upstreams)
    except CycleError as exc:
        raise document.error(("dag", "edges"), f"the edges form a cycle: {exc}; a pipeline DAG has no cycle") from None
    return dag


def wire_dag(
    path: Path,
    dag: DagFile,
    registry: ContractRegistry,
    overrides: Mapping[str, NodeEntry],
    data_names: Sequence[str],
    not_runnable: Callable[[Contract, NodeEntry | None], str | None],
) -> DagWiring:
    """Resolve every node of ``dag`` to its interface and wire its inputs (module docstring)."""
    wiring = DagWiring(path, dag)
    for node in dag.dag.nodes:
        try:
            contract, job_type = _resolve_node(node, registry, overrides.get(node))
        except CursusError as exc:
            wiring.problems.append((node, f"{path.name}: node {node}: {_message(exc)}"))
            continue
        wiring.nodes[node] = DagNode(node, contract, job_type, not_runnable(contract, overrides.get(node)))
    _mark_not_run(wiring)
    for node in wiring.order():
        if node in wiring.nodes and wiring.nodes[node].not_runnable is None:
            _wire_node(wiring, wiring.nodes[node], overrides.get(node), set(data_names))
    return wiring


def _message(exc: CursusError) -> str:
    return exc.message if isinstance(exc, ConfigError) else str(exc)


def _resolve_node(node: str, registry: ContractRegistry, override: NodeEntry | None) -> tuple[Contract, str | None]:
    parts = node.split("_")
    if override is not None and override.contract is not None:
        contract = registry.find(override.contract)
        matched = [
            k
            for k in range(len(parts), 0, -1)
            if comparable_name("_".join(parts[:k])) == comparable_name(contract.name)
        ]
        job_type = "_".join(parts[matched[0] :]) if matched else None
        return _with_variant(contract, job_type or None), job_type or None
    by_type: dict[str, list[Contract]] = {}
    for contract in registry.contracts:
        by_type.setdefault(comparable_name(contract.name), []).append(contract)
    for k in range(len(parts), 0, -1):
        found = by_type.get(comparable_name("_".join(parts[:k])), [])
        if len(found) > 1:
            listed = ", ".join(str(c.path) for c in found)
            raise ContractNotFound(
                f"step type {'_'.join(parts[:k])!r} is declared by more than one interface: {listed}"
            )
        if found:
            job_type = "_".join(parts[k:]) or None
            return _with_variant(found[0], job_type), job_type
    known = ", ".join(sorted({c.name for c in registry.contracts})) or "(none)"
    where = ", ".join(str(root) for root in registry.searched) or "(no interface directories given)"
    raise ContractNotFound(
        f"no interface whose step_type is a prefix of the node name (node names are <StepType>[_<job type>]); "
        f"searched {where}; step types found: {known}; "
        f"or name the interface with 'nodes: {{{node}: {{contract: ...}}}}'"
    )


def _with_variant(contract: Contract, job_type: str | None) -> Contract:
    return contract_variant(contract, job_type) if job_type else contract


def _mark_not_run(wiring: DagWiring) -> None:
    """A node that runs no script and feeds no node that runs is not run at all."""
    downstream: dict[str, list[str]] = {node: [] for node in wiring.dag.dag.nodes}
    for source, target in wiring.dag.dag.edges:
        downstream[source].append(target)
    for name, node in wiring.nodes.items():
        if node.not_runnable is None:
            continue
        consumers = [d for d in downstream[name] if d in wiring.nodes and wiring.nodes[d].not_runnable is None]
        if not consumers:
            wiring.not_run[name] = f"{node.not_runnable}, and no node that runs reads its outputs"


@dataclass(frozen=True)
class _Candidate:
    node: DagNode
    output: SpecOutput

    @property
    def reference(self) -> str:
        return f"{self.node.name}.{self.output.logical_name}"


def dependencies_of(contract: Contract) -> list[SpecDependency]:
    """A node's dependencies: the contract's inputs, described by the spec entry of the same logical
    name when there is one (spec entries for inputs the contract does not mount cannot be wired)."""
    spec = {d.logical_name: d for d in contract.spec.dependencies} if contract.spec else {}
    if not contract.inputs:
        return list(spec.values()) if contract.entry_point is None else []
    return [
        spec.get(name) or SpecDependency(logical_name=name, required=channel.required)
        for name, channel in contract.inputs.items()
    ]


def outputs_of(contract: Contract) -> list[SpecOutput]:
    spec = {o.logical_name: o for o in contract.spec.outputs} if contract.spec else {}
    names = list(contract.outputs) + [name for name in spec if name not in contract.outputs]
    return [spec.get(name) or SpecOutput(logical_name=name) for name in names]


def _wire_node(wiring: DagWiring, node: DagNode, override: NodeEntry | None, data_names: set[str]) -> None:
    upstream = [wiring.nodes[u] for u in wiring.dag.dag.upstreams()[node.name] if u in wiring.nodes]
    candidates = [_Candidate(up, output) for up in upstream for output in outputs_of(up.contract)]
    dependencies = dependencies_of(node.contract)
    explicit = override.input_references if override is not None else {}
    chosen: dict[str, tuple[_Candidate, str]] = {}
    claimed: dict[str, str] = {}  # candidate reference -> the input it feeds
    for reference in explicit.values():
        claimed[reference] = "(explicit)"
    refused: dict[str, str] = {}  # dependency -> the ambiguity found
    rules: list[tuple[str, Callable[[SpecDependency, _Candidate], bool]]] = [
        (RULE_NAME, lambda d, c: c.output.logical_name == d.logical_name),
        (RULE_ALIAS, lambda d, c: d.logical_name in c.output.aliases),
        (RULE_COMPATIBLE, _compatible),
    ]
    for rule, matches in rules:
        for dependency in dependencies:
            name = dependency.logical_name
            if name in explicit or name in chosen or name in refused:
                continue
            found = [c for c in candidates if c.reference not in claimed and matches(dependency, c)]
            if len(found) == 1:
                chosen[name] = (found[0], rule)
                claimed[found[0].reference] = name
            elif len(found) > 1:
                listed = ", ".join(c.reference for c in found)
                refused[name] = f"ambiguous by rule '{rule}': {listed} all match"
    for dependency in dependencies:
        name = dependency.logical_name
        if name in explicit:
            wiring.wirings.append(Wiring(node.name, name, explicit[name], RULE_EXPLICIT, dependency.required))
            _need_data(wiring, node, name, explicit[name], data_names)
        elif name in chosen:
            candidate, rule = chosen[name]
            if candidate.node.not_runnable is not None:
                rule = RULE_DATA
            wiring.wirings.append(Wiring(node.name, name, candidate.reference, rule, dependency.required))
            _need_data(wiring, node, name, candidate.reference, data_names)
        else:
            wiring.wirings.append(Wiring(node.name, name, None, RULE_UNWIRED, dependency.required))
            if name in refused or dependency.required:
                wiring.problems.append(
                    (
                        node.name,
                        _unwired_message(wiring, node, dependency, upstream, candidates, claimed, refused.get(name)),
                    )
                )


def _compatible(dependency: SpecDependency, candidate: _Candidate) -> bool:
    sources = {comparable_name(s) for s in dependency.compatible_sources}
    return comparable_name(candidate.node.step_type) in sources and type_compatible(
        dependency.dependency_type, candidate.output.output_type
    )


def _refusal(dependency: SpecDependency, candidate: _Candidate, claimed: Mapping[str, str]) -> str:
    if candidate.reference in claimed:
        return f"already feeds {claimed[candidate.reference]}"
    reasons = ["another name", "not among its aliases"]
    if comparable_name(candidate.node.step_type) not in {comparable_name(s) for s in dependency.compatible_sources}:
        listed = ", ".join(dependency.compatible_sources) or "none"
        reasons.append(f"step type {candidate.node.step_type} not in compatible_sources ({listed})")
    elif not type_compatible(dependency.dependency_type, candidate.output.output_type):
        reasons.append(
            f"output_type {candidate.output.output_type} does not fit dependency_type {dependency.dependency_type}"
        )
    return ", ".join(reasons)


def _unwired_message(
    wiring: DagWiring,
    node: DagNode,
    dependency: SpecDependency,
    upstream: list[DagNode],
    candidates: list[_Candidate],
    claimed: Mapping[str, str],
    ambiguity: str | None,
) -> str:
    name = dependency.logical_name
    kind = "required dependency" if dependency.required else "dependency"
    head = f"{wiring.path.name}: node {node.name} ({node.contract.path.name}): {kind} {name!r} "
    if ambiguity:
        head += f"is {ambiguity}"
    elif not upstream:
        head += "is not wired: the node has no upstream node in the DAG"
    elif not candidates:
        head += f"is not wired: its upstream nodes ({', '.join(u.name for u in upstream)}) declare no outputs"
    else:
        listed = "; ".join(f"{c.reference} refused: {_refusal(dependency, c, claimed)}" for c in candidates)
        head += f"is not wired; candidates: {listed}"
    return head + (
        f". Wire it explicitly: nodes: {{{node.name}: {{inputs: {{{name}: <Node>.<output> or a data source}}}}}}"
    )


def _need_data(wiring: DagWiring, node: DagNode, input_name: str, reference: str, data_names: set[str]) -> None:
    """An input read from a node that runs no script needs the `data:` entry of that name."""
    upstream_name, _, output = reference.partition(".")
    upstream = wiring.nodes.get(upstream_name)
    if upstream is None or upstream.not_runnable is None or reference in data_names:
        return
    channel = upstream.contract.outputs.get(output)
    if channel is not None and channel.data is not None:
        wiring.generated_data[reference] = channel
        return
    wiring.missing_data.add(reference)
    wiring.problems.append(
        (
            node.name,
            f"{wiring.path.name}: node {node.name}: input {input_name!r} reads {reference}, but node {upstream_name} "
            f"is a data source ({upstream.not_runnable}) and its output {output!r} has no data: schema; add "
            f"'data: {{{reference}: {{synthetic: ... | file: ... | s3: ...}}}}' to the scenario",
        )
    )
