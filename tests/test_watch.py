"""Watch mode (docs/watch.md): which steps a changed file reruns, and the watching pytest process itself."""

from __future__ import annotations

from pathlib import Path

from pipeline_project import PipelineProject
from pytest_cursus.plan.scenario_plan import load_scenario
from pytest_cursus.run.watch_targets import WatchIndex

DATA_INPUT = {"DATA": {"path": "/opt/ml/processing/input/data"}}

COPY_SCRIPT = """
import os, shutil

def main(input_paths, output_paths, environ_vars, job_args):
    print("ran", environ_vars["STEP"], flush=True)
    for name, path in input_paths.items():
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(output_paths["out"], name))
    open(os.path.join(output_paths["out"], "done.txt"), "w").write(environ_vars["STEP"])
"""


def _chain(project: PipelineProject) -> Path:
    """first (reads a file: source) -> middle (imports lib/shared.py) -> last; a side step reads nothing."""
    project.contract("First", entry_point="first.py", inputs=DATA_INPUT)
    project.contract("Middle", entry_point="middle.py", inputs=DATA_INPUT)
    project.contract("Last", entry_point="last.py", inputs=DATA_INPUT)
    project.contract("Side", entry_point="side.py")
    for name in ("first", "last", "side"):
        project.script(f"{name}.py", COPY_SCRIPT)
    project.script("lib/__init__.py", "")
    project.script("lib/shared.py", "FACTOR = 1\n")
    project.script("middle.py", "from lib.shared import FACTOR\n" + COPY_SCRIPT)
    fixtures = project.root / "fixtures" / "raw"
    fixtures.mkdir(parents=True)
    (fixtures / "part.csv").write_text("a\n1\n")
    return project.scenario(
        "chain",
        """
        data:
          raw: {file: ../fixtures/raw}
        steps:
          first: {contract: First, inputs: {DATA: raw}, env: {STEP: first}}
          middle: {contract: Middle, inputs: {DATA: first.out}, env: {STEP: middle}}
          last: {contract: Last, inputs: {DATA: middle.out}, env: {STEP: last}}
          side: {contract: Side, env: {STEP: side}}
        """,
    )


def _index(project: PipelineProject) -> tuple[Path, WatchIndex]:
    path = _chain(project)
    return path, WatchIndex.of([load_scenario(path)])


def test_an_edited_script_reruns_its_step_and_what_is_downstream_of_it(project: PipelineProject) -> None:
    path, index = _index(project)
    targets = index.targets([project.root / "scripts" / "middle.py"])
    assert targets.steps == {(path, "middle"), (path, "last")}
    assert not targets.replan


def test_an_edited_module_imported_from_the_roots_reruns_the_step_importing_it(project: PipelineProject) -> None:
    path, index = _index(project)
    assert index.targets([project.root / "scripts" / "lib" / "shared.py"]).steps == {(path, "middle"), (path, "last")}


def test_a_file_changed_inside_a_file_source_directory_reruns_its_readers(project: PipelineProject) -> None:
    path, index = _index(project)
    targets = index.targets([project.root / "fixtures" / "raw" / "part.csv"])
    assert targets.steps == {(path, "first"), (path, "middle"), (path, "last")}
    assert targets.sources == {(path, "raw")}


def test_an_edited_scenario_or_contract_replans_the_scenario(project: PipelineProject) -> None:
    path, index = _index(project)
    assert index.targets([path]).replan == {path}
    assert index.targets([project.root / "contracts" / "side.step.yaml"]).replan == {path}
    assert not index.targets([project.root / "contracts" / "side.step.yaml"]).steps


def test_an_unrelated_file_asks_for_nothing(project: PipelineProject) -> None:
    _, index = _index(project)
    (project.root / "notes.txt").write_text("x")
    assert not index.targets([project.root / "notes.txt"])


def test_the_watched_paths_are_the_scenario_contracts_scripts_imports_and_sources(project: PipelineProject) -> None:
    path, index = _index(project)
    scripts = project.root / "scripts"
    assert {
        path,
        project.root / "contracts" / "middle.step.yaml",
        scripts / "middle.py",
        scripts / "lib" / "shared.py",
        scripts / "lib" / "__init__.py",
        project.root / "fixtures" / "raw",
    } <= set(index.paths())
