"""Scripts as teams write them: inside a package, found from the script path alone, with relative
imports (docs/execution.md#how-the-script-is-imported); and channels whose keys or shapes differ from
what main() expects (docs/scenarios.md#channels-a-script-names-differently)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.cache.key import step_key
from pytest_cursus.errors import ConfigErrors
from pytest_cursus.plan.options import PlanOptions
from pytest_cursus.plan.scenario_plan import FileLookups, load_scenario

# acme/pipelines/credit/build.py reaches three packages up, and one sideways
PACKAGE = {
    "acme/__init__.py": "",
    "acme/processing/__init__.py": "",
    "acme/processing/encoders.py": "def encode(value):\n    return value.upper()\n",
    "acme/pipelines/__init__.py": "",
    "acme/pipelines/credit/__init__.py": "",
    "acme/pipelines/credit/suffixes.py": "SUFFIX = '-v1'\n",
    "acme/pipelines/credit/build.py": """
        import os

        from ...processing.encoders import encode
        from .suffixes import SUFFIX


        def main(input_paths, output_paths, environ_vars, job_args):
            assert __package__ == "acme.pipelines.credit", __package__
            with open(os.path.join(output_paths["out"], "result.txt"), "w") as handle:
                handle.write(encode("built") + SUFFIX)
    """,
}


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def package_project(project: PipelineProject) -> PipelineProject:
    """Scenario `credit` runs acme/pipelines/credit/build.py, found through `scripts:` alone."""
    _write_package(project.root / "src", PACKAGE)
    project.contract("CreditBuild", entry_point="build.py")
    project.scenario(
        "credit",
        """
        scripts: [../src/acme/pipelines/credit]
        steps:
          build: {contract: CreditBuild}
        """,
    )
    return project


def _result(project: PipelineProject) -> str:
    return (project.step_dir("credit", "build") / "output" / "out" / "result.txt").read_text()


@pytest.mark.parametrize("executor", [[], ["--cursus-no-preload"]], ids=["warm", "fresh"])
def test_a_script_deep_in_a_package_runs_with_its_relative_imports(
    package_project: PipelineProject, executor: list[str]
) -> None:
    package_project.run(*executor).assert_outcomes(passed=1)
    assert _result(package_project) == "BUILT-v1"


def test_a_python_path_root_still_names_the_module(package_project: PipelineProject) -> None:
    package_project.scenario(
        "credit",
        """
        scripts: [../src/acme/pipelines/credit]
        python_path: [../src/acme]
        steps:
          build: {contract: CreditBuild}
        """,
    )
    plan = load_scenario(package_project.root / "scenarios" / "credit.yaml", PlanOptions(), FileLookups())
    step = plan.steps["build"]
    assert (step.module, step.python_path) == ("pipelines.credit.build", ((package_project.root / "src/acme"),))


def test_a_package_init_importing_a_missing_module_names_the_package_and_the_import(
    package_project: PipelineProject,
) -> None:
    (package_project.root / "src/acme/__init__.py").write_text('"""Acme."""\n\nimport boto3_not_installed_here\n')
    result = package_project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*importing */src/acme/pipelines/credit/build.py (as acme.pipelines.credit.build) failed in package "
            "acme (acme/__init__.py line 3): ModuleNotFoundError: No module named 'boto3_not_installed_here', "
            "imported by acme/__init__.py line 3"
        ]
    )


def test_a_missing_module_behind_a_subpackage_init_names_both_files(package_project: PipelineProject) -> None:
    src = package_project.root / "src"
    (src / "acme/pipelines/__init__.py").write_text("# the registry of pipelines\nfrom .registry import REGISTRY\n")
    (src / "acme/pipelines/registry.py").write_text("import snowflake_connector_absent\nREGISTRY = {}\n")
    result = package_project.run("--cursus-no-preload")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*failed in package acme.pipelines (acme/pipelines/__init__.py line 2): ModuleNotFoundError: "
            "No module named 'snowflake_connector_absent', imported by acme/pipelines/registry.py line 1"
        ]
    )


def test_editing_a_relatively_imported_sibling_changes_the_step_key_and_reruns_the_step(
    package_project: PipelineProject,
) -> None:
    scenario = package_project.root / "scenarios" / "credit.yaml"

    def key() -> str:
        plan = load_scenario(scenario, PlanOptions(), FileLookups())
        return step_key(plan.steps["build"], {}).digest

    package_project.run().assert_outcomes(passed=1)
    before = key()
    package_project.run("-v").stdout.fnmatch_lines(["*credit.yaml::build CACHED*"])
    (package_project.root / "src/acme/pipelines/credit/suffixes.py").write_text("SUFFIX = '-v2'\n")
    assert key() != before
    result = package_project.run("-v")
    result.stdout.fnmatch_lines(["*credit.yaml::build PASSED*"])
    assert _result(package_project) == "BUILT-v2"
    (package_project.root / "src/acme/processing/encoders.py").write_text("def encode(value):\n    return value\n")
    package_project.run().assert_outcomes(passed=1)
    assert _result(package_project) == "built-v2", "a module three packages up is part of the key too"


def _run_contracts(project: PipelineProject, *args: str) -> pytest.RunResult:
    return project.pytester.runpytest(
        "--cursus-contracts", "contracts", "--cursus-workspace", str(project.workspace), "-p", "no:cacheprovider", *args
    )


def test_the_contract_import_check_imports_a_package_script_by_its_dotted_name(
    package_project: PipelineProject,
) -> None:
    result = _run_contracts(package_project, "--cursus-scripts", "src/acme/pipelines/credit")
    result.assert_outcomes(passed=1)


def test_the_contract_import_check_names_the_package_init_that_fails(package_project: PipelineProject) -> None:
    (package_project.root / "src/acme/__init__.py").write_text('"""Acme."""\n\nimport boto3_not_installed_here\n')
    result = _run_contracts(package_project, "--cursus-scripts", "src/acme/pipelines/credit")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*importing */build.py (as acme.pipelines.credit.build) failed in package acme (acme/__init__.py "
            "line 3): ModuleNotFoundError: No module named 'boto3_not_installed_here', imported by acme/__init__.py "
            "line 3: the contract does not declare it under framework_requirements; install the package that "
            "provides it (pip install boto3_not_installed_here) and declare it there"
        ]
    )


# A script written to be run as `python sample.py` in its container: its own __main__ block names
# the channels, and main() reads those names, not the contract's.
MAIN_STYLE_SCRIPT = """
import csv
import json
import os


