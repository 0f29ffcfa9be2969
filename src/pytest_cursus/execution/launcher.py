"""How a step's child process is started: one small interface, so the warm preloaded executor
(``warm_executor.py``) and the fresh-interpreter one are interchangeable for the supervisor and
the runner.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, final

from pytest_cursus.execution.child import PARENT_PID_VARIABLE
from pytest_cursus.execution.sentinel import run_mark

if TYPE_CHECKING:
    from pytest_cursus.results import ExecutorKind


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to start one step: the request file, its environment and log files.

    ``preload`` names the third-party modules the script imports at its top level (see
    ``preload.py``); a warm executor imports them once in its parent, a fresh one ignores them.
    """

    request_file: Path
    env: dict[str, str]
    cwd: Path
    stdout: Path
    stderr: Path
    preload: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExitRecord:
    """What the process's parent learnt when it reaped it."""

    status: int  # a wait status, for os.waitstatus_to_exitcode
    cpu_seconds: float  # user + system, its reaped descendants included
    disk_read_blocks: int
    disk_write_blocks: int


class LaunchedProcess(Protocol):
    """A started step process, observed without being reaped until ``reap`` is called.

    The process leads its own process group (so the whole tree can be killed with one signal)
    and stays a zombie after it exits until reaped, so its pid and group cannot be recycled
    while the supervisor still kills by them.
    """

    pid: int
    executor: ExecutorKind  # for the step's metrics
    started: float  # time.monotonic() when the process began: the origin of its wall time
    # set when the process's parent (a warm executor) died under it: the step did not fail
    # because of anything the script did
    parent_lost: bool

    def exited(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds (waking at once on exit); tell whether it exited."""

    def reap(self) -> ExitRecord | None:
        """Block until it is gone; None when its exit status could not be learnt."""

    def close(self) -> None: ...


class StepLauncher(Protocol):
    """Starts a step's child process."""

    def launch(self, spec: LaunchSpec) -> LaunchedProcess: ...


@final
class DirectChild:
    """A process this one started itself: ``waitid``/``wait4`` observe and reap it."""

    __slots__ = ("parent_lost", "pid", "pidfd", "started")
    executor: ExecutorKind = "fresh"

    def __init__(self, pid: int, started: float) -> None:
        self.pid = pid
        self.started = started
        self.parent_lost = False
        self.pidfd = _open_pidfd(pid)

    def exited(self, timeout: float) -> bool:
        if self.pidfd is not None:
            select.select([self.pidfd], [], [], timeout)
        else:
            time.sleep(timeout)
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def reap(self) -> ExitRecord | None:
        while True:
            try:
                _, status, usage = os.wait4(self.pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:  # already reaped: nothing more to learn
                return None
            return ExitRecord(status, usage.ru_utime + usage.ru_stime, usage.ru_inblock, usage.ru_oublock)

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # older kernel or not Linux: plain polling
        return None


@final
class FreshInterpreterLauncher:
    """Each step in a new ``python -m pytest_cursus.execution.child`` process.

    The step dies with pytest (its parent-death signal); what it started is ended by the sentinel
    when pytest is gone (``sentinel.py``: its environment carries the run's mark).
    """

    __slots__ = ("python",)

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def launch(self, spec: LaunchSpec) -> DirectChild:
        env = {**spec.env, **run_mark(), PARENT_PID_VARIABLE: str(os.getpid())}
        started = time.monotonic()
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
        return DirectChild(process.pid, started)
