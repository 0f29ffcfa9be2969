"""Watch mode (docs/watch.md): which steps a changed file reruns, and the watching pytest process itself."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

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


class WatchingPytest:
    """A real `pytest --cursus-watch` process whose output lines are read as they come."""

    def __init__(self, project: PipelineProject) -> None:
        args = [sys.executable, "-m", "pytest", "-v", "-p", "no:randomly", "-p", "no:cacheprovider"]
        args += ["--cursus-scenarios", "scenarios", "--cursus-workspace", str(project.workspace), "--cursus-watch"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            args, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def until(self, *patterns: str, timeout: float = 180) -> list[str]:
        """The lines read until every pattern has appeared in one of them (hang guard: ``timeout``)."""
        read: list[str] = []
        pending = list(patterns)
        while pending:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line with {pending} within {timeout} s; read:\n{''.join(read)}") from None
            read.append(line)
            self.seen.append(line)
            pending = [pattern for pattern in pending if pattern not in line]
        return read

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=60)


def _save(path: Path, text: str) -> None:
    """Saves once the watcher is listening: the "watching" line comes just before it registers its watches."""
    time.sleep(2)
    path.write_text(text)


def test_an_edited_middle_script_reruns_it_and_the_last_step_but_not_the_first(project: PipelineProject) -> None:
    _chain(project)
    watching = WatchingPytest(project)
    try:
        watching.until("cursus watch: watching")
        middle = project.root / "scripts" / "middle.py"
        _save(middle, middle.read_text() + "\n# edited\n")
        rerun = watching.until("chain.yaml::middle PASSED", "cursus watch: watching")
        # early cutoff: a comment leaves middle's output as it was, so last is served from the entry this
        # session stored (SHARED); its item is rerun all the same
        assert any("chain.yaml::last " in line and ("PASSED" in line or "SHARED" in line) for line in rerun), rerun
        assert not [line for line in rerun if "chain.yaml::first " in line or "chain.yaml::side " in line], rerun
        assert any("cursus: pipeline steps" in line for line in rerun)  # the summary table again
    finally:
        watching.end()


def test_a_scenario_saved_with_a_yaml_error_prints_it_and_its_fix_reruns(project: PipelineProject) -> None:
    path = _chain(project)
    good = path.read_text()
    watching = WatchingPytest(project)
    try:
        watching.until("cursus watch: watching")
        _save(path, good.replace("steps:", "steps: [", 1))
        broken = watching.until("chain.yaml", "cursus watch: watching")
        assert any("chain.yaml:" in line and ("line" in line or ":" in line) for line in broken)
        assert any("ERROR" in line for line in broken), broken
        _save(path, good.replace("{STEP: side}", "{STEP: side, EXTRA: '1'}"))
        watching.until("chain.yaml::side", "chain.yaml::last", "cursus watch: watching")
    finally:
        watching.end()


def test_ctrl_c_ends_the_watch_with_nothing_left_running(project: PipelineProject) -> None:
    _chain(project)
    watching = WatchingPytest(project)
    try:
        watching.until("cursus watch: watching")
        descendants = psutil.Process(watching.process.pid).children(recursive=True)
        watching.process.send_signal(signal.SIGINT)
        assert watching.process.wait(timeout=90) == pytest.ExitCode.INTERRUPTED
        _, alive = psutil.wait_procs(descendants, timeout=30)
        assert not alive, alive
    finally:
        watching.end()


def test_watch_with_xdist_is_a_usage_error(project: PipelineProject) -> None:
    _chain(project)
    result = project.run("--cursus-watch", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cursus-watch*cannot be combined with -n*"])
