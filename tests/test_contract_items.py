"""Contract items: `--cursus-contracts DIR` makes each contract file an item checking its script."""

from __future__ import annotations

from pipeline_project import PipelineProject

AGREES = """
import os

def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    sig = input_paths["SIGNATURE"]
    if os.path.exists(sig):
        print(open(sig).read())
    print(input_paths["DATA"], output_paths["out"], environ_vars["LABEL_FIELD"], job_args.job_type)
"""

WRITER = """
def main(input_paths, output_paths, environ_vars, job_args):
    open(output_paths["out"] + "/part.csv", "w").write("a\\n1\\n")
"""

DISAGREES = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    columns = open(input_paths["SIGNATURE"]).read()
    print(output_paths["out"], os.environ["BUCKET"], job_args.jobtype)
"""


def preprocessing_contract(project: PipelineProject) -> None:
    project.contract(
        "TabularPreprocessing",
        entry_point="prep.py",
        inputs={
            "DATA": {"path": "/opt/ml/processing/input/data"},
            "SIGNATURE": {"path": "/opt/ml/processing/input/signature", "required": False},
        },
        required_env=["LABEL_FIELD"],
        job_arguments=["job_type"],
    )


def run_contracts(project: PipelineProject, *args: str):  # type: ignore[no-untyped-def]
    return project.pytester.runpytest(
        "--cursus-contracts", "contracts", "--cursus-workspace", str(project.workspace), "-p", "no:cacheprovider", *args
    )


def test_each_contract_file_is_an_item_named_after_its_contract(project: PipelineProject) -> None:
    preprocessing_contract(project)
    project.contract("Writer", entry_point="writer.py")
    result = run_contracts(project, "--co", "-q", "-m", "cursus and cursus_contract")
    assert result.outlines[:2] == [
        "contracts/tabular_preprocessing.step.yaml::TabularPreprocessing",
        "contracts/writer.step.yaml::Writer",
    ]


def test_a_script_that_agrees_passes(project: PipelineProject) -> None:
    preprocessing_contract(project)
    project.script("prep.py", AGREES)
    run_contracts(project, "--cursus-scripts", "scripts").assert_outcomes(passed=1)


def test_each_disagreement_is_listed_with_its_script_line(project: PipelineProject) -> None:
    preprocessing_contract(project)
    project.script("prep.py", DISAGREES)
    result = run_contracts(project, "--cursus-scripts", "scripts")
    result.assert_outcomes(failed=1)
    lines = result.outlines
    start = lines.index(
        "contract TabularPreprocessing (contracts/tabular_preprocessing.step.yaml) and its script scripts/prep.py "
        "(found in --cursus-scripts) disagree:"
    )
    assert lines[start + 1 : start + 5] == [
        "  - scripts/prep.py:4: contract TabularPreprocessing declares required input 'DATA', but the script never "
        "reads input_paths['DATA']",
        (
            "  - scripts/prep.py:5: input_paths['SIGNATURE'] uses optional input 'SIGNATURE' without a guard: when it "
            "is not wired its path "
            "does not exist; check os.path.exists(...) first, use .get(...), or wrap the read in try/except"
        ),
        "  - scripts/prep.py:6: job_args.jobtype reads job argument 'jobtype', which contract TabularPreprocessing "
        "does not declare (job_arguments: --job_type)",
        "  - scripts/prep.py:6: os.environ['BUCKET'] reads env var 'BUCKET', which contract TabularPreprocessing does "
        "not declare in env_vars (required or optional)",
    ]


def test_a_script_that_fails_to_import_shows_its_traceback(project: PipelineProject) -> None:
    preprocessing_contract(project)
    project.script("prep.py", "import not_a_module_anywhere\n" + AGREES)
    result = run_contracts(project, "--cursus-scripts", "scripts")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*importing *scripts/prep.py failed: ModuleNotFoundError: No module named 'not_a_module_anywhere': the "
            "contract does not declare it under framework_requirements; install the package that provides it (pip "
            "install not_a_module_anywhere) and declare it there",
            "*Script traceback:",
            '*File "*prep.py", line 1, in <module>',
        ]
    )


def test_main_that_cannot_take_the_four_arguments_is_reported(project: PipelineProject) -> None:
    preprocessing_contract(project)
    project.script(
        "prep.py",
        AGREES.replace(
            "def main(input_paths, output_paths, environ_vars, job_args, logger=None)",
            "def main(input_paths, output_paths)",
        ),
    )
    result = run_contracts(project, "--cursus-scripts", "scripts")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*main(input_paths, output_paths) at *prep.py:4 cannot be called as main(input_paths, output_paths, "
            "environ_vars, job_args)*"
        ]
    )


def test_importing_never_runs_main(project: PipelineProject) -> None:
    preprocessing_contract(project)
    marker = project.root / "main-ran"
    project.script("prep.py", AGREES + f"    open({str(marker)!r}, 'w').close()\n")
    run_contracts(project, "--cursus-scripts", "scripts").assert_outcomes(passed=1)
    assert not marker.exists()


def test_a_contract_used_by_a_scenario_checks_the_script_that_step_runs(project: PipelineProject) -> None:
    preprocessing_contract(project)
    # only the scenario knows where the script is (a package under python_path, by dotted name)
    package = project.root / "src/pipeline/steps"
    package.mkdir(parents=True)
    (project.root / "src/pipeline/__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (project.root / "src/pipeline/shared.py").write_text("LABEL = 'label'\n")
    (package / "prep.py").write_text("from ..shared import LABEL\n" + AGREES)
    project.scenario(
        "pkg",
        """
        contracts: [../contracts]
        python_path: [../src]
        steps:
          prep:
            contract: TabularPreprocessing
            env: {LABEL_FIELD: label}
            job_args: {job_type: training}
            inputs: {DATA: rows}
        data:
          rows: {text: "a\\n1\\n"}
        """,
    )
    result = run_contracts(project, "--cursus-scenarios", "scenarios", "-m", "cursus_contract", "-v")
    result.assert_outcomes(passed=1)


def test_a_contract_whose_script_is_nowhere_says_where_it_looked(project: PipelineProject) -> None:
    preprocessing_contract(project)
    result = run_contracts(project, "--cursus-scripts", "scripts")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*entry point 'prep.py' of contract TabularPreprocessing (contracts/tabular_preprocessing.step.yaml) not "
            "found: searched scripts, and no scenario*uses this contract; add the scripts directory with "
            "--cursus-scripts DIR"
        ]
    )


def test_an_invalid_contract_file_is_a_failing_item(project: PipelineProject) -> None:
    # (an interface without entry_point is valid: a step that runs no script, docs/dag.md)
    (project.root / "contracts/broken.step.yaml").write_text(
        "step_type: Broken\ncontract:\n  entry_point: broken.py\n  inputs: {DATA: relative/data}\n"
    )
    result = run_contracts(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["invalid contract:", "*broken.step.yaml*DATA*absolute container path*"])


def test_without_the_option_contract_files_are_not_items(one_step: PipelineProject) -> None:
    assert one_step.run("--co", "-q").outlines[0] == "scenarios/single.yaml::only"


def test_contracts_inside_a_python_package_do_not_import_the_package(project: PipelineProject) -> None:
    # pytest would collect the package as a Package node and import its __init__.py before the item ran
    package = project.root / "pipeline_pkg"
    (package / "contracts").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('pipeline_pkg/__init__.py was imported')\n")
    (package / "contracts/__init__.py").write_text("raise RuntimeError('contracts/__init__.py was imported')\n")
    project.contract("Writer", entry_point="writer.py")
    (project.root / "contracts/writer.step.yaml").rename(package / "contracts/writer.step.yaml")
    project.script("writer.py", WRITER)
    result = project.pytester.runpytest(
        "--cursus-contracts",
        "pipeline_pkg/contracts",
        "--cursus-scripts",
        "scripts",
        "--cursus-workspace",
        str(project.workspace),
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    assert "was imported" not in result.stdout.str()


def test_a_contract_with_no_script_of_ours_is_skipped_with_the_reason(project: PipelineProject) -> None:
    (project.root / "contracts/loader.step.yaml").write_text(
        "step_type: CradleDataLoading\ncontract:\n  entry_point: null\n"
        "  outputs: {DATA: /opt/ml/processing/output/data}\n"
    )
    (project.root / "contracts/byoc.step.yaml").write_text(
        "step_type: ByocTraining\ncontract:\n  entry_point: train.py\n"
        "  container_entrypoint: [python3, /opt/program/train]\n"
        "  outputs: {model: /opt/ml/model}\n"
    )
    result = run_contracts(project, "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] contracts/byoc.step.yaml:2: contract ByocTraining declares container_entrypoint "
            "[[]python3 /opt/program/train[]]: its container "
            "runs its own entrypoint, not a script of ours, so there is nothing to check",
            "SKIPPED [[]1[]] contracts/loader.step.yaml:2: contract CradleDataLoading has no entry_point: its step "
            "runs no script of ours (a data-loading "
            "or registration interface), so there is nothing to check",
        ]
    )


def test_a_note_does_not_fail_the_item_and_is_shown_as_a_warning(project: PipelineProject) -> None:
    project.contract("Writer", entry_point="writer.py", optional_env={"VERBOSE": "0"})
    project.script("writer.py", WRITER)
    result = run_contracts(project, "--cursus-scripts", "scripts")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*scripts/writer.py:2: ContractNote: contract Writer: contract Writer declares env var 'VERBOSE' "
            "(optional, default '0'), but the script never reads it (environ_vars, os.environ, os.getenv): setting "
            "it changes nothing; read it, or remove it from the contract"
        ]
    )


def test_a_missing_package_is_named_from_the_contracts_framework_requirements(project: PipelineProject) -> None:
    path = project.contract("Trainer", entry_point="trainer.py")
    path.write_text(
        path.read_text().replace("contract:\n", "contract:\n  framework_requirements: {xgboost_absent: '>=1.7'}\n")
    )
    project.script("trainer.py", "import xgboost_absent\nimport lightgbm_absent\n" + WRITER)
    result = run_contracts(project, "--cursus-scripts", "scripts")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*importing *scripts/trainer.py failed: ModuleNotFoundError: No module named 'xgboost_absent': the "
            "contract declares xgboost_absent>=1.7 under framework_requirements; pip install 'xgboost_absent>=1.7'"
        ]
    )
    # not declared: what to install, and to declare it
    project.script("trainer.py", "import lightgbm_absent\n" + WRITER)
    result = run_contracts(project, "--cursus-scripts", "scripts")
    result.stdout.fnmatch_lines(
        [
            "*importing *scripts/trainer.py failed: ModuleNotFoundError: No module named 'lightgbm_absent': the "
            "contract does not declare it under framework_requirements; install the package that provides it (pip "
            "install lightgbm_absent) and declare it there"
        ]
    )


def test_a_missing_module_of_the_project_itself_is_not_sent_to_pip(project: PipelineProject) -> None:
    project.contract("Writer", entry_point="writer.py")
    (project.root / "scripts/shared_code").mkdir(parents=True)  # the project's own (namespace) package
    project.script("writer.py", "import shared_code.absent_module\n" + WRITER)
    result = run_contracts(project, "--cursus-scripts", "scripts")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*importing *scripts/writer.py failed: ModuleNotFoundError: No module named 'shared_code.absent_module'"]
    )
    assert "pip install" not in result.stdout.str()


REAL_TEAM_SCRIPT = """
import argparse
import os
import subprocess
import sys


