"""Collection: which files become scenarios, item ids, order, selection, markers, locations."""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus import run_scenario
from pytest_cursus.errors import ConfigErrors
from pytest_cursus.plan.scenario_plan import FileLookups, load_scenario

CHAIN = """
data:
  raw: {text: "id,value\\n1,2\\n", filename: raw.csv}
steps:
  load:
    contract: Loader
    inputs: {DATA: raw}
  clean:
    contract: Cleaner
    inputs: {DATA: load.out}
  report:
    contract: Reporter
    inputs: {DATA: clean.out}
"""

COPY_SCRIPT = """
import os, shutil

def main(input_paths, output_paths, environ_vars, job_args):
    for name in os.listdir(input_paths["DATA"]):
        shutil.copy(os.path.join(input_paths["DATA"], name), output_paths["out"])
"""


@pytest.fixture
def chain(project: PipelineProject) -> PipelineProject:
    for step_type in ("Loader", "Cleaner", "Reporter"):
        project.contract(step_type, inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
        project.script(f"{step_type.lower()}.py", COPY_SCRIPT)
    project.scenario("chain", CHAIN)
    return project


def test_steps_and_edges_are_collected_in_dag_order_with_stable_ids(chain: PipelineProject) -> None:
    result = chain.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "scenarios/chain.yaml::load",
            "scenarios/chain.yaml::compat[[]load.out-clean.DATA[]]",
            "scenarios/chain.yaml::clean",
            "scenarios/chain.yaml::compat[[]clean.out-report.DATA[]]",
            "scenarios/chain.yaml::report",
        ],
        consecutive=True,
    )


def test_declaration_order_does_not_change_the_dag_order(project: PipelineProject) -> None:
    for step_type in ("Loader", "Cleaner"):
        project.contract(step_type, inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
        project.script(f"{step_type.lower()}.py", COPY_SCRIPT)
    project.scenario(
        "reversed",
        """
        data: {raw: {text: "x"}}
        steps:
          clean: {contract: Cleaner, inputs: {DATA: load.out}}
          load: {contract: Loader, inputs: {DATA: raw}}
        """,
    )
    result = project.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["scenarios/reversed.yaml::load", "*compat*", "scenarios/reversed.yaml::clean"], consecutive=True
    )


def test_all_steps_pass_in_pipeline_order(chain: PipelineProject) -> None:
    result = chain.run("-v")
    result.assert_outcomes(passed=5)


def test_yaml_files_without_steps_are_left_alone(chain: PipelineProject) -> None:
    (chain.root / "scenarios" / "settings.yaml").write_text("not_a_scenario: true\n")
    result = chain.run("--collect-only", "-q")
    assert "settings.yaml" not in result.stdout.str()
    result.stdout.fnmatch_lines(["5 tests collected*"])


def test_scenario_directories_from_ini_are_collected(chain: PipelineProject) -> None:
    chain.pytester.makeini("[pytest]\ncursus_scenarios = scenarios\n")
    result = chain.pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["scenarios/chain.yaml::load", "5 tests collected*"])


def test_yaml_outside_the_scenario_directories_is_not_collected(chain: PipelineProject) -> None:
    other = chain.root / "elsewhere"
    other.mkdir()
    (other / "pipeline.yaml").write_text((chain.root / "scenarios" / "chain.yaml").read_text())
    result = chain.run("--collect-only", "-q")
    assert "elsewhere" not in result.stdout.str()


