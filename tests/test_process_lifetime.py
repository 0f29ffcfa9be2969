"""No process outlives the run: a daemon a step leaves behind, SIGTERM and SIGKILL of pytest
(docs/execution.md, "Process trees").

Every process a test starts carries a unique token in its command line; the test looks them up
by it (psutil), asserts they are gone, and kills any survivor in a ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipeline_project import PipelineProject
from pytest_cursus.execution.launcher import FreshInterpreterLauncher
from pytest_cursus.execution.step_runner import StepRunner, child_environment
from pytest_cursus.execution.warm_executor import WarmForkLauncher
from pytest_cursus.plan.scenario_plan import load_scenario
from pytest_cursus.results import StepResult

STARTUP_LIMIT_S = 60  # a fresh pytest, then the step's interpreter, then its processes
EXIT_LIMIT_S = 60  # a loaded machine can take many seconds to end a pytest process
DEATH_LIMIT_S = 3  # "within a couple of seconds", with room for a busy machine

# A process that sleeps with the test's token as argv[1] (the test finds it by its command line,
# the whole of which the note quotes) and records its pid in argv[2].
SLEEPER = "import os, sys, time; open(sys.argv[2], 'w').write(str(os.getpid())); time.sleep(600)"

# main() starts a daemon the classic way: fork, setsid, fork again, the middle process exits, so
# the daemon is nobody's child in the step's tree. It returns once the daemon is running.
DAEMONIZING_FUNCTIONS = f"""
import os, subprocess, sys, time

SLEEPER = {SLEEPER!r}

def wait_for(path):
    while True:
        try:
            return int(open(path).read())
        except (OSError, ValueError):
            time.sleep(0.01)

def start_daemon(pid_file, token):
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", SLEEPER, token, pid_file])
        os._exit(0)
    os.waitpid(middle, 0)
    return wait_for(pid_file)
"""


def _with_token(token: str) -> list[psutil.Process]:
    """The running processes whose command line carries ``token``."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if token in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE and process.pid != os.getpid():
            found.append(process)
    return found


def _alive(process: psutil.Process) -> bool:
    try:
        # is_running compares the creation time too: a recycled pid does not count
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _survivors(token: str, watched: list[psutil.Process], within: float) -> list[str]:
    """What is still running after ``within`` seconds: processes with ``token``, and ``watched``."""
    until = time.monotonic() + within
    while True:
        running = {process.pid: process for process in [*_with_token(token), *watched] if _alive(process)}
        if not running or time.monotonic() > until:
            return [f"{pid} ({' '.join(process.cmdline())})" for pid, process in running.items() if _alive(process)]
        time.sleep(0.05)


@pytest.fixture
def token() -> Iterator[str]:
    """A unique token for this test's processes; whatever carries it is killed afterwards."""
    value = f"cursus-lifetime-{uuid.uuid4().hex}"
    yield value
    for process in _with_token(value):
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def _step(root: Path, source: str) -> object:
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "contracts").mkdir(exist_ok=True)
    (root / "scripts" / "s.py").write_text(textwrap.dedent(source))
    (root / "contracts" / "s.step.yaml").write_text(
        "step_type: S\ncontract:\n  entry_point: s.py\n  inputs: {}\n"
        "  outputs: {out: {path: /opt/ml/processing/output}}\n"
    )
    (root / "s.yaml").write_text("contracts: [contracts]\nscripts: [scripts]\nsteps:\n  s:\n    contract: S\n")
    return load_scenario(root / "s.yaml").steps["s"]


def _run(kind: str, root: Path, step: object) -> StepResult:
    """The step run once, forked from a warm parent (closed afterwards) or in a fresh interpreter."""
    if kind == "fresh":
        return StepRunner(root / "ws", launcher=FreshInterpreterLauncher()).run(step, {})
    launcher = WarmForkLauncher(base_env=child_environment({}), workdir=root / "warm")
    try:
        return StepRunner(root / "ws", launcher=launcher).run(step, {})
    finally:
        launcher.close()


# --- a daemon left behind by a step that succeeded -------------------------------------------


@pytest.mark.parametrize("kind", ["forked", "fresh"])
def test_a_daemon_a_passing_step_double_forked_is_killed_and_named_in_the_step_notes(
    tmp_path: Path, token: str, kind: str
) -> None:
    daemon_pid_file = tmp_path / "daemon.pid"
    step = _step(
        tmp_path,
        DAEMONIZING_FUNCTIONS
        + f"""
def main(input_paths, output_paths, environ_vars, job_args):
    start_daemon({str(daemon_pid_file)!r}, {token!r})
""",
    )
    result = _run(kind, tmp_path, step)
    assert result.passed, result.failure
    assert result.metrics is not None and result.metrics.executor == kind
    daemon = int(daemon_pid_file.read_text())
    assert _survivors(token, [], within=0) == [], "the daemon was killed when the step's process ended"
    assert not psutil.pid_exists(daemon) or psutil.Process(daemon).status() == psutil.STATUS_ZOMBIE
    [note] = [note for note in result.notes if "left" in note]
    assert note.startswith(f"step 's' left 1 process running when its process ended (pid {daemon}: ")
    assert token in note, "the note names the daemon's command"
    assert "killed, as the end of a container's entry process ends everything in it" in note


