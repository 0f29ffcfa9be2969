"""The JSON Schemas of the file formats (docs/schemas.md): generated from the models, accepting every file the
loaders accept (shorthand forms included), rejecting wrong keys and types as the loaders do, committed up to date."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_cursus.formats.json_schemas import DIALECT, FORMATS, json_schema_text
from schema_agreement import format_of, loader_accepts, schema_errors

REPOSITORY = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(
    path
    for folder in ("scenarios", "conftest_examples")
    for pattern in ("**/*.yaml", "**/*.dag.json")
    for path in (REPOSITORY / folder).glob(pattern)
)


def test_the_examples_cover_every_format() -> None:
    assert {format_of(path) for path in EXAMPLES} == set(FORMATS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_every_example_file_is_valid_for_the_loader_and_its_schema(path: Path) -> None:
    assert loader_accepts(path), f"{path} is an example the loader rejects"
    assert schema_errors(path) == []


# Files the loader rejects for a wrong key or type; the schema, generated from the same models, rejects them too.
PLANTED = {
    "misspelt_step_key.yaml": "steps:\n  one:\n    contrat: Writer\n",
    "timeout_not_a_number.yaml": "steps:\n  one:\n    contract: Writer\n    timeout: soon\n",
    "env_value_a_list.yaml": "steps:\n  one:\n    contract: Writer\n    env: {NAMES: [a, b]}\n",
    "input_a_number.yaml": "steps:\n  one:\n    contract: Writer\n    inputs: {DATA: 5}\n",
    "mark_skip_with_a_number.yaml": "steps:\n  one:\n    contract: Writer\n    marks: [{skip: 5}]\n",
    "mark_of_two_names.yaml": "steps:\n  one:\n    contract: Writer\n    marks: [{slow: [], fast: []}]\n",
    "xfail_unknown_keyword.yaml": "steps:\n  one:\n    contract: Writer\n    marks: [{xfail: {raises: KeyError}}]\n",
    "value_bound_a_string.yaml": (
        "steps:\n  one:\n    contract: Writer\n    expect:\n      out:\n        values: {m.json: {auc: {min: '0.7'}}}\n"
    ),
    "value_check_unknown_key.yaml": (
        "steps:\n  one:\n    contract: Writer\n    expect:\n      out:\n        values: {m.json: {auc: {above: 1}}}\n"
    ),
    "synthetic_column_unknown_type.yaml": (
        "data:\n  raw:\n    synthetic: {columns: {a: {type: decimal}}}\nsteps:\n  one:\n    contract: Writer\n"
    ),
    "bad_channel.contract.yaml": "name: Bad\nentry_point: bad.py\ninputs:\n  data: 5\n",
    "unknown_key.contract.yaml": "name: Bad\nentry_point: bad.py\noutput: {}\n",
    "strict_data_block.step.yaml": (
        "step_type: Bad\ncontract:\n  entry_point: bad.py\n  inputs:\n"
        "    data: {path: /opt/ml/processing/input, data: {columns: {a: {type: int}}, colums: {}}}\n"
    ),
    "edge_of_three.dag.json": '{"dag": {"nodes": ["A", "B"], "edges": [["A", "B", "A"]]}}',
    "version_true.dag.json": '{"version": true, "dag": {"nodes": ["A"]}}',
}


@pytest.mark.parametrize("name", PLANTED)
def test_a_file_the_loader_rejects_for_a_wrong_key_or_type_the_schema_rejects(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(PLANTED[name])
    assert not loader_accepts(path)
    assert schema_errors(path) != []


# The shorthand forms, each accepted by the loader and by the schema.
SHORTHANDS = {
    "shorthands.yaml": (
        "contracts: contracts\nscripts: scripts\nexecution: s3://bucket/run/\n"
        "data:\n  raw: {s3: s3://bucket/raw/}\n"
        "steps:\n  one:\n    contract: Writer\n    env: {RATIO: 0.5, ON: true, EMPTY: null}\n"
        "    inputs: {DATA: raw}\n    fuzz: true\n    marks: slow\n"
        "    expect:\n      out: {files: '*.csv', columns: id, rows: 'id > 0'}\n"
        "  two:\n    contract: Writer\n    inputs: {DATA: one.out}\n    job_args:\n    fuzz: {inputs: {DATA:}}\n"
    ),
    "shorthands.contract.yaml": (
        "name: Short\nentry_point: short.py\ninputs:\n  data: /opt/ml/processing/input\noutputs:\n"
        "env_vars: {optional: {RATIO: 0.7}}\nframework_requirements: {pandas: 2.1}\ncontainer_entrypoint: run.sh\n"
    ),
    "shorthands.step.yaml": (
        "step_type: Short\nbuilder_setting: kept by the ecosystem\n"
        "contract:\n  entry_point: short.py\n  ecosystem_key: dropped\n"
        "  inputs:\n    data: {path: /opt/ml/processing/input, semantic_hint: dropped}\n"
        "spec:\n  dependencies:\n    data: {aliases: raw, compatible_sources: Loader}\n  outputs:\n    out:\n"
    ),
    "shorthands.dag.json": '{"version": 1.2, "dag": {"nodes": ["A"], "edges": null}, "metadata": null}',
}


@pytest.mark.parametrize("name", SHORTHANDS)
def test_every_shorthand_the_loader_accepts_the_schema_accepts(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(SHORTHANDS[name])
    assert loader_accepts(path)
    assert schema_errors(path) == []


@pytest.mark.parametrize("kind", FORMATS)
def test_the_committed_schema_files_are_the_models_schemas(kind: str) -> None:
    committed = REPOSITORY / "docs" / "schemas" / f"{kind}.schema.json"
    assert committed.read_text(encoding="utf-8") == json_schema_text(kind), (
        f"{committed.relative_to(REPOSITORY)} is out of date: run "
        f"cursus-runtime schema {kind} -o docs/schemas/{kind}.schema.json"
    )


def test_the_schema_command_prints_a_draft_2020_12_schema_and_writes_one_with_o(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pytest_cursus.cli.main", "schema"]
    printed = subprocess.run([*command, "scenario"], capture_output=True, text=True, check=True, timeout=120)
    schema = json.loads(printed.stdout)
    assert schema["$schema"] == DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert {"steps", "nodes", "data", "dag"} <= set(schema["properties"])
    target = tmp_path / "editor" / "step.schema.json"
    written = subprocess.run([*command, "step", "-o", str(target)], capture_output=True, text=True, timeout=120)
    assert written.returncode == 0, written.stderr
    assert target.read_text(encoding="utf-8") == json_schema_text("step")
    unknown = subprocess.run([*command, "pipeline"], capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "invalid choice: 'pipeline'" in unknown.stderr
