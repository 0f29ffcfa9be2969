"""Resolving a scenario file into a plan: contracts found, scripts located, env and job args
merged, inputs wired, steps in DAG order. Every problem names the file, the line and the field.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import ValidationError

from pytest_cursus.data.execution_outputs import DEFAULT_LAYOUT, ExecutionSource
from pytest_cursus.data.s3.uri import S3Limits
from pytest_cursus.data.schema import SyntheticSpec
from pytest_cursus.errors import ConfigError, ConfigErrors
from pytest_cursus.formats.contracts import Contract, ContractNotFound, ContractRegistry
from pytest_cursus.formats.scenario_file import (
    DataSource,
    FuzzSettings,
    NodeEntry,
    OutputExpectation,
    ScenarioFile,
    SecretsBlock,
    StepEntry,
    StepMark,
)
from pytest_cursus.formats.yaml_document import YamlDocument, did_you_mean, top_level_nodes
from pytest_cursus.plan.dag import CycleError, Edge, ancestors, topological_order
from pytest_cursus.plan.options import PipPolicy, PlanOptions
from pytest_cursus.plan.script_module import script_import
from pytest_cursus.plan.wiring import DagWiring, read_dag, wire_dag
from pytest_cursus.secret_env import SecretNames

# rows of a data source generated from a DAG node output's `data:` schema (docs/dag.md)
GENERATED_NODE_ROWS = 200

# `steps:`, or `dag:` followed by a file name on its line (a DAG file in YAML has a mapping there)
_SCENARIO_MARKER = re.compile(r"^[\"']?(steps[\"']?\s*:|dag[\"']?\s*:[ \t]*[^\s#{])", re.MULTILINE)
# a step's `contract:` (block or flow style), for a file too broken to parse
_STEP_CONTRACT_LINE = re.compile(r"^[ \t]+.*\bcontract[\"']?\s*:", re.MULTILINE)


@dataclass(frozen=True)
class SourceInput:
    """An input fed by a named root data source."""

    source: str


@dataclass(frozen=True)
class UpstreamInput:
    """An input fed by another step's output (a DAG edge)."""

    step: str
    output: str


InputBinding = SourceInput | UpstreamInput


@dataclass(frozen=True)
class ChannelView:
    """How the script sees one of its contract's channels when a scenario says so (``as:``,
    ``file:``): under the key ``key`` of ``input_paths``/``output_paths``, at ``file`` inside the
    channel's directory. Staging, edge checks and ``expect:`` keep the contract's channel name."""

    key: str
    file: str | None = None

    def path(self, channel_path: str) -> str:
        return os.path.join(channel_path, self.file) if self.file else channel_path


@dataclass
class StepPlan:
    name: str
    scenario: str
    line: int
    contract: Contract
    script: Path
    module: str | None
    python_path: tuple[Path, ...]
    env: dict[str, str]
    job_args: dict[str, Any]
    inputs: dict[str, InputBinding]
    timeout: float
    max_memory_mb: float | None
    expect: dict[str, OutputExpectation]
    fuzz: FuzzSettings | None = None
    inputs_read_only: bool = False  # a write into the step's own input copies fails it (else: a note)
    pip: PipPolicy = "check"  # what an install the script asks pip for does (execution/pip_guard.py)
    # channels the script knows by another key or as a file inside them; the others by their own name
    input_views: dict[str, ChannelView] = field(default_factory=dict)
    output_views: dict[str, ChannelView] = field(default_factory=dict)
    # which env names are secret: the name rule with the scenario's `secrets:` additions and exemptions
    secrets: SecretNames = field(default_factory=SecretNames)
    marks: tuple[StepMark, ...] = ()  # `marks:` for the step's pytest items (plugin/scenario_items.py)

    @property
    def upstream_steps(self) -> set[str]:
        return {b.step for b in self.inputs.values() if isinstance(b, UpstreamInput)}