@pytest.mark.parametrize("kind", ["forked", "fresh"])
def test_a_multiprocessing_pool_left_open_is_ended_without_a_note(tmp_path: Path, kind: str) -> None:
    # a plain interpreter's exit ends an unclosed pool's workers too: nothing differs to report
    step = _step(
        tmp_path,
        """
        import multiprocessing

        def main(input_paths, output_paths, environ_vars, job_args):
            pool = multiprocessing.get_context("fork").Pool(2)
            assert pool.map(abs, [-1, -2]) == [1, 2]
        """,
    )
    result = _run(kind, tmp_path, step)
    assert result.passed, result.failure
    assert result.notes == []


def test_processes_left_by_a_step_that_ended_with_os_exit_are_killed_and_named(tmp_path: Path, token: str) -> None:
    # the child gets no chance to end them: the supervisor does, and says so
    sleeper_pid_file = tmp_path / "sleeper.pid"
    step = _step(
        tmp_path,
        DAEMONIZING_FUNCTIONS
        + f"""
def main(input_paths, output_paths, environ_vars, job_args):
    subprocess.Popen([sys.executable, "-c", SLEEPER, {token!r}, {str(sleeper_pid_file)!r}])
    wait_for({str(sleeper_pid_file)!r})
    time.sleep(0.2)  # seen by the supervisor's sampling
    os._exit(0)
""",
    )
    result = StepRunner(tmp_path / "ws", launcher=FreshInterpreterLauncher()).run(step, {})
    assert not result.passed and "before main() returned" in result.failure.message
    sleeper = int(sleeper_pid_file.read_text())
    assert _survivors(token, [], within=DEATH_LIMIT_S) == []
    [note] = [note for note in result.notes if "left" in note]
    assert f"(pid {sleeper}: " in note and token in note


# --- pytest stopped mid-step: SIGTERM, SIGKILL --------------------------------------------------

# The step starts a grandchild in its process group, one in a session of its own and a daemon,
# writes their pids and its own, then sleeps until it is stopped.
MID_STEP_SCRIPT = (
    DAEMONIZING_FUNCTIONS
    + """
def main(input_paths, output_paths, environ_vars, job_args):
    record, token = environ_vars["RECORD"], environ_vars["TOKEN"]
    in_group = subprocess.Popen([sys.executable, "-c", SLEEPER, token, record + ".group"])
    own_session = subprocess.Popen(
        [sys.executable, "-c", SLEEPER, token, record + ".session"], start_new_session=True
    )
    wait_for(record + ".group"), wait_for(record + ".session")
    start_daemon(record + ".daemon", token)
    with open(record + ".tmp", "w") as handle:
        json.dump({"step": os.getpid(), "parent": os.getppid()}, handle)
    os.replace(record + ".tmp", record)
    time.sleep(600)
"""
)


def _start_mid_step(project: PipelineProject, token: str, executor: list[str], *extra: str) -> subprocess.Popen[bytes]:
    project.contract("Sleeper", entry_point="sleeper.py")
    project.script("sleeper.py", "import json\n" + MID_STEP_SCRIPT)
    project.scenario(
        "sleepy",
        f"""
        steps:
          nap:
            contract: Sleeper
            timeout: 600
            env:
              RECORD: "{project.root / "record.json"}"
              TOKEN: {token}
        """,
    )
    # a step that passes first: the reports written after the stop hold it
    project.contract("Quick", entry_point="quick.py")
    project.script("quick.py", "def main(input_paths, output_paths, environ_vars, job_args):\n    pass\n")
    project.scenario("a_quick", "steps:\n  quick: {contract: Quick}\n")
    return project.start(*executor, *extra, log=project.root / "pytest.log")


