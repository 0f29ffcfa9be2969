"""How a step's child process is started: one small interface, so a warm preloaded executor
can replace the fresh-interpreter one without touching the supervisor or the runner.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, final


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
        with open(spec.stdout, "wb") as stdout, open(spec.stderr, "wb") as stderr:
            process = subprocess.Popen(
                [self.python, "-m", "pytest_cursus.execution.child", str(spec.request_file)],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=spec.cwd,
                env=spec.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        # The supervisor reaps the pid itself with os.wait4, to get its rusage. Popen must not
        # poll it later from __del__ (a race with wait4): marking it finished makes that a no-op.
        process.returncode = 0
        return process.pid


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: if pytest itself is killed (SIGKILL, OOM), so is the step.

    The signal follows the *thread* that forked, so a step is launched and supervised on one
    thread that lives until the step ends.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the supervisor's cleanup still applies
        pass
    if os.getppid() == 1:  # parent already gone between fork and prctl
        os._exit(1)
