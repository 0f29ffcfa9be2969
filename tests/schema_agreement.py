"""The JSON Schemas (docs/schemas.md) against the loaders: a file the loader accepts, the schema accepts.

PipelineProject checks every scenario and contract a test writes through it, so the whole suite's fixtures
are examples; tests/test_json_schemas.py checks the repository's example files and planted wrong ones.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from pytest_cursus.errors import ConfigError, ConfigErrors
from pytest_cursus.formats.contracts import load_contract
from pytest_cursus.formats.dag_file import load_dag_file
from pytest_cursus.formats.json_schemas import json_schema
from pytest_cursus.formats.scenario_file import ScenarioFile


@cache
def validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(json_schema(kind))


def format_of(path: Path) -> str:
    name = path.name
    if name.endswith(".step.yaml"):
        return "step"
    if name.endswith(".contract.yaml"):
        return "contract"
    if ".dag." in name:
        return "dag"
    return "scenario"


def as_editor_reads(path: Path) -> Any:
    """The file as a YAML language server sees it: JSON types, a YAML date a string."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return json.loads(
        json.dumps(data, default=lambda value: value.isoformat() if isinstance(value, dt.date) else value)
    )


def loader_accepts(path: Path) -> bool:
    """Whether the file's own model takes it (the checks beyond the file, such as a contract found, aside)."""
    kind = format_of(path)
    try:
        if kind in ("step", "contract"):
            load_contract(path)
        elif kind == "dag":
            load_dag_file(path)
        else:
            ScenarioFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (ConfigError, ConfigErrors, ValidationError, yaml.YAMLError, ValueError, TypeError):
        return False
    return True


def schema_errors(path: Path) -> list[str]:
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator(format_of(path)).iter_errors(as_editor_reads(path))
    ]


def assert_schema_accepts_what_the_loader_accepts(path: Path) -> None:
    if loader_accepts(path):
        errors = schema_errors(path)
        assert not errors, f"the loader accepts {path} but its JSON Schema rejects it: {errors}"