def _install_from_secure_pypi() -> bool:
    return os.getenv("USE_SECURE_PYPI", "true").lower() == "true"


def main(input_paths, output_paths, environ_vars, job_args):
    if "DATA" not in input_paths:
        raise ValueError("no DATA channel")
    if "SIGNATURE" in input_paths:
        print(open(input_paths["SIGNATURE"]).read())
    try:
        extra = input_paths["EXTRA"]
    except KeyError:
        extra = None
    print(input_paths["DATA"], extra, environ_vars["LABEL_FIELD"], job_args.job_type, _install_from_secure_pypi())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    args = parser.parse_args()
    input_paths = {"DATA": "/opt/ml/processing/input", "SIGNATURE": "/opt/ml/processing/input/signature"}
    output_paths = {"out": "/opt/ml/processing/output"}
    main(input_paths, output_paths, {"LABEL_FIELD": os.environ["LABEL_FIELD"]}, args)
"""


def test_a_script_written_the_way_real_teams_write_it_gets_only_the_true_findings(project: PipelineProject) -> None:
    preprocessing_contract(project)
    project.script("prep.py", REAL_TEAM_SCRIPT)
    result = run_contracts(project, "--cursus-scripts", "scripts")
    result.assert_outcomes(failed=1)
    lines = result.outlines
    start = lines.index(
        "contract TabularPreprocessing (contracts/tabular_preprocessing.step.yaml) and its script scripts/prep.py "
        "(found in --cursus-scripts) disagree:"
    )
    # the guarded reads (`"SIGNATURE" in`, try/except KeyError, the raise on a required input) and the __main__
    # path that agrees with the contract are not findings
    assert lines[start + 1 : start + 4] == [
        "  - scripts/prep.py:9: os.getenv('USE_SECURE_PYPI', 'true') reads env var 'USE_SECURE_PYPI', which contract "
        "TabularPreprocessing does not declare: unless something outside the contract sets it, the script falls back "
        "to 'true'; declare it under env_vars.optional with that default (USE_SECURE_PYPI: 'true') so that scenarios "
        "and the pipeline choose it",
        "  - scripts/prep.py:12: contract TabularPreprocessing declares output 'out', but the script never looks up "
        "output_paths['out']: nothing is written there, so a step reading it gets nothing; write it, or remove it "
        "from the contract",
        "  - scripts/prep.py:28: the __main__ block passes input 'DATA' as '/opt/ml/processing/input', but contract "
        "TabularPreprocessing declares '/opt/ml/processing/input/data': in the container the channel is at "
        "'/opt/ml/processing/input/data'; use the contract's path",
    ]
    assert not lines[start + 4].startswith("  - ")