def _wait_for_step(project: PipelineProject, pytest_process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The step's process, its parent (pytest or the warm parent) and every process below pytest,
    once the step has started all its processes."""
    record = project.root / "record.json"
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while not record.exists():
        if pytest_process.poll() is not None:
            pytest.fail(f"pytest ended with {pytest_process.returncode} first:\n{_log(project)}")
        if time.monotonic() > deadline:
            pytest.fail(f"the step did not start within {STARTUP_LIMIT_S}s:\n{_log(project)}")
        time.sleep(0.05)
    pids = json.loads(record.read_text())
    below_pytest = psutil.Process(pytest_process.pid).children(recursive=True)
    return [psutil.Process(pids["step"]), psutil.Process(pids["parent"]), *below_pytest]


def _log(project: PipelineProject) -> str:
    return (project.root / "pytest.log").read_text(errors="replace")


def _stop(pytest_process: subprocess.Popen[bytes]) -> None:
    if pytest_process.poll() is None:
        os.killpg(pytest_process.pid, signal.SIGKILL)
        pytest_process.wait(EXIT_LIMIT_S)


EXECUTORS = pytest.mark.parametrize("executor", [[], ["--cursus-no-preload"]], ids=["forked", "fresh"])


@EXECUTORS
def test_sigterm_mid_step_ends_the_run_like_ctrl_c_and_leaves_no_process(
    project: PipelineProject, token: str, executor: list[str]
) -> None:
    report = project.root / "run.json"
    pytest_process = _start_mid_step(project, token, executor, "--cursus-json", str(report))
    watched: list[psutil.Process] = []
    try:
        watched = _wait_for_step(project, pytest_process)
        pytest_process.send_signal(signal.SIGTERM)  # to pytest alone, as a CI runner cancels a job
        try:
            exit_code = pytest_process.wait(EXIT_LIMIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pytest still running {EXIT_LIMIT_S}s after SIGTERM:\n{_log(project)}")
        log = _log(project)
        assert exit_code == pytest.ExitCode.INTERRUPTED, log
        assert "! pytest_cursus.plugin.termination.Terminated: SIGTERM received: the run stops as on Ctrl-C !" in log
        # the session finish and the terminal summary ran: reports hold the step that passed
        assert "cursus: pipeline steps" in log and f"cursus JSON report: {report}" in log, log
        assert [(step["step"], step["outcome"]) for step in json.loads(report.read_text())["steps"]] == [
            ("quick", "passed")
        ]
        assert _survivors(token, watched, within=DEATH_LIMIT_S) == []
    finally:
        _stop(pytest_process)
        for process in watched:
            if _alive(process):
                process.kill()


@EXECUTORS
def test_sigkill_of_pytest_mid_step_leaves_no_process_within_seconds(
    project: PipelineProject, token: str, executor: list[str]
) -> None:
    pytest_process = _start_mid_step(project, token, executor)
    watched: list[psutil.Process] = []
    try:
        watched = _wait_for_step(project, pytest_process)
        if not executor:
            assert any("pytest_cursus.execution.warm_parent" in " ".join(p.cmdline()) for p in watched)
        pytest_process.kill()  # kill -9: no code of pytest's runs
        pytest_process.wait(EXIT_LIMIT_S)
        survivors = _survivors(token, watched, within=DEATH_LIMIT_S)
        assert survivors == [], "the step, its grandchildren, its daemon and the warm parent are all gone"
    finally:
        _stop(pytest_process)
        for process in watched:
            if _alive(process):
                process.kill()


def test_sigterm_is_taken_for_the_run_and_given_back_after_it(project: PipelineProject) -> None:
    project.contract("Quick", entry_point="quick.py")
    project.script("quick.py", "def main(input_paths, output_paths, environ_vars, job_args):\n    pass\n")
    project.scenario("quick", "steps:\n  only: {contract: Quick}\n")
    project.pytester.makeconftest(
        """
        import signal

        def pytest_runtest_setup(item):
            with open("sigterm_during_run.txt", "w") as record:
                record.write(getattr(signal.getsignal(signal.SIGTERM), "__qualname__", "default"))
        """
    )
    outer = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # this test session may hold it itself
    try:
        project.run().assert_outcomes(passed=1)  # in this process: taken, then given back
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, outer)
    assert (project.root / "sigterm_during_run.txt").read_text() == "_interrupt"


def test_a_sigterm_handler_installed_by_someone_else_is_left_alone(project: PipelineProject) -> None:
    project.contract("Quick", entry_point="quick.py")
    project.script("quick.py", "def main(input_paths, output_paths, environ_vars, job_args):\n    pass\n")
    project.scenario("quick", "steps:\n  only: {contract: Quick}\n")
    project.pytester.makeconftest(
        """
        import signal

        def ci_handler(signum, frame):
            pass

        def pytest_configure(config):
            signal.signal(signal.SIGTERM, ci_handler)

        def pytest_runtest_setup(item):
            with open("sigterm_during_run.txt", "w") as record:
                record.write(signal.getsignal(signal.SIGTERM).__qualname__)
        """
    )
    outer = signal.getsignal(signal.SIGTERM)
    try:
        project.run().assert_outcomes(passed=1)
    finally:
        signal.signal(signal.SIGTERM, outer)
    assert (project.root / "sigterm_during_run.txt").read_text() == "ci_handler"
