"""An invalid scenario fails with one clear message naming file, line and field; the others run."""

from __future__ import annotations

import pytest

from pipeline_project import PipelineProject

GOOD = """
steps:
  only: {contract: Writer}
"""


@pytest.fixture
def two_scenarios(one_step: PipelineProject) -> PipelineProject:
    """`single.yaml` is valid; each test writes its own broken `bad.yaml` beside it."""
    return one_step


def _run_bad(project: PipelineProject, source: str) -> pytest.RunResult:
    project.scenario("bad", source)
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)  # the valid scenario still ran
    assert "INTERNALERROR" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    return result


def test_malformed_yaml_names_the_line(two_scenarios: PipelineProject) -> None:
    result = _run_bad(two_scenarios, "steps:\n  a: {contract: Writer\n")
    result.stdout.fnmatch_lines(["*scenarios/bad.yaml:3: invalid YAML*"])


def test_a_tab_in_the_yaml_names_its_line_column_and_the_character(two_scenarios: PipelineProject) -> None:
    result = _run_bad(two_scenarios, "steps:\n  only:\n  \tcontract: Writer\n")
    result.stdout.fnmatch_lines(
        [
            "scenarios/bad.yaml:3: invalid YAML at column 3: while scanning for the next token found character "
            "'\\t' that cannot start any token; YAML indents with spaces, not tabs"
        ]
    )


def test_unknown_field_names_it_and_suggests_the_right_one(two_scenarios: PipelineProject) -> None:
    result = _run_bad(two_scenarios, GOOD.replace("{contract: Writer}", "{contract: Writer, timout: 5}"))
    result.stdout.fnmatch_lines(["*scenarios/bad.yaml:3: steps.only.timout: unknown field (did you mean timeout?)*"])


def test_wrong_type_says_what_was_found(two_scenarios: PipelineProject) -> None:
    result = _run_bad(two_scenarios, GOOD.replace("{contract: Writer}", "{contract: Writer, timeout: soon}"))
    result.stdout.fnmatch_lines(["*scenarios/bad.yaml:3: steps.only.timeout: *found 'soon' (type str)*"])


def test_missing_contract_lists_what_was_found(two_scenarios: PipelineProject) -> None:
    result = _run_bad(two_scenarios, GOOD.replace("Writer", "Writr"))
    result.stdout.fnmatch_lines(
        [
            "*scenarios/bad.yaml:3: steps.only.contract: no contract named 'Writr' (did you mean Writer?); searched "
            "*contracts; found: Writer*"
        ]
    )


def test_missing_script_names_the_entry_point_and_where_it_looked(two_scenarios: PipelineProject) -> None:
    two_scenarios.contract("Ghost", entry_point="ghost.py")
    result = _run_bad(two_scenarios, GOOD.replace("Writer", "Ghost"))
    result.stdout.fnmatch_lines(
        [
            "*bad.yaml:3: steps.only.contract: entry point 'ghost.py' of contract Ghost (*ghost.step.yaml) not found "
            "in *scripts*"
        ]
    )


def test_missing_contracts_directory_is_reported(two_scenarios: PipelineProject) -> None:
    result = _run_bad(two_scenarios, "contracts: [../contract]\n" + GOOD)
    result.stdout.fnmatch_lines(["*bad.yaml:1: contracts[[]0[]]: path not found: '../contract'*"])