def main(input_paths, output_paths, environ_vars, job_args):
    with open(input_paths["ruleset_file"]) as handle:
        rules = json.load(handle)
    with open(os.path.join(output_paths["output_dir"], "payload.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["field", "limit"])
        for field, limit in sorted(rules.items()):
            writer.writerow([field, limit])


if __name__ == "__main__":
    main(
        {"ruleset_file": "/opt/ml/processing/input/ruleset/validated.json"},
        {"output_dir": "/opt/ml/processing/output/payload"},
        dict(os.environ),
        None,
    )
"""

VALIDATE_SCRIPT = """
import json
import os


def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(output_paths["validated"], "validated.json"), "w") as handle:
        json.dump({"amount": 5000, "age": 120}, handle)
    with open(os.path.join(output_paths["validated"], "rejected.json"), "w") as handle:
        json.dump({}, handle)
"""


@pytest.fixture
def main_style(project: PipelineProject) -> PipelineProject:
    """`validate` writes two JSON files into one output; `sample` is a __main__-style script
    whose keys (`ruleset_file`, `output_dir`) differ from its contract's (`ruleset`, `payload_sample`)."""
    project.contract("Validate", entry_point="validate.py", outputs={"validated": {"path": "/opt/ml/processing/out"}})
    project.contract(
        "PayloadSample",
        entry_point="sample.py",
        inputs={"ruleset": {"path": "/opt/ml/processing/input/ruleset"}},
        outputs={
            "payload_sample": {"path": "/opt/ml/processing/output/payload"},
            "summary": {"path": "/opt/ml/processing/output/summary"},
        },
    )
    project.script("validate.py", VALIDATE_SCRIPT)
    project.script("sample.py", MAIN_STYLE_SCRIPT)
    return project


def test_a_main_style_script_runs_green_when_the_scenario_renames_and_points_its_channels(
    main_style: PipelineProject,
) -> None:
    main_style.scenario(
        "payload",
        """
        steps:
          validate: {contract: Validate}
          sample:
            contract: PayloadSample
            inputs:
              ruleset: {from: validate.validated, file: validated.json, as: ruleset_file}
            outputs:
              payload_sample: {as: output_dir}
            expect:
              payload_sample: {files: payload.csv, min_rows: 2, columns: [field, limit]}
        """,
    )
    result = main_style.run("-v")
    result.assert_outcomes(passed=3)  # validate, the compat edge (by channel name), sample with its expect:
    result.stdout.fnmatch_lines(["*compat[[]validate.validated-sample.ruleset[]] PASSED*"])
    written = main_style.step_dir("payload", "sample") / "output" / "payload_sample" / "payload.csv"
    assert written.read_text().splitlines() == ["field,limit", "age,120", "amount,5000"]


def test_without_as_the_same_script_fails_on_the_key_its_main_block_uses(main_style: PipelineProject) -> None:
    main_style.scenario(
        "payload",
        """
        steps:
          validate: {contract: Validate}
          sample: {contract: PayloadSample, inputs: {ruleset: validate.validated}}
        """,
    )
    result = main_style.run()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*KeyError: 'ruleset_file'*"])


def test_a_channel_pointed_at_a_file_of_a_data_source_gets_that_files_path(main_style: PipelineProject) -> None:
    rules = main_style.root / "rules"
    rules.mkdir()
    (rules / "validated.json").write_text('{"score": 1}')
    (rules / "README.md").write_text("not for the script")
    main_style.scenario(
        "payload",
        """
        data: {rules: {local: ../rules}}
        steps:
          sample:
            contract: PayloadSample
            inputs: {ruleset: {from: rules, file: validated.json, as: ruleset_file}}
            outputs: {payload_sample: {as: output_dir}}
        """,
    )
    main_style.run().assert_outcomes(passed=1)
    request = json.loads((main_style.step_dir("payload", "sample") / "logs" / "request.json").read_text())
    assert request["input_paths"] == {
        "ruleset_file": str(main_style.step_dir("payload", "sample") / "input" / "ruleset" / "validated.json")
    }
    assert request["output_paths"] == {
        "output_dir": str(main_style.step_dir("payload", "sample") / "output" / "payload_sample"),
        "summary": str(main_style.step_dir("payload", "sample") / "output" / "summary"),
    }


def test_a_file_missing_from_the_channel_fails_the_step_before_it_runs_and_lists_what_is_there(
    main_style: PipelineProject,
) -> None:
    main_style.scenario(
        "payload",
        """
        steps:
          validate: {contract: Validate}
          sample:
            contract: PayloadSample
            inputs: {ruleset: {from: validate.validated, file: valid.json, as: ruleset_file}}
            outputs: {payload_sample: {as: output_dir}}
        """,
    )
    result = main_style.run()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*could not stage input: input 'ruleset' points the script at 'valid.json' inside the channel, but its "
            "data (*) holds no such file; it holds: rejected.json, validated.json"
        ]
    )


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            "inputs: {ruleset: rules}\n    outputs: {payload_sample: {as: summary}}",
            "payload.yaml:7: steps.sample.outputs.payload_sample.as: the script would get output key 'summary' "
            "twice: for 'payload_sample' and for 'summary'; give each channel its own key",
        ),
        (
            "inputs: {ruleset: {from: rules}}\n    outputs: {payload: {as: output_dir}}",
            "payload.yaml:7: steps.sample.outputs.payload: contract PayloadSample has no output 'payload' "
            "(did you mean payload_sample?); its outputs are: payload_sample",
        ),
        (
            "inputs: {ruleset: {from: rules, file: ../secrets.json}}",
            "payload.yaml:6: steps.sample.inputs.ruleset.file: expected a path relative to the channel's directory, "
            "without '..'; found '../secrets.json' (type str)",
        ),
        (
            "inputs: {ruleset: {from: rule}}",
            "payload.yaml:6: steps.sample.inputs.ruleset.from: 'rule' is neither a data source nor <step>.<output> "
            "(there is no data source 'rule') (did you mean rules?)",
        ),
        (
            "inputs: {ruleset: {file: validated.json}}",
            "payload.yaml:6: steps.sample.inputs: required input 'ruleset' of contract PayloadSample",
        ),
    ],
    ids=["key-twice", "unknown-output", "file-above-channel", "bad-from", "not-wired"],
)
def test_channel_shapes_are_checked_with_file_line_and_field(
    main_style: PipelineProject, steps: str, expected: str
) -> None:
    (main_style.root / "rules").mkdir()
    path = main_style.scenario(
        "payload",
        f"""
data: {{rules: {{local: ../rules}}}}
steps:
  sample:
    contract: PayloadSample
    {steps}
""",
    )
    with pytest.raises(ConfigErrors) as raised:
        load_scenario(path, PlanOptions(), FileLookups())
    assert expected in raised.value.render(main_style.root)