@dataclass
class ScenarioPlan:
    name: str
    path: Path
    description: str | None
    data: dict[str, DataSource]
    source_variants: dict[str, str]
    steps: dict[str, StepPlan]
    edges: list[Edge] = field(default_factory=list)
    # with an execution, inputs that reference upstream steps read its real outputs
    execution: ExecutionSource | None = None
    # a DAG scenario: how its inputs were wired, and the nodes not run with the reason
    wiring: DagWiring | None = None
    not_run: dict[str, str] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def upstreams(self) -> dict[str, set[str]]:
        return {name: step.upstream_steps for name, step in self.steps.items()}

    def required_before(self, step: str) -> list[str]:
        """Steps that must have run before ``step``, in DAG order."""
        needed = ancestors(step, self.upstreams())
        return [name for name in self.steps if name in needed]

    def edges_into(self, step: str) -> list[Edge]:
        return [edge for edge in self.edges if edge.downstream == step]


class FileLookups:
    """File-system answers that are the same for every scenario read together: the contracts
    under a set of directories, a path resolved against a scenario's directory, whether it
    exists, where an entry point's script is. Each is looked up once for the life of this
    object (a contracts directory is scanned once, not once per scenario).

    It does not notice files changed after a lookup, so it lives as long as one reading of the
    scenarios: one per pytest session (collection), one per ``cursus-runtime list``; the
    notebook API reads every run with a fresh one, so a contract edited between two runs in one
    process is seen.
    """

    def __init__(self) -> None:
        self._registries: dict[tuple[Path, ...], ContractRegistry] = {}
        self._resolved: dict[tuple[Path, str], Path] = {}
        self._modes: dict[Path, int | None] = {}
        self._scripts: dict[tuple[tuple[Path, ...], str], tuple[Path, ...]] = {}

    def contracts(self, roots: Sequence[Path]) -> ContractRegistry:
        key = tuple(roots)
        if key not in self._registries:
            self._registries[key] = ContractRegistry.scan([root.resolve() for root in roots])
        return self._registries[key]

    def resolve(self, base: Path, relative: str) -> Path:
        key = (base, relative)
        if key not in self._resolved:
            self._resolved[key] = (base / relative).resolve()
        return self._resolved[key]

    def exists(self, path: Path) -> bool:
        return self._mode(path) is not None

    def is_file(self, path: Path) -> bool:
        mode = self._mode(path)
        return mode is not None and stat.S_ISREG(mode)

    def _mode(self, path: Path) -> int | None:
        if path not in self._modes:
            try:
                self._modes[path] = os.stat(path).st_mode
            except (OSError, ValueError):
                self._modes[path] = None
        return self._modes[path]

    def scripts(self, roots: Sequence[Path], entry_point: str) -> tuple[Path, ...]:
        """The script ``entry_point`` names: ``root/entry_point`` in the first root that has it,
        else every file of that name anywhere under the roots (one is found, several ambiguous)."""
        key = (tuple(roots), entry_point)
        if key not in self._scripts:
            self._scripts[key] = _script_candidates(roots, entry_point)
        return self._scripts[key]


def _script_candidates(roots: Sequence[Path], entry_point: str) -> tuple[Path, ...]:
    for root in roots:
        direct = root / entry_point
        if direct.is_file():
            return (direct.resolve(),)
    return tuple(
        sorted(
            {
                path.resolve()
                for root in roots
                if root.is_dir()
                for path in root.rglob(Path(entry_point).name)
                if path.is_file() and "__pycache__" not in path.parts
            }
        )
    )