@pytest.fixture
def relay(project: PipelineProject) -> None:
    """Contract `Relay` (input DATA, output out) and a script that does nothing."""
    project.contract("Relay", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script("relay.py", "def main(i, o, e, j):\n    pass\n")


@pytest.mark.usefixtures("relay")
def test_cycle_is_named_step_by_step(project: PipelineProject) -> None:
    project.scenario(
        "cycle",
        """
        steps:
          a: {contract: Relay, inputs: {DATA: b.out}}
          b: {contract: Relay, inputs: {DATA: a.out}}
        """,
    )
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cycle.yaml:*: steps.a.inputs: steps form a cycle: a -> b -> a*"])


@pytest.mark.usefixtures("relay")
def test_unknown_upstream_step_suggests_the_closest_reference(project: PipelineProject) -> None:
    project.scenario(
        "typo",
        """
        data: {raw: {text: x}}
        steps:
          prep: {contract: Relay, inputs: {DATA: raw}}
          train:
            contract: Relay
            inputs:
              DATA: prp.out
        """,
    )
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*typo.yaml:8: steps.train.inputs.DATA: 'prp.out' is neither a data source nor <step>.<output> (there is "
            "no step 'prp') (did you mean prep.out?)*"
        ]
    )


@pytest.mark.usefixtures("relay")
def test_unknown_upstream_output_lists_the_outputs(project: PipelineProject) -> None:
    project.scenario(
        "typo",
        """
        data: {raw: {text: x}}
        steps:
          prep: {contract: Relay, inputs: {DATA: raw}}
          train: {contract: Relay, inputs: {DATA: prep.outt}}
        """,
    )
    result = project.run()
    result.stdout.fnmatch_lines(
        [
            "*typo.yaml:5: steps.train.inputs.DATA: step 'prep' (contract Relay) has no output 'outt'*its outputs are: "
            "out*"
        ]
    )


def test_missing_required_env_var_is_reported_before_running(one_step: PipelineProject) -> None:
    one_step.contract("Writer", entry_point="writer.py", required_env=["LABEL_FIELD"])
    result = one_step.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*single.yaml:3: steps.only: required env var LABEL_FIELD of contract Writer is not set; add it under "
            "steps.only.env or defaults.env*"
        ]
    )
    assert not list(one_step.root.rglob("stdout.log")), "the step must not have been started"


def test_missing_required_input_says_how_to_wire_it(one_step: PipelineProject) -> None:
    one_step.contract("Writer", entry_point="writer.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    result = one_step.run()
    result.stdout.fnmatch_lines(
        ["*single.yaml:*: steps.only.inputs: required input 'DATA' of contract Writer*is not wired*"]
    )


def test_input_not_in_contract_is_reported(one_step: PipelineProject) -> None:
    one_step.scenario("single", GOOD.replace("{contract: Writer}", "{contract: Writer, inputs: {DATTA: x}}"))
    result = one_step.run()
    result.stdout.fnmatch_lines(["*single.yaml:3: steps.only.inputs.DATTA: contract Writer has no input 'DATTA'*"])


def test_unknown_job_arg_is_reported(one_step: PipelineProject) -> None:
    one_step.contract("Writer", entry_point="writer.py", job_arguments=["job_type"])
    one_step.scenario("single", GOOD.replace("{contract: Writer}", "{contract: Writer, job_args: {job_typ: training}}"))
    result = one_step.run()
    result.stdout.fnmatch_lines(
        ["*steps.only.job_args.job_typ: contract Writer declares no job argument 'job_typ' (did you mean job_type?)*"]
    )


def test_invalid_contract_file_is_reported_with_its_own_line(one_step: PipelineProject) -> None:
    (one_step.root / "contracts" / "writer.step.yaml").write_text(
        "step_type: Writer\ncontract:\n  entry_point: writer.py\n  outputs:\n    out: {path: relative/path}\n"
    )
    result = one_step.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*writer.step.yaml:5: contract.outputs.out.path: expected an absolute container path*"]
    )


def test_unknown_keys_in_a_step_yaml_contract_block_are_ignored(one_step: PipelineProject) -> None:
    (one_step.root / "contracts" / "writer.step.yaml").write_text(
        "step_type: Writer\nsagemaker_extra: 1\ncontract:\n  entry_point: writer.py\n  ecosystem_field: x\n"
        "  outputs:\n    out: {path: /opt/ml/processing/output, logical_name: data}\n"
    )
    one_step.run().assert_outcomes(passed=1)


