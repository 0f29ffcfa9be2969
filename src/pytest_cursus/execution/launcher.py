"""How a step's child process is started: one small interface, so a warm preloaded executor
can replace the fresh-interpreter one without touching the supervisor or the runner.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, final

# The child reads it to die with us (see child.die_with_parent).
PARENT_PID_VARIABLE = "CURSUS_PARENT_PID"


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to start one step: the request file, its environment and log files."""

    request_file: Path
    env: dict[str, str]
    cwd: Path
    stdout: Path
    stderr: Path


class StepLauncher(Protocol):
    """Starts a step's child process and returns its pid.

    The process must lead its own process group (so the supervisor can kill the whole tree with
    one signal) and must be a child of the calling process (so ``os.wait4`` reaps it and reports
    its resource usage).
    """

    def launch(self, spec: LaunchSpec) -> int: ...


@final
class FreshInterpreterLauncher:
    """Each step in a new ``python -m pytest_cursus.execution.child`` process."""

    __slots__ = ("python",)

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def launch(self, spec: LaunchSpec) -> int:
        env = {**spec.env, PARENT_PID_VARIABLE: str(os.getpid())}
        with open(spec.stdout, "wb") as stdout, open(spec.stderr, "wb") as stderr:
            process = subprocess.Popen(
                [self.python, "-m", "pytest_cursus.execution.child", str(spec.request_file)],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=spec.cwd,
                env=env,
                start_new_session=True,
            )
        # The supervisor reaps the pid itself with os.wait4, to get its rusage. Popen must not
        # poll it later from __del__ (a race with wait4): marking it finished makes that a no-op.
        process.returncode = 0
        return process.pid

