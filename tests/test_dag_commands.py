"""DAG scenarios outside and around pytest: ``cursus-runtime wire`` and ``init`` as child processes, and
the nodes that run no script as the terminal summary, ``list`` and the HTML report show them (docs/dag.md)."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

from pipeline_project import PipelineProject
from pytest_cursus.plan.scenario_plan import load_scenario
from test_dag_scenarios import EDGES, INTERFACES, TEN_NODE_WIRING, write_pipeline

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
    assert rows == TEN_NODE_WIRING
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


# --- nodes that run no script, in the reports ------------------------------------------------------

REGISTRATION_REASON = "its interface registration.step.yaml has no entry_point, and no node that runs reads its outputs"


class DagNodes(HTMLParser):
    """The nodes of the report's DAG pictures: data-step -> its attributes and tooltip."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[str, dict[str, str]] = {}
        self._open: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "g" and "cursus-node" in values.get("class", ""):
            self._open = values["data-step"]
            self.nodes[self._open] = {**values, "title": ""}
        self._in_title = tag == "title" and self._open is not None

    def handle_data(self, data: str) -> None:
        if self._in_title and self._open is not None:
            self.nodes[self._open]["title"] += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False
        if tag == "g":
            self._open = None


def test_data_source_and_not_run_nodes_show_in_the_terminal_summary_html_dag_and_json(
    project: PipelineProject,
) -> None:
    write_pipeline(project.root)
    report, json_path = project.root / "report.html", project.root / "run.json"
    result = project.run("-p", "no:randomly", f"--html={report}", "--self-contained-html", f"--cursus-json={json_path}")
    result.assert_outcomes(passed=14)

    output = result.stdout.str()
    summary = output[output.index("cursus: pipeline steps") :]
    assert (
        "data source  CradleDataLoading_training: its interface cradledataloading.step.yaml has no entry_point; "
        "read by TabularPreprocessing_training from data:"
    ) in summary
    assert f"not run      Registration: {REGISTRATION_REASON}" in summary
    assert summary.index("Payload") < summary.index("not run      Registration"), "under the steps table"

    page = report.read_text()
    # pytest-html keeps the summary in its page data, escaped: unescape it to parse the SVG
    parser = DagNodes()
    parser.feed(html.unescape(page[page.index('<div class="cursus-summary">') :]))
    nodes = parser.nodes
    assert nodes["Registration"]["data-kind"] == "not-run"
    assert nodes["Registration"]["data-outcome"] == "not run"
    assert nodes["Registration"]["opacity"] == "0.6"
    assert nodes["Registration"]["title"] == f"Registration: not run, {REGISTRATION_REASON}"
    for source in ("CradleDataLoading_training", "CradleDataLoading_calibration"):
        assert nodes[source]["data-kind"] == "data-source"
        assert nodes[source]["data-outcome"] == "data source"
        assert "its outputs come from the scenario's data:" in nodes[source]["title"]
    assert nodes["Package"]["data-kind"] == "step" and nodes["Package"]["data-outcome"] == "passed"
    assert len(nodes) == 10, "every node of the DAG is drawn"

    document = json.loads(json_path.read_text())
    scriptless = {(n["node"], n["role"]) for n in document["scriptless_nodes"]}
    assert scriptless == {
        ("CradleDataLoading_training", "data source"),
        ("CradleDataLoading_calibration", "data source"),
        ("Registration", "not run"),
    }
    assert all("scriptless_nodes" not in step for step in document["steps"])