def test_unknown_keys_in_a_plain_contract_file_are_errors(one_step: PipelineProject) -> None:
    (one_step.root / "contracts" / "writer.step.yaml").unlink()
    (one_step.root / "contracts" / "writer.contract.yaml").write_text(
        "name: Writer\nentry_point: writer.py\noutputs:\n  out: /opt/ml/processing/output\nextra_field: 1\n"
    )
    result = one_step.run()
    result.stdout.fnmatch_lines(["*writer.contract.yaml:5: extra_field: unknown field*"])


def test_a_plain_contract_file_is_found_by_name(one_step: PipelineProject) -> None:
    (one_step.root / "contracts" / "writer.step.yaml").unlink()
    (one_step.root / "contracts" / "anything.contract.yaml").write_text(
        "name: Writer\nentry_point: writer.py\noutputs:\n  out: /opt/ml/processing/output\n"
    )
    one_step.run().assert_outcomes(passed=1)


def test_all_problems_of_a_file_are_reported_together(two_scenarios: PipelineProject) -> None:
    result = _run_bad(
        two_scenarios,
        """
        steps:
          one: {contract: Nope}
          two: {contract: Writer, inputs: {X: missing.out}}
        """,
    )
    result.stdout.fnmatch_lines(
        ["*bad.yaml:3: steps.one.contract: no contract named 'Nope'*", "*bad.yaml:4: steps.two.inputs.X:*"]
    )


def test_two_files_with_the_same_scenario_name_are_an_error(one_step: PipelineProject) -> None:
    one_step.scenario("copy", "scenario: single\n" + GOOD)
    result = one_step.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*single.yaml:1: scenario: scenario name 'single' is already used by *copy.yaml; give this file its own "
            "'scenario:' name*"
        ]
    )


def test_step_names_must_start_with_a_letter(one_step: PipelineProject) -> None:
    one_step.scenario("single", GOOD.replace("only:", "_data:"))
    result = one_step.run()
    result.stdout.fnmatch_lines(["*single.yaml:*: steps: step name '_data' must start with a letter*"])


def test_the_summary_line_of_an_invalid_scenario_names_the_problem(two_scenarios: PipelineProject) -> None:
    result = _run_bad(two_scenarios, GOOD.replace("Writer", "Writr"))
    result.stdout.fnmatch_lines(["ERROR scenarios/bad.yaml::bad - scenarios/bad.yaml:3: steps.only.contract*"])


def test_contract_errors_suggest_the_right_field(one_step: PipelineProject) -> None:
    (one_step.root / "contracts" / "writer.step.yaml").unlink()
    (one_step.root / "contracts" / "writer.contract.yaml").write_text(
        "name: Writer\nentry_point: writer.py\noutputs:\n  out: {path: /opt/ml/processing/output, requierd: true}\n"
    )
    result = one_step.run()
    result.stdout.fnmatch_lines(
        ["*writer.contract.yaml:4: outputs.out.requierd: unknown field (did you mean required?)*"]
    )


def test_a_case_only_typo_gets_a_suggestion(one_step: PipelineProject) -> None:
    one_step.contract(
        "Writer", entry_point="writer.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data", "required": False}}
    )
    one_step.scenario("single", GOOD.replace("{contract: Writer}", "{contract: Writer, inputs: {data: x}}"))
    result = one_step.run()
    result.stdout.fnmatch_lines(["*steps.only.inputs.data: contract Writer has no input 'data' (did you mean DATA?)*"])


def test_two_contracts_declaring_the_same_name_are_an_error(one_step: PipelineProject) -> None:
    (one_step.root / "contracts" / "copy.contract.yaml").write_text("name: Writer\nentry_point: writer.py\n")
    result = one_step.run()
    result.stdout.fnmatch_lines(
        [
            "*steps.only.contract: contract name 'Writer' is declared by more than one file: *copy.contract.yaml, "
            "*writer.step.yaml; rename one*"
        ]
    )
