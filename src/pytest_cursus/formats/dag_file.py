"""Pydantic model of a pipeline DAG file (docs/dag.md): JSON or YAML, the ecosystem's shape.

    {"version": "1", "dag": {"nodes": ["A", "B"], "edges": [["A", "B"]]}, "metadata": {...}}

Node names are ``<StepType>[_<job type>]``; the wiring (plan/wiring.py) gives them meaning. A cycle
is found by the plan layer, which owns the graph algorithms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pytest_cursus.errors import ConfigError, SourceLocation
from pytest_cursus.formats.shorthand_forms import null_as_empty_list, null_as_empty_mapping
from pytest_cursus.formats.yaml_document import YamlDocument

JSON_SUFFIXES = (".json",)


class DagGraph(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nodes: list[str] = Field(min_length=1)
    edges: list[tuple[str, str]] = Field(default_factory=list)

    _empty_edges = null_as_empty_list("edges", list[tuple[str, str]])

    @field_validator("nodes")
    @classmethod
    def _unique_nodes(cls, nodes: list[str]) -> list[str]:
        repeated = sorted({node for node in nodes if nodes.count(node) > 1})
        if repeated:
            raise ValueError(f"each node may be declared once; declared more than once: {', '.join(repeated)}")
        return nodes

    @model_validator(mode="after")
    def _edges_name_nodes(self) -> DagGraph:
        declared = set(self.nodes)
        problems = []
        for index, (source, target) in enumerate(self.edges):
            unknown = [name for name in (source, target) if name not in declared]
            if unknown:
                problems.append(f"edges[{index}] [{source!r}, {target!r}] names undeclared node {', '.join(unknown)}")
            elif source == target:
                problems.append(f"edges[{index}] makes node {source!r} its own upstream")
        if problems:
            raise ValueError("; ".join(problems) + f" (declared nodes: {', '.join(self.nodes)})")
        return self

    def upstreams(self) -> dict[str, list[str]]:
        """The direct upstream nodes of every node, in edge order."""
        found: dict[str, list[str]] = {node: [] for node in self.nodes}
        for source, target in self.edges:
            if source not in found[target]:
                found[target].append(source)
        return found


class DagFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = None
    dag: DagGraph
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version", mode="before", json_schema_input_type=Union[str, int, float, None])  # noqa: UP007
    @classmethod
    def _major_one(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value)
        if isinstance(value, bool) or text.split(".")[0] != "1":
            raise ValueError(f'expected a version of major 1 such as "1" or "1.2", found {value!r}')
        return text

    _empty_metadata = null_as_empty_mapping("metadata", dict[str, Any])


def load_dag_file(path: Path) -> tuple[DagFile, YamlDocument]:
    """Read a DAG file (JSON by its suffix, else YAML); errors name the file, the line where it is
    known and the field path (``dag.edges[3]``)."""
    if path.name.endswith(JSON_SUFFIXES):
        document = _json_document(path)
    else:
        document = YamlDocument.load(path)
    if not isinstance(document.data, dict):
        raise document.error(
            (),
            f'expected a mapping with a \'dag:\' key ({{"dag": {{"nodes": [...], "edges": [...]}}}}), '
            f"found {type(document.data).__name__}",
        )
    try:
        return DagFile.model_validate(document.data), document
    except ValidationError as exc:
        raise document.validation_errors(exc, model=DagFile) from None


def _json_document(path: Path) -> YamlDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", SourceLocation(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg} (column {exc.colno})", SourceLocation(path, exc.lineno)) from None
    # JSON is YAML: its node tree gives the line of a field for the error messages, when it parses
    try:
        root = YamlDocument.parse(text, path).root
    except ConfigError:
        root = None
    return YamlDocument(path=path, data=data, root=root)
