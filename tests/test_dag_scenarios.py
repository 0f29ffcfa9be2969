"""DAG scenarios (docs/dag.md): a pipeline DAG plus interface files become wired steps, by logical name."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.errors import ConfigErrors
from pytest_cursus.formats.dag_file import load_dag_file
from pytest_cursus.plan.scenario_plan import SourceInput, UpstreamInput, load_scenario
from pytest_cursus.plan.wiring import read_dag

OUTPUT = "/opt/ml/processing/output"
INPUT = "/opt/ml/processing/input"

# Copies every input into each output and leaves a marker: enough to see what fed what.
RELAY_SCRIPT = """
import os, shutil

def main(input_paths, output_paths, environ_vars, job_args):
    for out in output_paths.values():
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "done.txt"), "w") as handle:
            handle.write(str(job_args.job_type if hasattr(job_args, "job_type") else ""))
        for name, path in input_paths.items():
            if os.path.isdir(path):
                shutil.copytree(path, os.path.join(out, name), dirs_exist_ok=True)
"""

SCHEMA = {
    "format": "csv",
    "columns": {"id": {"type": "int", "unique": True}, "label": {"type": "int", "min": 0, "max": 1}},
}

# name -> (entry point or None, contract inputs, contract outputs, spec, extra top-level keys)
INTERFACES: dict[str, dict] = {
    "CradleDataLoading": {
        "contract": {"outputs": {"DATA": {"path": f"{OUTPUT}/data", "data": SCHEMA}, "METADATA": f"{OUTPUT}/meta"}},
        "spec": {
            "dependencies": [],
            "outputs": [
                {"logical_name": "DATA", "output_type": "processing_output", "aliases": ["RAW"]},
                {"logical_name": "METADATA", "output_type": "processing_output"},
            ],
        },
    },
    "TabularPreprocessing": {
        "contract": {
            "entry_point": "relay.py",
            "inputs": {"DATA": f"{INPUT}/data"},
            "outputs": {"processed_data": OUTPUT},
            "job_arguments": [{"flag": "--job_type", "source": "job_type", "required": True}],
            "env_vars": {"required": ["LABEL_FIELD"], "optional": {"TRAIN_RATIO": "0.7"}},
        },
        "spec": {
            # the mapping form keyed by logical name; `priority` is an ecosystem key we do not read
            "dependencies": {
                "DATA": {
                    "dependency_type": "processing_output",
                    "compatible_sources": ["CradleDataLoading"],
                    "priority": 1,
                }
            },
            "outputs": [
                {"logical_name": "processed_data", "output_type": "processing_output", "aliases": ["input_path"]}
            ],
        },
        "variants": {"calibration": {"contract": {"env_vars": {"optional": {"TRAIN_RATIO": "1.0"}}}}},
    },
    "XGBoostTraining": {
        "contract": {
            "entry_point": "relay.py",
            "inputs": {"input_path": f"{INPUT}/data"},
            "outputs": {"model_output": "/opt/ml/model", "evaluation_output": f"{OUTPUT}/eval"},
            "env_vars": {"required": ["LABEL_FIELD"]},
        },
        "spec": {
            "dependencies": [
                {"logical_name": "input_path", "dependency_type": "training_data", "compatible_sources": ["X"]}
            ],
            "outputs": [
                {"logical_name": "model_output", "output_type": "model_artifacts"},
                {"logical_name": "evaluation_output", "output_type": "processing_output"},
            ],
        },
    },
    "XGBoostModelEval": {
        "contract": {
            "entry_point": "relay.py",
            "inputs": {"model_input": f"{INPUT}/model", "processed_data": f"{INPUT}/eval_data"},
            "outputs": {"eval_output": f"{OUTPUT}/eval", "metrics_output": f"{OUTPUT}/metrics"},
            "job_arguments": [{"flag": "--job_type", "source": "job_type"}],
        },
        "spec": {
            "dependencies": [
                # named differently from XGBoostTraining's model_output: wired by compatible source only
                {
                    "logical_name": "model_input",
                    "dependency_type": "model_artifacts",
                    "compatible_sources": ["XGBoostTraining"],
                },
                {"logical_name": "processed_data", "compatible_sources": ["TabularPreprocessing"]},
            ],
            "outputs": [
                {"logical_name": "eval_output", "output_type": "processing_output", "aliases": ["evaluation_data"]},
                {"logical_name": "metrics_output", "output_type": "processing_output"},
            ],
        },
    },
    "ModelCalibration": {
        "contract": {
            "entry_point": "relay.py",
            "inputs": {"evaluation_data": f"{INPUT}/eval_data"},
            "outputs": {"calibration_output": f"{OUTPUT}/calibration"},
            "env_vars": {"required": ["LABEL_FIELD"]},
        },
        "spec": {
            "dependencies": [{"logical_name": "evaluation_data"}],
            "outputs": [{"logical_name": "calibration_output"}],
        },
    },
    "Package": {
        "contract": {
            "entry_point": "relay.py",
            "inputs": {"model_input": f"{INPUT}/model", "calibration_model": f"{INPUT}/calibration"},
            "outputs": {"packaged_model": f"{OUTPUT}/packaged"},
        },
        "spec": {
            "dependencies": [
                {
                    "logical_name": "model_input",
                    "compatible_sources": ["XGBoostTraining"],
                    "dependency_type": "model_artifacts",
                },
                {
                    "logical_name": "calibration_model",
                    "required": False,
                    "aliases": [],
                    "compatible_sources": ["ModelCalibration"],
                },
            ],
            "outputs": [{"logical_name": "packaged_model", "output_type": "model_artifacts"}],
        },
    },
    "Payload": {
        "contract": {
            "entry_point": "relay.py",
            "inputs": {"model_input": f"{INPUT}/model"},
            "outputs": {"payload_sample": f"{OUTPUT}/payload"},
        },
        "spec": {
            "dependencies": [
                {
                    "logical_name": "model_input",
                    "dependency_type": "model_artifacts",
                    "compatible_sources": ["XGBoostTraining"],
                }
            ],
            "outputs": [{"logical_name": "payload_sample", "output_type": "payload_samples"}],
        },
    },
    "Registration": {
        "spec": {
            "dependencies": [
                {"logical_name": "PackagedModel", "compatible_sources": ["Package"]},
                {"logical_name": "GeneratedPayloadSamples", "compatible_sources": ["Payload"]},
            ],
            "outputs": [],
        },
    },
}

NODES = [
    "CradleDataLoading_training",
    "CradleDataLoading_calibration",
    "TabularPreprocessing_training",
    "TabularPreprocessing_calibration",
    "XGBoostTraining",
    "XGBoostModelEval_calibration",
    "ModelCalibration_calibration",
    "Package",
    "Payload",
    "Registration",
]
EDGES = [
    ["CradleDataLoading_training", "TabularPreprocessing_training"],
    ["CradleDataLoading_calibration", "TabularPreprocessing_calibration"],
    ["TabularPreprocessing_training", "XGBoostTraining"],
    ["XGBoostTraining", "XGBoostModelEval_calibration"],
    ["TabularPreprocessing_calibration", "XGBoostModelEval_calibration"],
    ["XGBoostModelEval_calibration", "ModelCalibration_calibration"],
    ["XGBoostTraining", "Package"],
    ["ModelCalibration_calibration", "Package"],
    ["XGBoostTraining", "Payload"],
    ["Package", "Registration"],
    ["Payload", "Registration"],
]

SCENARIO = """\
dag: ../pipeline.dag.json
contracts: [../interfaces]
scripts: [../scripts]
defaults:
  env: {LABEL_FIELD: label}