def test_a_scenario_file_named_on_the_command_line_is_collected(chain: PipelineProject) -> None:
    result = chain.pytester.runpytest("scenarios/chain.yaml", "--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["scenarios/chain.yaml::load", "5 tests collected*"])


def test_k_selects_a_step_by_name_and_runs_its_upstream_as_setup(chain: PipelineProject) -> None:
    result = chain.run("-v", "-k", "report and not compat")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*chain.yaml::report PASSED*"])


def test_scenario_name_is_a_keyword(chain: PipelineProject) -> None:
    result = chain.run("--collect-only", "-q", "-k", "chain")
    result.stdout.fnmatch_lines(["5 tests collected*"])
    result = chain.run("--collect-only", "-q", "-k", "not chain")
    assert "no tests collected" in result.stdout.str() or "5 deselected" in result.stdout.str()


@pytest.mark.parametrize(
    ("marker", "count"),
    [("cursus", 5), ("cursus_step", 3), ("cursus_edge", 2)],
)
def test_items_carry_markers(chain: PipelineProject, marker: str, count: int) -> None:
    result = chain.run("--collect-only", "-q", "-m", marker, "--strict-markers")
    result.stdout.fnmatch_lines([f"{count}/5 tests collected*" if count != 5 else "5 tests collected*"])


def test_markers_are_registered(chain: PipelineProject) -> None:
    result = chain.pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.cursus:*", "@pytest.mark.cursus_step:*", "@pytest.mark.cursus_edge:*"])


def test_reportinfo_points_at_the_step_line_in_the_yaml(chain: PipelineProject) -> None:
    items, _ = chain.pytester.inline_genitems("--cursus-scenarios", "scenarios", "-p", "no:cacheprovider")
    by_name = {item.name: item for item in items}
    path, line, description = by_name["clean"].reportinfo()
    assert path == chain.root / "scenarios" / "chain.yaml"
    lines = (chain.root / "scenarios" / "chain.yaml").read_text().splitlines()
    assert lines[line].strip() == "clean:"
    assert description == "chain::clean"


def test_collection_is_identical_across_runs(chain: PipelineProject) -> None:
    first = chain.run("--collect-only", "-q").stdout.lines
    second = chain.run("--collect-only", "-q").stdout.lines
    assert [line for line in first if "::" in line] == [line for line in second if "::" in line]


def test_unknown_source_choice_is_a_usage_error(chain: PipelineProject) -> None:
    result = chain.run("--cursus-source", "ftp")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cursus-source*invalid choice*ftp*"])


def test_missing_scenario_directory_is_a_usage_error(chain: PipelineProject) -> None:
    result = chain.pytester.runpytest("--cursus-scenarios", "nowhere", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cursus-scenarios*nowhere does not exist*"])


def test_a_workspace_that_cannot_be_created_is_a_usage_error(chain: PipelineProject) -> None:
    (chain.root / "a_file").write_text("not a directory")
    result = chain.pytester.runpytest(
        "--cursus-scenarios", "scenarios", "--cursus-workspace", "a_file/ws", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--cursus-workspace / cursus_workspace: *a_file/ws cannot be created (Not a directory): give a writable "
            "directory*"
        ]
    )


def test_an_unusable_basetemp_fails_the_step_that_needs_it_not_the_session(chain: PipelineProject) -> None:
    (chain.root / "a_file").write_text("not a directory")
    result = chain.pytester.runpytest_subprocess(
        "--cursus-scenarios",
        "scenarios",
        "--basetemp",
        str(chain.root / "a_file" / "tmp"),
        "--cursus-no-cache",
        "-x",
        "-p",
        "no:cacheprovider",
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*NotADirectoryError*a_file/tmp*"])


def test_ini_timeout_must_be_a_number(chain: PipelineProject) -> None:
    chain.pytester.makeini("[pytest]\ncursus_timeout = soon\n")
    result = chain.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cursus_timeout: expected a number, got 'soon'*"])


def test_a_node_id_inside_the_scenario_directory_selects_only_that_item(chain: PipelineProject) -> None:
    result = chain.run("scenarios/chain.yaml::clean", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["scenarios/chain.yaml::clean", "1 test collected*"])


def test_a_test_directory_named_beside_the_scenarios_adds_them(chain: PipelineProject) -> None:
    chain.pytester.makepyfile(test_unit="def test_unit():\n    pass\n")
    result = chain.run("test_unit.py", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_unit.py::test_unit", "*6 tests collected*"])


def test_yaml_under_a_directory_named_on_the_command_line_is_collected(chain: PipelineProject) -> None:
    result = chain.pytester.runpytest("scenarios", "--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["scenarios/chain.yaml::load", "5 tests collected*"])


def test_a_bare_pytest_run_does_not_collect_yaml(chain: PipelineProject) -> None:
    result = chain.pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert "chain.yaml" not in result.stdout.str()


# CI configurations with a top-level `steps:` of their own, as they sit in a repository's root
CI_FILES = {
    "azure-pipelines.yml": """\
trigger:
- main

pool:
  vmImage: ubuntu-latest

steps:
- task: UsePythonVersion@0
  inputs:
    versionSpec: '3.11'
- script: pip install -e '.[test]'
  displayName: Install
- script: pytest -n auto --junitxml=junit.xml
  displayName: Test
""",
    "cloudbuild.yaml": """\
steps:
- name: python:3.11
  entrypoint: pip
  args: [install, -e, '.[test]', --user]
- name: python:3.11
  entrypoint: python
  args: [-m, pytest, -q]
timeout: 1200s
""",
    ".drone.yml": """\
kind: pipeline
type: docker
name: default

steps:
- name: test
  image: python:3.11
  commands:
  - pip install -e '.[test]'
  - pytest -q
""",
    ".woodpecker.yml": """\
steps:
  test:
    image: python:3.11
    commands:
      - pip install -e '.[test]'
      - pytest -q
""",
}


@pytest.fixture
def with_ci_files(chain: PipelineProject) -> PipelineProject:
    for name, text in CI_FILES.items():
        (chain.root / name).write_text(text)
    return chain


def _ci_files_named_in(output: str) -> list[str]:
    return [name for name in CI_FILES if name in output]


def test_pytest_dot_collects_the_scenarios_but_not_the_ci_files_beside_them(with_ci_files: PipelineProject) -> None:
    result = with_ci_files.pytester.runpytest(".", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert _ci_files_named_in(result.stdout.str()) == []
    result.stdout.fnmatch_lines(["scenarios/chain.yaml::load", "5 tests collected*"])


def test_pytest_dot_runs_without_an_error_for_the_ci_files(with_ci_files: PipelineProject) -> None:
    result = with_ci_files.pytester.runpytest(
        ".", "--cursus-workspace", str(with_ci_files.workspace), "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=5)
    assert _ci_files_named_in(result.stdout.str()) == []


@pytest.mark.parametrize("args", [(), ("--cursus-scenarios", "scenarios")], ids=["ini", "command line"])
def test_ci_files_outside_the_scenario_paths_are_never_collected(
    with_ci_files: PipelineProject, args: tuple[str, ...]
) -> None:
    with_ci_files.pytester.makeini("[pytest]\ncursus_scenarios = scenarios\n")
    result = with_ci_files.pytester.runpytest(*args, "--collect-only", "-q", "-p", "no:cacheprovider")
    assert _ci_files_named_in(result.stdout.str()) == []
    result.stdout.fnmatch_lines(["5 tests collected*"])


def test_a_broken_scenario_under_a_named_directory_is_still_an_error_item(chain: PipelineProject) -> None:
    chain.scenario("unclosed", "steps:\n  load: {contract: Loader, inputs: {DATA: raw}\n")
    chain.scenario("typo", CHAIN.replace("contract: Reporter", "contract: Reporter\n    timout: 5"))
    result = chain.pytester.runpytest("scenarios", "--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["scenarios/typo.yaml::typo", "scenarios/unclosed.yaml::unclosed"])


def test_a_ci_file_under_a_named_directory_is_left_alone_whatever_its_name(chain: PipelineProject) -> None:
    (chain.root / "scenarios" / "build.yaml").write_text(CI_FILES["cloudbuild.yaml"])
    result = chain.pytester.runpytest("scenarios", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert "build.yaml" not in result.stdout.str()
    result.stdout.fnmatch_lines(["5 tests collected*"])


HEAVY_MODULES = (
    "pydantic",
    "yaml",
    "pandas",
    "pyarrow",
    "numpy",
    "hypothesis",
    "botocore",
    "pytest_cursus.plugin.scenario_items",
    "pytest_cursus.results",
)


def test_a_session_without_scenarios_imports_neither_the_engine_nor_the_report_models(
    pytester: pytest.Pytester,
) -> None:
    """The plugin is installed in projects whose plain unit tests must not pay for it."""
    pytester.makepyfile(test_unit="def test_unit():\n    assert True\n")
    pytester.makeconftest(
        "import sys\n"
        "def pytest_unconfigure():\n"
        f"    loaded = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
        "    open('loaded.txt', 'w').write(' '.join(loaded))\n"
    )
    # the hypothesis plugin (a dependency's own) imports hypothesis in its terminal summary
    result = pytester.runpytest_subprocess("-p", "no:hypothesispytest", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "loaded.txt").read_text() == ""


def test_a_session_with_a_scenario_still_loads_what_its_steps_need(chain: PipelineProject) -> None:
    chain.pytester.makeconftest(
        "import sys\n"
        "def pytest_unconfigure():\n"
        "    open('loaded.txt', 'w').write(' '.join(m for m in ('pydantic', 'pytest_cursus.plugin.scenario_items', "
        "'pytest_cursus.results') if m in sys.modules))\n"
    )
    result = chain.pytester.runpytest_subprocess("--cursus-scenarios", "scenarios", "-p", "no:randomly")
    result.assert_outcomes(passed=5)
    assert (chain.root / "loaded.txt").read_text().split() == [
        "pydantic",
        "pytest_cursus.plugin.scenario_items",
        "pytest_cursus.results",
    ]


def test_skips_point_at_the_scenario_file_not_the_plugin(chain: PipelineProject) -> None:
    chain.script("loader.py", "def main(i, o, e, j):\n    raise ValueError('broken')\n")
    result = chain.run("-rs")
    result.assert_outcomes(failed=1, skipped=4)
    result.stdout.fnmatch_lines(["SKIPPED [[]*[]] scenarios/chain.yaml:*: upstream step 'load' failed*"])
    assert "scenario_items.py" not in result.stdout.str()


def _edit_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    """An edit that a cache keyed on file size and modification time would miss."""
    assert len(old) == len(new)
    before = path.stat()
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_a_contract_edited_between_two_runs_in_one_process_is_seen_by_the_second(chain: PipelineProject) -> None:
    chain.run("--collect-only", "-q").stdout.fnmatch_lines(["scenarios/chain.yaml::load"])
    _edit_keeping_size_and_mtime(chain.root / "contracts" / "loader.step.yaml", "loader.py", "loadex.py")

    result = chain.run("-q")  # in-process again: the same interpreter as the first run

    result.stdout.fnmatch_lines(["*entry point 'loadex.py' of contract Loader*not found*"])
    result.assert_outcomes(errors=1)


def test_a_script_added_after_a_run_is_found_by_the_next_run_in_the_same_process(chain: PipelineProject) -> None:
    (chain.root / "scripts" / "reporter.py").unlink()
    chain.run("-q").stdout.fnmatch_lines(["*entry point 'reporter.py' of contract Reporter*not found*"])
    chain.script("reporter.py", COPY_SCRIPT)

    result = chain.run("-q")

    result.assert_outcomes(passed=5)


def test_the_notebook_api_sees_a_contract_edited_between_two_runs(chain: PipelineProject, tmp_path: Path) -> None:
    scenario = chain.root / "scenarios" / "chain.yaml"
    assert run_scenario(scenario, workspace=tmp_path / "first", cache_dir=tmp_path / "cache").passed
    _edit_keeping_size_and_mtime(chain.root / "contracts" / "loader.step.yaml", "loader.py", "loadex.py")

    with pytest.raises(ConfigErrors, match="entry point 'loadex.py' of contract Loader"):
        run_scenario(scenario, workspace=tmp_path / "second", cache_dir=tmp_path / "cache")


def test_scenarios_read_with_one_file_lookups_share_one_reading_of_the_contracts(chain: PipelineProject) -> None:
    first_file = chain.root / "scenarios" / "chain.yaml"
    second_file = shutil.copy(first_file, chain.root / "scenarios" / "chain_copy.yaml")
    lookups = FileLookups()

    first = load_scenario(first_file, lookups=lookups)
    second = load_scenario(Path(second_file), lookups=lookups)
    read_alone = load_scenario(Path(second_file))

    assert second.steps["load"].contract is first.steps["load"].contract
    assert second.steps["load"].script == first.steps["load"].script
    assert read_alone.steps["load"].contract is not first.steps["load"].contract
    assert read_alone.steps["load"].contract == first.steps["load"].contract


def test_collection_leaves_the_garbage_collector_on_also_after_an_invalid_scenario(chain: PipelineProject) -> None:
    chain.scenario("broken", "steps:\n  load: {contract: Loader, inputs: {DATA: [unclosed}\n")
    assert gc.isenabled()

    result = chain.run("--collect-only", "-q")  # in-process: the same interpreter

    result.stdout.fnmatch_lines(["scenarios/broken.yaml::broken", "scenarios/chain.yaml::load"])
    assert gc.isenabled()
