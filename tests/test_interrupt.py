"""Ctrl-C during a step: pytest stops promptly and leaves none of the step's processes behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from pipeline_project import PipelineProject

STARTUP_LIMIT_S = 60  # a fresh pytest, then the step's interpreter, then the grandchild's
EXIT_LIMIT_S = 90  # a hang guard, not a speed target: on a loaded 2-core machine exiting took 13 s
DEATH_LIMIT_S = 2  # SIGKILL is asynchronous: let the kernel finish what pytest started

SLEEPER_SCRIPT = """
import os, subprocess, sys, time

GRANDCHILD = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"

def main(input_paths, output_paths, environ_vars, job_args):
    open(environ_vars["CHILD_PID_FILE"], "w").write(str(os.getpid()))
    subprocess.Popen(
        [sys.executable, "-c", GRANDCHILD, environ_vars["GRANDCHILD_PID_FILE"]],
        start_new_session=environ_vars["GRANDCHILD_SESSION"] == "own",
    )
    time.sleep(600)
"""


def _wait_for_pid(path: Path, deadline: float, pytest_process: subprocess.Popen[bytes]) -> psutil.Process:
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return psutil.Process(int(path.read_text()))
        if pytest_process.poll() is not None:
            pytest.fail(f"pytest exited with {pytest_process.returncode} before {path.name} was written")
        time.sleep(0.05)
    pytest.fail(f"{path.name} not written within {STARTUP_LIMIT_S}s")


def _alive(process: psutil.Process) -> bool:
    try:
        # is_running also compares the creation time, so a recycled pid does not count
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("executor", [[], ["--cursus-no-preload"]], ids=["forked", "fresh"])
@pytest.mark.parametrize("grandchild_session", ["shared", "own"], ids=["grandchild-in-group", "grandchild-setsid"])
def test_ctrl_c_leaves_no_step_process_behind(
    project: PipelineProject, grandchild_session: str, executor: list[str]
) -> None:
    child_pid_file = project.root / "child.pid"
    grandchild_pid_file = project.root / "grandchild.pid"
    project.contract("Sleeper", entry_point="sleeper.py")
    project.script("sleeper.py", SLEEPER_SCRIPT)
    project.scenario(
        "sleepy",
        f"""
        steps:
          nap:
            contract: Sleeper
            timeout: 600
            env:
              CHILD_PID_FILE: "{child_pid_file}"
              GRANDCHILD_PID_FILE: "{grandchild_pid_file}"
              GRANDCHILD_SESSION: {grandchild_session}
        """,
    )
    log = project.root / "pytest.log"
    started: list[psutil.Process] = []
    pytest_process = project.start(*executor, log=log)
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_S
        started.append(_wait_for_pid(child_pid_file, deadline, pytest_process))
        started.append(_wait_for_pid(grandchild_pid_file, deadline, pytest_process))

        # a terminal's Ctrl-C: SIGINT to pytest's process group
        os.killpg(pytest_process.pid, signal.SIGINT)
        try:
            exit_code = pytest_process.wait(timeout=EXIT_LIMIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pytest still running {EXIT_LIMIT_S}s after SIGINT:\n{log.read_text()}")
        assert exit_code == pytest.ExitCode.INTERRUPTED, log.read_text()

        until = time.monotonic() + DEATH_LIMIT_S
        while any(_alive(process) for process in started) and time.monotonic() < until:
            time.sleep(0.05)
        survivors = [f"{process.pid} ({' '.join(process.cmdline())})" for process in started if _alive(process)]
        assert not survivors, f"step processes outlived pytest: {survivors}"
    finally:
        # only what this test started: pytest's group, then the step processes it recorded
        if pytest_process.poll() is None:
            os.killpg(pytest_process.pid, signal.SIGKILL)
            pytest_process.wait(timeout=EXIT_LIMIT_S)
        for process in started:
            if _alive(process):
                process.kill()
