"""``marks:`` on a scenario step (docs/scenarios.md#marks): pytest marks on the step's items, so ``-m``
selects, ``skip`` and ``xfail`` behave as pytest's, and --strict-markers judges the names."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.formats.scenario_file import StepMark
from pytest_cursus.plan.scenario_plan import load_scenario
from test_dag_scenarios import SCENARIO, write_pipeline

DATA_INPUT = {"DATA": {"path": "/opt/ml/processing/input/data"}}

PASSING_SCRIPT = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    open(os.path.join(output_paths["out"], "ok.txt"), "w").write("ok")
"""

FAILING_SCRIPT = """
def main(input_paths, output_paths, environ_vars, job_args):
    raise ValueError("the model does not converge yet")
"""


@pytest.fixture
def steps(project: PipelineProject) -> PipelineProject:
    """Contracts Passing (no input), Relay (DATA) and Failing, each running what its name says."""
    project.contract("Passing", entry_point="passing.py")
    project.contract("Relay", entry_point="passing.py", inputs=DATA_INPUT)
    project.contract("Failing", entry_point="failing.py")
    project.script("passing.py", PASSING_SCRIPT)
    project.script("failing.py", FAILING_SCRIPT)
    project.pytester.makeini("[pytest]\nmarkers =\n    slow: a step that takes long\n")
    return project


def test_a_named_mark_selects_and_deselects_the_step_with_m(steps: PipelineProject) -> None:
    steps.scenario(
        "marked",
        """
        steps:
          quick: {contract: Passing}
          long: {contract: Passing, marks: [slow]}
        """,
    )
    fast = steps.run("-v", "-m", "not slow")
    fast.assert_outcomes(passed=1, deselected=1)
    fast.stdout.fnmatch_lines(["*marked.yaml::quick PASSED*"])
    slow = steps.run("-v", "-m", "slow")
    slow.assert_outcomes(passed=1, deselected=1)
    slow.stdout.fnmatch_lines(["*marked.yaml::long *"])  # CACHED: the same step as quick


def test_skip_with_a_reason_skips_the_step_without_running_it(steps: PipelineProject) -> None:
    steps.scenario(
        "marked",
        """
        steps:
          broken: {contract: Failing, marks: [{skip: "waits for the new feature store"}]}
        """,
    )
    result = steps.run("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED *waits for the new feature store"])
    assert not steps.step_dir("marked", "broken").exists()


def test_xfail_turns_a_failing_step_into_an_expected_failure(steps: PipelineProject) -> None:
    steps.scenario(
        "marked",
        """
        steps:
          broken: {contract: Failing, marks: [{xfail: "does not converge yet"}]}
        """,
    )
    result = steps.run("-rx")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["XFAIL *broken*does not converge yet"])


def test_a_strict_xfail_step_that_passes_fails(steps: PipelineProject) -> None:
    steps.scenario(
        "marked",
        """
        steps:
          fixed:
            contract: Passing
            marks:
              - xfail: {reason: was broken, strict: true}
        """,
    )
    result = steps.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*was broken*"])


def test_a_skipped_upstream_of_a_selected_step_runs_as_its_setup(steps: PipelineProject) -> None:
    steps.scenario(
        "chain",
        """
        steps:
          load: {contract: Passing, marks: [{skip: "not on its own"}]}
          report: {contract: Relay, inputs: {DATA: load.out}}
        """,
    )
    result = steps.run("-v", "-rs")
    result.assert_outcomes(passed=2, skipped=1)  # the edge and report pass; load's own item is skipped
    result.stdout.fnmatch_lines(["*chain.yaml::load SKIPPED*", "*chain.yaml::report PASSED*"])
    delivered = steps.step_dir("chain", "report") / "output" / "out"
    assert (steps.step_dir("chain", "load") / "output" / "out" / "ok.txt").read_text() == "ok"
    assert delivered.is_dir()


def test_a_skipped_upstream_failing_as_setup_errors_the_downstream_naming_it(steps: PipelineProject) -> None:
    steps.scenario(
        "chain",
        """
        steps:
          load: {contract: Failing, marks: [{skip: "not on its own"}]}
          report: {contract: Relay, inputs: {DATA: load.out}}
        """,
    )
    result = steps.run("-k", "not compat")
    # not skipped as "upstream failed": the failure would be reported by no item
    result.assert_outcomes(skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of chain::report*",
            "*step 'load' of scenario 'chain' failed (run as setup of a selected step): ValueError: the model does "
            "not converge yet*",
        ]
    )


def test_an_unregistered_mark_under_strict_markers_makes_the_scenario_invalid_naming_the_step(
    steps: PipelineProject,
) -> None:
    steps.scenario(
        "marked",
        """
        steps:
          quick: {contract: Passing, marks: [slwo]}
        """,
    )
    steps.run().assert_outcomes(passed=1, warnings=1)  # without --strict-markers: pytest's warning
    strict = steps.run("--strict-markers")
    strict.assert_outcomes(errors=1)
    strict.stdout.fnmatch_lines(["*step 'quick': marks: 'slwo' not found in `markers` configuration option*"])


@pytest.mark.parametrize(
    ("marks", "message"),
    [
        ("[{slow: 1, fast: 2}]", "*a mapping of 2 keys: slow, fast*"),
        ("[parametrize]", "*mark 'parametrize' acts on a test function's arguments or fixtures*"),
        ("['not a name']", "*expected a mark name such as slow*found 'not a name'*"),
        ("[{xfail: {raises: KeyError}}]", "*mark 'xfail': xfail.*raises: Extra inputs are not permitted*"),
    ],
)
def test_a_malformed_mark_is_a_scenario_error_naming_it(steps: PipelineProject, marks: str, message: str) -> None:
    steps.scenario("marked", f"steps:\n  quick: {{contract: Passing, marks: {marks}}}\n")
    result = steps.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])


def test_a_dag_nodes_marks_reach_its_step(tmp_path: Path) -> None:
    scenario = SCENARIO + textwrap.dedent(
        """\
        nodes:
          XGBoostTraining:
            marks: [slow, {xfail: {reason: unstable, run: false}}]
          Payload:
            marks: {skip: not yet}
        """
    )
    plan = load_scenario(write_pipeline(tmp_path, scenario))
    assert plan.steps["XGBoostTraining"].marks == (
        StepMark("slow"),
        StepMark("xfail", kwargs={"reason": "unstable", "run": False}),
    )
    assert plan.steps["Payload"].marks == (StepMark("skip", kwargs={"reason": "not yet"}),)
    assert plan.steps["Package"].marks == ()