def looks_like_scenario(path: Path) -> bool:
    """Cheap test used at collection: a YAML file with a top-level ``steps:`` key."""
    try:
        return bool(_SCENARIO_MARKER.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


def shaped_like_scenario(path: Path) -> bool:
    """The test for YAML met under a directory named on the command line (``pytest .``): its ``steps:``
    maps step names to entries naming a ``contract:``, or its ``dag:`` names a file.

    CI files share the top-level ``steps:`` key (Azure Pipelines, Cloud Build, Drone, Buildkite: a list of
    steps; Woodpecker: steps with an ``image:``) and must not become invalid scenarios. A file that is not
    YAML still counts when a line holds an indented ``contract:``: a scenario with a syntax error is then
    reported, not silently left out."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    nodes = top_level_nodes(text)
    if nodes is None:
        return bool(_STEP_CONTRACT_LINE.search(text)) and bool(_SCENARIO_MARKER.search(text))
    steps, dag = nodes.get("steps"), nodes.get("dag")
    if isinstance(dag, yaml.ScalarNode) and dag.value:
        return True
    return isinstance(steps, yaml.MappingNode) and any(
        isinstance(entry, yaml.MappingNode) and any(key.value == "contract" for key, _ in entry.value)
        for _, entry in steps.value
    )


def load_scenario(path: Path, options: PlanOptions | None = None, lookups: FileLookups | None = None) -> ScenarioPlan:
    """Read and resolve one scenario file; raises ``ConfigErrors`` listing every problem.

    Pass one ``lookups`` to every call that reads the scenarios of one run, so what they share
    (contract directories, scripts) is looked up once; without it, everything is read afresh.
    """
    document = YamlDocument.load(path)
    if not isinstance(document.data, dict):
        raise document.error((), f"expected a mapping with a 'steps:' key, found {type(document.data).__name__}")
    try:
        parsed = ScenarioFile.model_validate(document.data)
    except ValidationError as exc:
        raise document.validation_errors(exc, model=ScenarioFile) from None
    return _Resolver(document, parsed, options or PlanOptions(), lookups or FileLookups()).resolve()


def load_dag_wiring(path: Path, options: PlanOptions | None = None, lookups: FileLookups | None = None) -> DagWiring:
    """How the inputs of a DAG scenario are wired, also when some are not (``cursus-runtime wire``).

    Raises ``ConfigErrors`` when the scenario or its DAG file cannot be read, or it has no ``dag:``;
    wiring problems are in the returned ``DagWiring.problems``, other problems of the scenario are not looked at.
    """
    document = YamlDocument.load(path)
    if not isinstance(document.data, dict):
        raise document.error((), f"expected a mapping with a 'dag:' key, found {type(document.data).__name__}")
    try:
        parsed = ScenarioFile.model_validate(document.data)
    except ValidationError as exc:
        raise document.validation_errors(exc, model=ScenarioFile) from None
    if parsed.dag is None:
        raise document.error((), "this scenario has no 'dag:' key: its steps are wired as written under 'steps:'")
    return _Resolver(document, parsed, options or PlanOptions(), lookups or FileLookups()).dag_wiring()


def wire_dag_file(
    path: Path, interfaces: Sequence[Path], scripts: Sequence[Path] = (), lookups: FileLookups | None = None
) -> DagWiring:
    """A DAG file wired on its own, from the interfaces under ``interfaces``: every node's inputs by
    the rules of docs/dag.md, with no scenario to override them or to name data sources. A node runs no
    script when its interface has no entry_point, or, when ``scripts`` are given, its script is not there."""
    lookups = lookups or FileLookups()
    dag = read_dag(path)
    registry = lookups.contracts(list(interfaces))
    check = _not_runnable_check(lookups, list(scripts)) if scripts else _not_runnable_check(None, [])
    return wire_dag(path, dag, registry, {}, [], check)


def _not_runnable_check(
    lookups: FileLookups | None, script_roots: list[Path]
) -> Callable[[Contract, NodeEntry | None], str | None]:
    """Why a DAG node runs no script, or None when it runs one; ``lookups`` None: scripts are not looked for."""

    def not_runnable(contract: Contract, override: NodeEntry | None) -> str | None:
        if override is not None and override.script is not None:
            return None
        if contract.entry_point is None:
            return f"its interface {contract.path.name} has no entry_point"
        if lookups is not None and not lookups.scripts(script_roots, contract.entry_point):
            return f"its script {contract.entry_point} is not found in the scripts directories"
        return None

    return not_runnable


class _Resolver:
    def __init__(
        self, document: YamlDocument, parsed: ScenarioFile, options: PlanOptions, lookups: FileLookups
    ) -> None:
        self.document = document
        self.parsed = parsed
        self.options = options
        self.lookups = lookups
        self.base = document.path.parent
        self.errors: list[ConfigError] = []
        # DAG nodes that became steps: their contracts (variants merged) and where they are written
        self.dag_contracts: dict[str, Contract] = {}
        self.wiring: DagWiring | None = None
        self.missing_env: dict[str, list[tuple[str, Contract]]] = {}

    def _at(self, step_name: str, *rest: str | int) -> tuple[str | int, ...]:
        """Where a step's problem points: its `steps:` entry, or for a DAG node its `nodes:` entry
        (the `dag:` line when the scenario does not mention the node)."""
        if step_name not in self.dag_contracts:
            return ("steps", step_name, *rest)
        return ("nodes", step_name, *rest) if step_name in self.parsed.nodes else ("dag",)

    def fail(self, at: Sequence[str | int], message: str) -> None:
        self.errors.append(self.document.error(at, message))

    def dag_wiring(self) -> DagWiring:
        """Only the DAG's wiring (``load_dag_wiring``)."""
        registry = self.lookups.contracts(self._roots("contracts") + list(self.options.contracts))
        script_roots = self._roots("scripts") + list(self.options.scripts) + self._roots("python_path")
        assert self.parsed.dag is not None
        self._expand_dag(self.parsed.dag, registry, script_roots)
        if self.wiring is None:  # the DAG file is missing or invalid
            raise ConfigErrors(self.errors)
        return self.wiring

    def resolve(self) -> ScenarioPlan:
        parsed = self.parsed
        name = parsed.scenario or self.document.path.name.split(".")[0]
        contract_roots = self._roots("contracts") + [p for p in self.options.contracts]
        script_roots = self._roots("scripts") + [p for p in self.options.scripts]
        python_path = self._roots("python_path")
        registry = self.lookups.contracts(contract_roots)
        if parsed.dag is not None:
            self._expand_dag(parsed.dag, registry, script_roots + python_path)
            parsed = self.parsed
        variants = self._select_variants()

        contracts: dict[str, Contract] = {}
        for step_name, entry in parsed.steps.items():
            if step_name in self.dag_contracts:
                contracts[step_name] = self.dag_contracts[step_name]
                continue
            try:
                contracts[step_name] = registry.find(entry.contract)
            except ContractNotFound as exc:
                self.fail(self._at(step_name, "contract"), str(exc))

        steps: dict[str, StepPlan] = {}
        for step_name, entry in parsed.steps.items():
            contract = contracts.get(step_name)
            inputs = self._wire_inputs(step_name, entry, contract, contracts)
            if contract is None:
                continue
            script = self._find_script(step_name, entry, contract, script_roots + python_path)
            env = self._merge_env(step_name, entry, contract)
            job_args = self._job_args(step_name, entry, contract)
            self._check_expect(step_name, entry, contract)
            self._check_fuzz(step_name, entry, contract)
            input_views, output_views = self._channel_views(step_name, entry, contract)
            if script is None:
                continue
            imported = script_import(script, python_path)
            steps[step_name] = StepPlan(
                name=step_name,
                scenario=name,
                line=self.document.line_of(self._at(step_name)) or 1,
                contract=contract,
                script=script,
                module=imported.module,
                python_path=imported.python_path,
                env=env,
                job_args=job_args,
                inputs=inputs,
                timeout=entry.timeout or parsed.defaults.timeout or self.options.timeout,
                max_memory_mb=entry.max_memory_mb or parsed.defaults.max_memory_mb or self.options.max_memory_mb,
                expect=entry.expect,
                fuzz=entry.fuzz,
                inputs_read_only=_first_set(
                    entry.inputs_read_only, parsed.defaults.inputs_read_only, self.options.inputs_read_only
                ),
                pip=self.options.pip,
                input_views=input_views,
                output_views=output_views,
                secrets=_secret_names(parsed.defaults.secrets, entry.secrets),
                marks=tuple(entry.step_marks),
            )

        self._report_missing_env()
        order = self._order()
        if self.errors:
            raise ConfigErrors(self.errors)
        ordered = {step: steps[step] for step in order}
        edges = sorted(
            Edge(binding.step, binding.output, step.name, input_name)
            for step in ordered.values()
            for input_name, binding in step.inputs.items()
            if isinstance(binding, UpstreamInput)
        )
        edges.sort(key=lambda edge: (order.index(edge.downstream), edge.downstream, edge.input))
        return ScenarioPlan(
            name,
            self.document.path,
            parsed.description,
            parsed.data,
            variants,
            ordered,
            edges,
            self._execution(),
            self.wiring,
            dict(self.wiring.not_run) if self.wiring else {},
        )

    def _expand_dag(self, dag_entry: str, registry: ContractRegistry, script_roots: list[Path]) -> None:
        """Turn the DAG's runnable nodes into steps wired by logical name (plan/wiring.py), before
        everything else is resolved as for hand-written steps."""
        parsed = self.parsed
        dag_path = self.lookups.resolve(self.base, dag_entry)
        if not self.lookups.is_file(dag_path):
            self.fail(("dag",), f"DAG file not found: {dag_entry!r} (resolved to {dag_path}; relative to the scenario)")
            return
        try:
            dag = read_dag(dag_path)
        except (ConfigError, ConfigErrors) as exc:
            self.errors.extend(exc.errors if isinstance(exc, ConfigErrors) else [exc])
            return

        not_runnable = _not_runnable_check(self.lookups, script_roots)
        wiring = wire_dag(dag_path, dag, registry, parsed.nodes, list(parsed.data), not_runnable)
        self.wiring = wiring
        for node, message in wiring.problems:
            self.fail(("nodes", node) if node in parsed.nodes else ("dag",), message)
        for node in parsed.nodes:
            if node not in wiring.nodes and node not in dag.dag.nodes:
                self.fail(("nodes", node), f"{dag_path.name} has no node {node!r}{did_you_mean(node, dag.dag.nodes)}")
            elif node in wiring.not_run:
                self.fail(("nodes", node), f"node {node} is not run: {wiring.not_run[node]}")
        steps: dict[str, StepEntry] = {}
        for node in wiring.runnable():
            if node in parsed.steps:
                self.fail(("steps", node), f"{node!r} is both a step and a node of {dag_path.name}; rename the step")
                continue
            dag_node = wiring.nodes[node]
            override = parsed.nodes.get(node) or NodeEntry()
            written = override.model_dump(exclude_unset=True, exclude={"contract"})
            job_args = dict(override.job_args)
            declares_job_type = any("job_type" in (a.attribute, a.source) for a in dag_node.contract.job_arguments)
            if dag_node.job_type and declares_job_type and "job_type" not in job_args:
                job_args["job_type"] = dag_node.job_type
            inputs: dict[str, Any] = dict(wiring.inputs_of(node))
            for input_name, shape in override.inputs.items():  # as:/file: of a wired input stay
                if not shape.short and input_name in inputs:
                    inputs[input_name] = shape.model_copy(update={"source": inputs[input_name]})
            steps[node] = StepEntry.model_validate(
                {**written, "contract": dag_node.contract.name, "job_args": job_args, "inputs": inputs}
            )
            self.dag_contracts[node] = dag_node.contract
        generated = {
            name: DataSource(
                synthetic=SyntheticSpec(
                    rows=GENERATED_NODE_ROWS,
                    format=channel.data.format or "csv",
                    columns=channel.data.columns,
                )
            )
            for name, channel in wiring.generated_data.items()
            if channel.data is not None
        }
        self.parsed = parsed.model_copy(
            update={"steps": {**steps, **parsed.steps}, "data": {**parsed.data, **generated}}
        )

    def _execution(self) -> ExecutionSource | None:
        """The scenario's ``execution:``; ``--cursus-execution`` replaces its URI and
        ``--cursus-execution-layout`` its layout (limits stay the scenario's)."""
        location = self.parsed.execution
        uri = self.options.execution or (location.uri if location else None)
        if uri is None:
            return None
        layout = self.options.execution_layout or (location.layout if location else None) or DEFAULT_LAYOUT
        limits = S3Limits(location.max_files, location.max_bytes, location.sample_rows) if location else S3Limits()
        return ExecutionSource(uri, layout, limits)

    def _roots(self, key: str) -> list[Path]:
        roots = []
        for index, entry in enumerate(getattr(self.parsed, key)):
            path = self.lookups.resolve(self.base, entry)
            if not self.lookups.exists(path):
                self.fail(
                    (key, index),
                    f"path not found: {entry!r} (resolved to {path}; paths are relative to the scenario file)",
                )
            roots.append(path)
        return roots

    def _select_variants(self) -> dict[str, str]:
        wanted = self.options.source
        chosen = {}
        for source_name, source in self.parsed.data.items():
            variants = source.variants
            if len(variants) == 1:
                chosen[source_name] = variants[0]
            elif wanted in variants:
                chosen[source_name] = wanted
            relative = source.file_of(chosen[source_name]) if source_name in chosen else None
            if relative is not None:  # found before any step runs, with the line that names it
                path = self.lookups.resolve(self.base, relative)
                if not self.lookups.exists(path):
                    self.fail(
                        ("data", source_name, chosen[source_name]),
                        f"{relative!r} not found (resolved to {path}; paths are relative to the scenario file)",
                    )
            if source_name not in chosen:
                self.fail(
                    ("data", source_name),
                    f"--cursus-source {wanted} selects the '{wanted}' variant, but this source only has "
                    f"{', '.join(variants)}; add a '{wanted}:' variant or choose another --cursus-source",
                )
        return chosen

    def _wire_inputs(
        self, step_name: str, entry: StepEntry, contract: Contract | None, contracts: dict[str, Contract]
    ) -> dict[str, InputBinding]:
        bindings: dict[str, InputBinding] = {}
        references = entry.input_references
        for input_name in entry.inputs:
            at = self._at(step_name, "inputs", input_name)
            if contract is not None and input_name not in contract.inputs:
                self.fail(
                    at,
                    f"contract {contract.name} has no input {input_name!r}"
                    f"{did_you_mean(input_name, contract.inputs)}; "
                    f"its inputs are: {', '.join(contract.inputs) or '(none)'}",
                )
                continue
            if input_name not in references:
                continue  # a mapping without from: only says how the script sees the channel
            if not entry.inputs[input_name].short:
                at = (*at, "from")
            binding = self._parse_reference(at, step_name, references[input_name], contracts)
            if binding is not None:
                bindings[input_name] = binding
        if contract is not None and step_name not in self.dag_contracts:  # a DAG's wiring reports its own
            for input_name, channel in contract.inputs.items():
                if channel.required and input_name not in references:
                    self.fail(
                        self._at(step_name, "inputs"),
                        f"required input {input_name!r} of contract {contract.name} ({contract.path}) is not wired; "
                        f"add 'inputs: {{{input_name}: <data source or step.output>}}' to step {step_name!r}",
                    )
        return bindings

    def _parse_reference(
        self, at: tuple[str, ...], step_name: str, reference: str, contracts: dict[str, Contract]
    ) -> InputBinding | None:
        if reference in self.parsed.data:
            return SourceInput(reference)
        upstream, dot, output = reference.partition(".")

        def candidates() -> list[str]:  # for a did-you-mean, only needed when the reference is wrong
            return list(self.parsed.data) + [
                f"{other}.{out}" for other, c in contracts.items() if other != step_name for out in c.outputs
            ]

        if dot and upstream in self.parsed.steps:
            upstream_contract = contracts.get(upstream)
            if upstream == step_name:
                self.fail(at, f"{reference!r} makes step {step_name!r} read its own output")
                return None
            if upstream_contract is None:
                return UpstreamInput(upstream, output)  # its missing contract is reported already
            if output not in upstream_contract.outputs:
                self.fail(
                    at,
                    f"step {upstream!r} (contract {upstream_contract.name}) has no output {output!r}"
                    f"{did_you_mean(reference, candidates())}; "
                    f"its outputs are: {', '.join(upstream_contract.outputs) or '(none)'}",
                )
                return None
            return UpstreamInput(upstream, output)
        if dot:
            detail = f"there is no step {upstream!r}"
        else:
            detail = f"there is no data source {reference!r}"
        self.fail(
            at,
            f"{reference!r} is neither a data source nor <step>.<output> ({detail})"
            f"{did_you_mean(reference, candidates())}",
        )
        return None

    def _channel_views(
        self, step_name: str, entry: StepEntry, contract: Contract
    ) -> tuple[dict[str, ChannelView], dict[str, ChannelView]]:
        """The ``as:``/``file:`` of the step's inputs and outputs, checked against its contract: a
        declared channel, ``file:`` only on a directory channel, and no key given to the script twice."""
        views: dict[str, dict[str, ChannelView]] = {"inputs": {}, "outputs": {}}
        for kind, written, channels in (
            ("inputs", entry.inputs, contract.inputs),
            ("outputs", entry.outputs, contract.outputs),
        ):
            keys = {name: name for name in channels}  # the key the script gets -> the channel it stands for
            for name, shape in written.items():
                if shape.key is None and shape.file is None:
                    continue
                at = self._at(step_name, kind, name)
                if name not in channels:
                    if kind == "outputs":  # an unknown input is reported by its wiring
                        self.fail(
                            at,
                            f"contract {contract.name} has no output {name!r}{did_you_mean(name, channels)}; "
                            f"its outputs are: {', '.join(channels) or '(none)'}",
                        )
                    continue
                if shape.file is not None and PurePosixPath(channels[name].path).suffix:  # a file channel
                    self.fail(
                        (*at, "file"),
                        f"{kind[:-1]} {name!r} of contract {contract.name} is the file {channels[name].path}: "
                        "'file:' names a file inside a directory channel",
                    )
                    continue
                key = shape.key or name
                if shape.key is not None:
                    if keys.get(key, name) != name:
                        self.fail(
                            (*at, "as"),
                            f"the script would get {kind[:-1]} key {key!r} twice: for {name!r} and for "
                            f"{keys[key]!r}; give each channel its own key",
                        )
                        continue
                    del keys[name]
                    keys[key] = name
                views[kind][name] = ChannelView(key, shape.file)
        return views["inputs"], views["outputs"]

    def _find_script(self, step_name: str, entry: StepEntry, contract: Contract, roots: list[Path]) -> Path | None:
        if entry.script is not None:
            path = self.lookups.resolve(self.base, entry.script)
            if self.lookups.is_file(path):
                return path
            self.fail(self._at(step_name, "script"), f"script not found: {entry.script!r} (resolved to {path})")
            return None
        wanted = contract.entry_point
        if wanted is None:
            self.fail(
                self._at(step_name, "contract"),
                f"contract {contract.name} ({contract.path}) has no entry_point: it runs no script; "
                "set 'script:' on the step",
            )
            return None
        matches = self.lookups.scripts(roots, wanted)
        if len(matches) == 1:
            return matches[0]
        at = self._at(step_name, "contract")
        if len(matches) > 1:
            listed = ", ".join(str(m) for m in matches)
            self.fail(
                at,
                f"entry point {wanted!r} of contract {contract.name} is ambiguous: {listed}; set 'script:' on the step",
            )
        else:
            where = (
                ", ".join(str(r) for r in roots)
                or "(no script directories: add 'scripts:' to the scenario or --cursus-scripts)"
            )
            self.fail(at, f"entry point {wanted!r} of contract {contract.name} ({contract.path}) not found in {where}")
        return None

    def _merge_env(self, step_name: str, entry: StepEntry, contract: Contract) -> dict[str, str]:
        env = {**contract.optional_env, **self.parsed.defaults.env, **entry.env}
        for variable in contract.required_env:
            if variable not in env:
                self.missing_env.setdefault(variable, []).append((step_name, contract))
        return env

    def _report_missing_env(self) -> None:
        """Every missing required env var at once, one line per variable with every step needing it."""
        for variable, needing in self.missing_env.items():
            if len(needing) == 1:
                step_name, contract = needing[0]
                section = "nodes" if step_name in self.dag_contracts else "steps"
                self.fail(
                    self._at(step_name),
                    f"required env var {variable} of contract {contract.name} is not set; "
                    f"add it under {section}.{step_name}.env or defaults.env",
                )
                continue
            listed = ", ".join(f"{step} ({contract.name})" for step, contract in needing)
            self.fail(
                ("defaults",),
                f"required env var {variable} is not set; {variable} is required by {len(needing)} steps: {listed}; "
                f"add it under defaults.env, or under the env of each step",
            )

    def _job_args(self, step_name: str, entry: StepEntry, contract: Contract) -> dict[str, Any]:
        by_key = {}
        for argument in contract.job_arguments:
            by_key[argument.attribute] = argument
            if argument.source:
                by_key[argument.source] = argument
        values: dict[str, Any] = {argument.attribute: argument.default for argument in contract.job_arguments}
        given: set[str] = set()
        for key, value in entry.job_args.items():
            found = by_key.get(key)
            if found is None:
                declared = ", ".join(a.flag for a in contract.job_arguments) or "none"
                self.fail(
                    self._at(step_name, "job_args", key),
                    f"contract {contract.name} declares no job argument {key!r}{did_you_mean(key, by_key)} "
                    f"(declared: {declared})",
                )
                continue
            values[found.attribute] = value
            given.add(found.attribute)
        for argument in contract.job_arguments:
            if argument.required and argument.attribute not in given and argument.default is None:
                self.fail(
                    self._at(step_name),
                    f"job argument {argument.flag} of contract {contract.name} is required; "
                    f"add job_args: {{{argument.attribute}: ...}}",
                )
        return values

    def _check_expect(self, step_name: str, entry: StepEntry, contract: Contract) -> None:
        for output in entry.expect:
            if output not in contract.outputs:
                self.fail(
                    self._at(step_name, "expect", output),
                    f"contract {contract.name} has no output {output!r}{did_you_mean(output, contract.outputs)}; "
                    f"its outputs are: {', '.join(contract.outputs) or '(none)'}",
                )

    def _check_fuzz(self, step_name: str, entry: StepEntry, contract: Contract) -> None:
        named = entry.fuzz.inputs if entry.fuzz and entry.fuzz.inputs else []
        # a list points at the item's index, a mapping at its key
        places = {name: index for index, name in enumerate(named)} if isinstance(named, list) else {n: n for n in named}
        for input_name, place in places.items():
            if input_name not in contract.inputs:
                self.fail(
                    self._at(step_name, "fuzz", "inputs", place),
                    f"contract {contract.name} has no input {input_name!r}{did_you_mean(input_name, contract.inputs)}; "
                    f"its inputs are: {', '.join(contract.inputs) or '(none)'}",
                )

    def _order(self) -> list[str]:
        upstreams = {}
        for step_name, entry in self.parsed.steps.items():
            ups = set()
            for reference in entry.input_references.values():
                head, dot, _ = reference.partition(".")
                if dot and head in self.parsed.steps and head != step_name and reference not in self.parsed.data:
                    ups.add(head)
            upstreams[step_name] = ups
        try:
            return topological_order(list(self.parsed.steps), upstreams)
        except CycleError as exc:
            self.fail(
                ("steps", exc.cycle[0], "inputs"), f"steps form a cycle: {exc}; a step cannot depend on its own output"
            )
            return list(self.parsed.steps)


def _first_set(*values: bool | None) -> bool:
    """The step's setting, else the scenario's ``defaults:``, else the option's."""
    return next((value for value in values if value is not None), False)


def _secret_names(defaults: SecretsBlock, step: SecretsBlock) -> SecretNames:
    """The ``secrets:`` of ``defaults:`` with the step's over them: a step exempting a name the
    defaults mask (or masking one they exempt) wins for that step."""
    mask = (set(defaults.mask) - set(step.exempt)) | set(step.mask)
    exempt = (set(defaults.exempt) - set(step.mask)) | set(step.exempt)
    return SecretNames(mask=mask, exempt=exempt)
