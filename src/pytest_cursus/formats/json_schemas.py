"""JSON Schemas (draft 2020-12) of the file formats, generated from their pydantic models (docs/schemas.md).

Editors complete and validate with them (``# yaml-language-server: $schema=...``). They describe what the
loaders accept, shorthand forms included (each before-validator declares its ``json_schema_input_type``);
checks that span fields (one kind of data source, a DAG edge naming declared nodes) stay the loader's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from pytest_cursus.formats.contract_files import ECOSYSTEM_LENIENT_MODELS, PlainContractFile, StepInterfaceFile
from pytest_cursus.formats.dag_file import DagFile
from pytest_cursus.formats.scenario_file import ScenarioFile

DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class FileFormat:
    model: type[BaseModel]
    title: str
    files: str  # the file names the schema is for, as docs/schemas.md lists them
    # models whose unknown keys the loader drops rather than rejects in this format
    lenient: tuple[type[BaseModel], ...] = ()


FORMATS: dict[str, FileFormat] = {
    "scenario": FileFormat(ScenarioFile, "pytest-cursus scenario file", "*.yaml scenario files"),
    "contract": FileFormat(PlainContractFile, "pytest-cursus script contract", "*.contract.yaml"),
    "step": FileFormat(
        StepInterfaceFile, "pytest-cursus step interface", "*.step.yaml", lenient=ECOSYSTEM_LENIENT_MODELS
    ),
    "dag": FileFormat(DagFile, "pytest-cursus pipeline DAG", "*.dag.json, *.dag.yaml"),
}


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one format: ``scenario``, ``contract``, ``step`` or ``dag``."""
    try:
        file_format = FORMATS[kind]
    except KeyError:
        raise ValueError(f"expected a format of {', '.join(FORMATS)}, found {kind!r}") from None
    schema = file_format.model.model_json_schema(mode="validation")
    definitions = schema.get("$defs", {})
    for model in file_format.lenient:
        definition = definitions.get(model.__name__, {})
        for variant in (definition, *definition.get("anyOf", ())):
            variant.pop("additionalProperties", None)
    return {"$schema": DIALECT, **schema, "title": file_format.title}


def json_schema_text(kind: str) -> str:
    """The schema as the committed docs/schemas/<kind>.schema.json holds it: stable key order, one newline."""
    return json.dumps(json_schema(kind), indent=2, sort_keys=True) + "\n"
