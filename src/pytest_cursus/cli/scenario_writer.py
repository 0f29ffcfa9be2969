"""``cursus-runtime init --dag``: the explicit scenario equivalent to a pipeline DAG, for users who
want to edit it (docs/dag.md).

Every wired input is written as ``<node>.<output>`` under ``steps:``, with the rule that wired it as a
comment; an input read from a node that runs no script gets a ``data:`` entry of that name (a
``synthetic:`` stub from the output's, else the reading input's, ``data:`` schema; else a ``file:``
placeholder that fails until it is replaced); the required env vars are ``TODO`` placeholders under
``defaults.env``; the job type is ``job_args.job_type``. An explicit step names the base interface, so a
job-type variant's optional env is written into the step's ``env:``; any other change a variant makes is
noted in a comment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from pytest_cursus.formats.contract_files import ChannelSpec
from pytest_cursus.formats.contracts import Contract, ContractNotFound, ContractRegistry
from pytest_cursus.plan.scenario_plan import GENERATED_NODE_ROWS
from pytest_cursus.plan.wiring import RULE_UNWIRED, DagWiring

ENV_PLACEHOLDER = "TODO"
FILE_PLACEHOLDER = "TODO/{name}"


def explicit_scenario(
    wiring: DagWiring, registry: ContractRegistry, written_to: Path, interfaces: list[Path], scripts: list[Path]
) -> str:
    """The scenario YAML; ``written_to`` is the directory the file will be in (paths are relative to it)."""
    name = wiring.path.name.split(".")[0]
    lines = [
        f"# Written by 'cursus-runtime init' from {wiring.path.name}: its wiring spelled out (docs/dag.md).",
        f"# Replace every {ENV_PLACEHOLDER} placeholder, then check it with: cursus-runtime list <this file>",
        f"scenario: {name}",
        f"contracts: {_flow([_relative(p, written_to) for p in interfaces])}",
    ]
    if scripts:
        lines.append(f"scripts: {_flow([_relative(p, written_to) for p in scripts])}")
    else:
        lines.append(f"scripts: [{ENV_PLACEHOLDER}/scripts]  # the directories holding the steps' entry points")
    steps = [node for node in wiring.runnable()]
    lines += _env_lines(wiring, steps)
    lines += _data_lines(wiring, steps)
    lines.append("steps:")
    for node in steps:
        lines += _step_lines(wiring, registry, node)
    for node, reason in wiring.not_run.items():
        lines.append(f"# not run: {node}: {reason}")
    return "\n".join(lines) + "\n"


def _env_lines(wiring: DagWiring, steps: list[str]) -> list[str]:
    needed: dict[str, list[str]] = {}
    for node in steps:
        for variable in wiring.nodes[node].contract.required_env:
            needed.setdefault(variable, []).append(node)
    if not needed:
        return []
    lines = ["defaults:", "  env:"]
    for variable, nodes in needed.items():
        lines.append(f"    # required by {', '.join(nodes)}")
        lines.append(f"    {variable}: {ENV_PLACEHOLDER}")
    return lines


def _data_lines(wiring: DagWiring, steps: list[str]) -> list[str]:
    lines: list[str] = []
    written: set[str] = set()
    for w in wiring.wirings:
        if w.node not in steps or w.source is None or w.source in written:
            continue
        upstream, _, output = w.source.partition(".")
        source_node = wiring.nodes.get(upstream)
        if source_node is None or source_node.not_runnable is None:
            continue
        written.add(w.source)
        lines.append(
            f"  {_key(w.source)}:  # output {output} of {upstream}, which runs no script: {source_node.not_runnable}"
        )
        schema = _schema(source_node.contract.outputs.get(output)) or _schema(
            wiring.nodes[w.node].contract.inputs.get(w.input)
        )
        if schema is None:
            lines.append("    # no data: schema for it in the interfaces: a file or directory holding this output")
            lines.append(f"    file: {FILE_PLACEHOLDER.format(name=w.source)}")
            continue
        stub = {"synthetic": {"rows": GENERATED_NODE_ROWS, **schema}}
        dumped = yaml.safe_dump(stub, sort_keys=False, default_flow_style=False, width=1000)
        lines += [f"    {line}" for line in dumped.splitlines()]
    return ["data:", *lines] if lines else []


def _step_lines(wiring: DagWiring, registry: ContractRegistry, node: str) -> list[str]:
    dag_node = wiring.nodes[node]
    contract = dag_node.contract
    lines = [f"  {_key(node)}:", f"    contract: {_key(contract.name)}"]
    declares_job_type = any("job_type" in (a.attribute, a.source) for a in contract.job_arguments)
    if dag_node.job_type and declares_job_type:
        lines.append(f"    job_args: {_flow({'job_type': dag_node.job_type})}")
    lines += _variant_lines(registry, contract, dag_node.job_type)
    inputs = [w for w in wiring.wirings if w.node == node]
    if inputs:
        lines.append("    inputs:")
    for w in inputs:
        if w.rule == RULE_UNWIRED:
            required = "required" if w.required else "optional"
            lines.append(f"      # {_key(w.input)}: <node>.<output> or a data source  ({required}, not wired)")
        else:
            lines.append(f"      {_key(w.input)}: {_key(w.source or '')}  # {w.rule}")
    return lines


def _variant_lines(registry: ContractRegistry, contract: Contract, job_type: str | None) -> list[str]:
    """What a job-type variant changes, since an explicit step names the base interface."""
    try:
        base = registry.find(contract.name)
    except ContractNotFound:
        return []
    if job_type is None or base.fingerprint() == contract.fingerprint():
        return []
    env = {k: v for k, v in contract.optional_env.items() if base.optional_env.get(k) != v}
    lines = [f"    # from the {job_type!r} variant of {contract.name}:"]
    if env:
        lines.append(f"    env: {_flow(env)}")
    if base.block.model_copy(update={"env_vars": contract.block.env_vars}) != contract.block:
        lines.append("    # the variant also changes the contract beyond its optional env: check this step by hand")
    return lines


def _schema(channel: ChannelSpec | None) -> dict[str, Any] | None:
    if channel is None or channel.data is None:
        return None
    columns = {name: spec.model_dump(mode="json", exclude_defaults=True) for name, spec in channel.data.columns.items()}
    return {"format": channel.data.format or "csv", "columns": columns}


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()


def _key(text: str) -> str:
    """A scalar as YAML writes it (quoted when it must be)."""
    return _flow(text).removesuffix("\n...").strip()


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