def test_list_shows_the_data_source_and_not_run_nodes_of_a_dag_scenario(tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    text = cursus_runtime("list", "scenarios", cwd=tmp_path)
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"  not run      Registration: {REGISTRATION_REASON}" in text.stdout.splitlines()
    assert re.search(
        r"  data source  CradleDataLoading_calibration: .* read by TabularPreprocessing_calibration", text.stdout
    )

    listed = json.loads(cursus_runtime("list", "scenarios", "--json", cwd=tmp_path).stdout)["scenarios"][0]
    assert listed["not_run"] == [{"name": "Registration", "reason": REGISTRATION_REASON, "read_by": []}]
    assert [n["name"] for n in listed["data_sources"]] == [
        "CradleDataLoading_training",
        "CradleDataLoading_calibration",
    ]


def test_a_dag_scenario_under_xdist_has_the_outcomes_of_a_serial_run(project: PipelineProject) -> None:
    write_pipeline(project.root)

    def outcomes(*args: str) -> dict[str, str]:
        result = project.run("-p", "no:randomly", "-rA", "--cursus-no-cache", *args)
        result.assert_outcomes(passed=14)
        found = re.findall(r"^(PASSED|SHARED|FAILED|ERROR|SKIPPED) (\S+)", result.stdout.str(), re.MULTILINE)
        # a step another worker already ran in this session passes as SHARED (docs/caching.md)
        return {nodeid: outcome.replace("SHARED", "PASSED") for outcome, nodeid in found}

    serial = outcomes()
    parallel = outcomes("-n", "2")
    assert len(serial) == 14 and set(serial.values()) == {"PASSED"}
    assert parallel == serial


# --- init ------------------------------------------------------------------------------------------


def test_init_writes_an_explicit_scenario_that_plans_the_same_steps_as_the_dag(tmp_path: Path) -> None:
    dag_scenario = write_pipeline(tmp_path)
    result = cursus_runtime(
        "init", "--dag", "pipeline.dag.json", "--interfaces", "interfaces", "--scripts", "scripts",
        "--output", "explicit/pipeline.yaml", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = tmp_path / "explicit" / "pipeline.yaml"
    text = written.read_text()
    assert "    LABEL_FIELD: TODO" in text and "dag:" not in text
    assert "# not run: Registration: its interface registration.step.yaml has no entry_point" in text

    listed = cursus_runtime("list", "explicit/pipeline.yaml", cwd=tmp_path)
    assert listed.returncode == 0, listed.stdout
    explicit, from_dag = load_scenario(written), load_scenario(dag_scenario)
    assert list(explicit.steps) == list(from_dag.steps)
    for name, step in from_dag.steps.items():
        same = explicit.steps[name]
        assert (same.contract.name, same.inputs, same.job_args) == (step.contract.name, step.inputs, step.job_args)
        # the calibration variant's TRAIN_RATIO is written into the step; LABEL_FIELD is the placeholder
        expected_env = {**step.env, "LABEL_FIELD": "TODO"} if "LABEL_FIELD" in step.env else step.env
        assert same.env == expected_env
    assert explicit.data["CradleDataLoading_training.DATA"].synthetic == (
        from_dag.data["CradleDataLoading_training.DATA"].synthetic
    )

    again = cursus_runtime(
        "init", "--dag", "pipeline.dag.json", "--interfaces", "interfaces", "--output", "explicit/pipeline.yaml",
        cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 2 and "explicit/pipeline.yaml exists" in again.stderr


def test_an_init_scenario_left_unfilled_fails_only_on_its_placeholders(tmp_path: Path) -> None:
    interfaces = json.loads(json.dumps(INTERFACES))
    del INTERFACES["CradleDataLoading"]["contract"]["outputs"]["DATA"]["data"]  # no schema: a file: placeholder
    try:
        write_pipeline(tmp_path)
    finally:
        INTERFACES.clear()
        INTERFACES.update(interfaces)
    result = cursus_runtime("init", "--dag", "pipeline.dag.json", "--interfaces", "interfaces", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (tmp_path / "unfilled.yaml").write_text(result.stdout)
    assert "    file: TODO/CradleDataLoading_training.DATA" in result.stdout

    listed = cursus_runtime("list", "unfilled.yaml", cwd=tmp_path)
    assert listed.returncode == 1
    problems = [line for line in listed.stdout.splitlines() if line.startswith("  unfilled.yaml:")]
    assert problems and all("TODO" in line for line in problems), problems
    assert "scripts[0]: path not found: 'TODO/scripts'" in listed.stdout
    assert "'TODO/CradleDataLoading_calibration.DATA' not found" in listed.stdout


def test_init_writes_an_unwired_input_as_a_comment_and_exits_1_saying_why(tmp_path: Path) -> None:
    write_pipeline(tmp_path, edges=UNWIRABLE_EDGES)
    result = cursus_runtime("init", "--dag", "pipeline.dag.json", "--interfaces", "interfaces", cwd=tmp_path)
    assert result.returncode == 1
    assert "      # model_input: <node>.<output> or a data source  (required, not wired)" in result.stdout
    assert "node Payload (payload.step.yaml): required dependency 'model_input' is not wired" in result.stderr