"""


# how the ten-node DAG's inputs are wired: (node, input, from, rule)
TEN_NODE_WIRING = {
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


def write_pipeline(root: Path, scenario: str = SCENARIO, *, edges: list[list[str]] | None = None) -> Path:
    (root / "interfaces").mkdir(exist_ok=True)
    (root / "scripts").mkdir(exist_ok=True)
    (root / "scenarios").mkdir(exist_ok=True)
    for step_type, body in INTERFACES.items():
        (root / "interfaces" / f"{step_type.lower()}.step.yaml").write_text(
            json.dumps({"step_type": step_type, **body})
        )
    (root / "scripts" / "relay.py").write_text(textwrap.dedent(RELAY_SCRIPT))
    dag = {"version": "1.0", "dag": {"nodes": NODES, "edges": EDGES if edges is None else edges}, "metadata": {}}
    (root / "pipeline.dag.json").write_text(json.dumps(dag, indent=2))
    path = root / "scenarios" / "pipeline.yaml"
    path.write_text(scenario)
    return path


def wiring_table(path: Path) -> set[tuple[str, str, str | None, str]]:
    plan = load_scenario(path)
    assert plan.wiring is not None
    return {(w.node, w.input, w.source, w.rule) for w in plan.wiring.wirings}


def test_a_ten_node_dag_wires_by_name_alias_and_compatible_source_only(tmp_path: Path) -> None:
    plan = load_scenario(write_pipeline(tmp_path))

    assert list(plan.steps) == [
        "TabularPreprocessing_training",
        "TabularPreprocessing_calibration",
        "XGBoostTraining",
        "XGBoostModelEval_calibration",
        "ModelCalibration_calibration",
        "Package",
        "Payload",
    ]
    assert wiring_table(plan.path) == TEN_NODE_WIRING
    steps = plan.steps
    assert steps["XGBoostTraining"].inputs == {
        "input_path": UpstreamInput("TabularPreprocessing_training", "processed_data")
    }
    # a root node without entry_point: its output is a data source, generated from the output's schema
    assert steps["TabularPreprocessing_training"].inputs == {"DATA": SourceInput("CradleDataLoading_training.DATA")}
    assert plan.data["CradleDataLoading_training.DATA"].synthetic is not None
    # the suffix is the job type, and the calibration variant is merged over the base contract
    assert steps["TabularPreprocessing_calibration"].job_args["job_type"] == "calibration"
    assert steps["TabularPreprocessing_calibration"].env["TRAIN_RATIO"] == "1.0"
    assert steps["TabularPreprocessing_training"].env["TRAIN_RATIO"] == "0.7"
    assert steps["XGBoostModelEval_calibration"].job_args["job_type"] == "calibration"
    # the registration sink runs no script and feeds nothing that runs
    assert set(plan.not_run) == {"Registration"}
    assert "no entry_point" in plan.not_run["Registration"]


def test_an_ambiguous_match_is_an_error_naming_the_candidates_and_the_explicit_wiring(tmp_path: Path) -> None:
    # ModelCalibration reads evaluation_data; with eval_output no longer an alias, two outputs of the
    # compatible source XGBoostModelEval fit, and neither is chosen
    interfaces = json.loads(json.dumps(INTERFACES))
    INTERFACES["XGBoostModelEval"]["spec"]["outputs"][0]["aliases"] = []
    INTERFACES["ModelCalibration"]["spec"]["dependencies"][0]["compatible_sources"] = ["XGBoostModelEval"]
    try:
        path = write_pipeline(tmp_path)
    finally:
        INTERFACES.clear()
        INTERFACES.update(interfaces)
    with pytest.raises(ConfigErrors) as raised:
        load_scenario(path)
    message = str(raised.value)
    assert "pipeline.dag.json: node ModelCalibration_calibration" in message
    assert "'evaluation_data' is ambiguous by rule 'compatible_source'" in message
    assert "XGBoostModelEval_calibration.eval_output, XGBoostModelEval_calibration.metrics_output" in message
    assert "nodes: {ModelCalibration_calibration: {inputs: {evaluation_data:" in message


def test_an_unwired_required_dependency_lists_each_candidate_and_why_it_was_refused(tmp_path: Path) -> None:
    edges = [edge for edge in EDGES if edge != ["XGBoostTraining", "Payload"]] + [["Package", "Payload"]]
    with pytest.raises(ConfigErrors) as raised:
        load_scenario(write_pipeline(tmp_path, edges=edges))
    message = str(raised.value)
    assert "node Payload (payload.step.yaml): required dependency 'model_input' is not wired" in message
    assert (
        "Package.packaged_model refused: another name, not among its aliases, "
        "step type Package not in compatible_sources (XGBoostTraining)"
    ) in message
    assert "Wire it explicitly: nodes: {Payload: {inputs: {model_input:" in message


def test_explicit_node_overrides_wire_inputs_and_set_env_job_args_and_expect(tmp_path: Path) -> None:
    edges = [edge for edge in EDGES if edge != ["XGBoostTraining", "Payload"]] + [["Package", "Payload"]]
    scenario = SCENARIO + textwrap.dedent(
        """\
        nodes:
          Payload:
            inputs: {model_input: XGBoostTraining.model_output}
            env: {EXTRA: "1"}
            timeout: 30
            expect: {payload_sample: {files: [done.txt]}}
          TabularPreprocessing_training:
            job_args: {job_type: validation}
        """
    )
    plan = load_scenario(write_pipeline(tmp_path, scenario, edges=edges))
    payload = plan.steps["Payload"]
    assert payload.inputs == {"model_input": UpstreamInput("XGBoostTraining", "model_output")}
    assert payload.env["EXTRA"] == "1" and payload.timeout == 30
    assert list(payload.expect) == ["payload_sample"]
    assert plan.steps["TabularPreprocessing_training"].job_args["job_type"] == "validation"
    assert ("Payload", "model_input", "XGBoostTraining.model_output", "explicit") in wiring_table(plan.path)


def test_missing_required_env_vars_of_every_node_are_reported_at_once_grouped_by_variable(tmp_path: Path) -> None:
    scenario = SCENARIO.replace("  env: {LABEL_FIELD: label}\n", "  timeout: 60\n")
    with pytest.raises(ConfigErrors) as raised:
        load_scenario(write_pipeline(tmp_path, scenario))
    message = str(raised.value)
    assert "LABEL_FIELD is required by 4 steps: TabularPreprocessing_training (TabularPreprocessing)" in message
    assert "XGBoostTraining (XGBoostTraining), ModelCalibration_calibration (ModelCalibration)" in message
    assert message.count("LABEL_FIELD") == 2  # one line for the variable, not one per node


def test_a_consumer_of_a_data_source_node_without_schema_says_which_data_entry_to_add(tmp_path: Path) -> None:
    scenario = (
        SCENARIO + "nodes:\n  TabularPreprocessing_training:\n    inputs: {DATA: CradleDataLoading_training.METADATA}\n"
    )
    with pytest.raises(ConfigErrors) as raised:
        load_scenario(write_pipeline(tmp_path, scenario))
    assert (
        "add 'data: {CradleDataLoading_training.METADATA: {synthetic: ... | file: ... | s3: ...}}' to the scenario"
    ) in str(raised.value)


def test_a_data_entry_named_node_dot_output_feeds_the_consumer(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "raw.csv").write_text("id,label\n1,0\n")
    scenario = SCENARIO + "data:\n  CradleDataLoading_calibration.DATA: {file: raw.csv}\n"
    plan = load_scenario(write_pipeline(tmp_path, scenario))
    assert plan.data["CradleDataLoading_calibration.DATA"].file == "raw.csv"
    assert plan.steps["TabularPreprocessing_calibration"].inputs["DATA"] == SourceInput(
        "CradleDataLoading_calibration.DATA"
    )


def test_dag_file_errors_name_the_file_the_field_and_what_was_found(tmp_path: Path) -> None:
    path = tmp_path / "bad.dag.json"
    path.write_text(json.dumps({"version": "2", "dag": {"nodes": ["A", "A", "B"], "edges": [["A", "C"]]}}, indent=1))
    with pytest.raises(ConfigErrors) as raised:
        load_dag_file(path)
    message = str(raised.value)
    assert "bad.dag.json:" in message and "version: expected a version of major 1" in message and "'2'" in message
    assert "dag.nodes: each node may be declared once; declared more than once: A" in message

    path.write_text(json.dumps({"dag": {"nodes": ["A", "B"], "edges": [["A", "C"]]}}))
    with pytest.raises(ConfigErrors, match=r"bad.dag.json:1: dag: edges\[0\] \['A', 'C'\] names undeclared node C"):
        load_dag_file(path)

    yaml_path = tmp_path / "cyclic.dag.yaml"
    yaml_path.write_text("version: 1\ndag:\n  nodes: [A, B]\n  edges:\n    - [A, B]\n    - [B, A]\n")
    with pytest.raises(Exception, match=r"cyclic.dag.yaml:4: dag.edges: the edges form a cycle: A -> B -> A"):
        read_dag(yaml_path)


def test_a_dag_scenario_runs_green_with_node_ids_and_compat_edges(project: PipelineProject) -> None:
    write_pipeline(project.root)
    result = project.run("-v", "-p", "no:randomly")
    result.assert_outcomes(passed=14)
    result.stdout.fnmatch_lines(
        [
            "*scenarios/pipeline.yaml::TabularPreprocessing_training PASSED*",
            "*pipeline.yaml::compat?XGBoostTraining.model_output-Package.model_input? PASSED*",
            "*pipeline.yaml::Package PASSED*",
        ]
    )
    packaged = project.step_dir("pipeline", "Package")
    assert any(packaged.rglob("done.txt"))
