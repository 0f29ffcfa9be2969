"""DAG scenarios outside and around pytest: ``cursus-runtime wire`` and ``init`` as child processes, and
the nodes that run no script as the terminal summary, ``list`` and the HTML report show them (docs/dag.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_dag_scenarios import EDGES, write_pipeline

COMMAND = [sys.executable, "-m", "pytest_cursus.cli.main"]


def cursus_runtime(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


# Payload no longer reads XGBoostTraining: its model_input has no candidate it accepts
UNWIRABLE_EDGES = [edge for edge in EDGES if edge != ["XGBoostTraining", "Payload"]] + [["Package", "Payload"]]


# --- wire ------------------------------------------------------------------------------------------


def test_wire_prints_every_input_of_the_ten_node_dag_with_the_rule_that_wired_it(tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    result = cursus_runtime("wire", "pipeline.dag.json", "--interfaces", "interfaces", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "pipeline.dag.json: 10 node(s), 9 input(s) wired, 0 unwired (0 required)"
    assert lines[1].split() == ["node", "input", "from", "rule"]
    rows = {tuple(line.split(maxsplit=3)) for line in lines[3:12]}
    assert rows == {
        ("TabularPreprocessing_training", "DATA", "CradleDataLoading_training.DATA", "data source"),
        ("TabularPreprocessing_calibration", "DATA", "CradleDataLoading_calibration.DATA", "data source"),
        ("XGBoostTraining", "input_path", "TabularPreprocessing_training.processed_data", "alias"),
        ("XGBoostModelEval_calibration", "model_input", "XGBoostTraining.model_output", "compatible_source"),
        ("XGBoostModelEval_calibration", "processed_data", "TabularPreprocessing_calibration.processed_data", "name"),
        ("ModelCalibration_calibration", "evaluation_data", "XGBoostModelEval_calibration.eval_output", "alias"),
        ("Package", "model_input", "XGBoostTraining.model_output", "compatible_source"),
        ("Package", "calibration_model", "ModelCalibration_calibration.calibration_output", "compatible_source"),
        ("Payload", "model_input", "XGBoostTraining.model_output", "compatible_source"),
    }
    assert (
        "data source  CradleDataLoading_training: its interface cradledataloading.step.yaml has no entry_point; "
        "read by TabularPreprocessing_training"
    ) in lines
    assert (
        "not run      Registration: its interface registration.step.yaml has no entry_point, "
        "and no node that runs reads its outputs"
    ) in lines


def test_wire_of_a_scenario_shows_its_explicit_inputs_and_uses_its_own_contracts(tmp_path: Path) -> None:
    scenario = write_pipeline(tmp_path)
    scenario.write_text(
        scenario.read_text()
        + "nodes:\n  Payload:\n    inputs: {model_input: XGBoostTraining.model_output}\n"
        + "data:\n  CradleDataLoading_training.DATA: {file: raw.csv}\n"
    )
    result = cursus_runtime("wire", "scenarios/pipeline.yaml", "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"wirings", "unwired"}
    assert {"node": "Payload", "input": "model_input", "from": "XGBoostTraining.model_output", "rule": "explicit"} in (
        document["wirings"]
    )
    assert {
        "node": "TabularPreprocessing_training",
        "input": "DATA",
        "from": "CradleDataLoading_training.DATA",
        "rule": "data source",
    } in document["wirings"]
    assert len(document["wirings"]) == 9 and document["unwired"] == []


def test_wire_exits_1_and_lists_the_unwired_required_input_with_why(tmp_path: Path) -> None:
    write_pipeline(tmp_path, edges=UNWIRABLE_EDGES)

    table = cursus_runtime("wire", "pipeline.dag.json", "--interfaces", "interfaces", cwd=tmp_path)
    assert table.returncode == 1
    assert any(line.split() == ["Payload", "model_input", "-", "unwired"] for line in table.stdout.splitlines())
    assert "1 unwired (1 required)" in table.stdout
    assert "problems:" in table.stdout
    assert "Wire it explicitly: nodes: {Payload: {inputs: {model_input:" in table.stdout

    as_json = cursus_runtime("wire", "pipeline.dag.json", "--interfaces", "interfaces", "--json", cwd=tmp_path)
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    assert document["unwired"] == [{"node": "Payload", "input": "model_input", "required": True}]
    assert {"node": "Payload", "input": "model_input", "from": None, "rule": "unwired"} in document["wirings"]
    assert "required dependency 'model_input' is not wired" in as_json.stderr


def test_wire_exits_2_with_the_message_on_an_unreadable_file_or_a_usage_error(tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    (tmp_path / "broken.dag.json").write_text('{"dag": {"nodes": [')

    broken = cursus_runtime("wire", "broken.dag.json", "--interfaces", "interfaces", cwd=tmp_path)
    assert broken.returncode == 2
    assert "broken.dag.json:1: invalid JSON" in broken.stderr

    no_interfaces = cursus_runtime("wire", "pipeline.dag.json", cwd=tmp_path)
    assert no_interfaces.returncode == 2
    assert "pipeline.dag.json is a DAG file: say where its interfaces are with --interfaces DIR" in (
        no_interfaces.stderr
    )

    missing = cursus_runtime("wire", "nowhere.dag.json", cwd=tmp_path)
    assert missing.returncode == 2
    assert "argument SCENARIO_OR_DAG: nowhere.dag.json does not exist" in missing.stderr

    (tmp_path / "steps_only.yaml").write_text("steps:\n  only: {contract: Writer}\n")
    no_dag = cursus_runtime("wire", "steps_only.yaml", cwd=tmp_path)
    assert no_dag.returncode == 2
    assert "this scenario has no 'dag:' key" in no_dag.stderr
