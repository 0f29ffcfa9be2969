"""The warm, preloaded executor: steps forked from a parent that imported their third-party
modules once, instead of a fresh interpreter per step that imports them again.

    >>> launcher = WarmForkLauncher(base_env=child_environment({}), workdir=workspace / "_warm")
    >>> runner = StepRunner(workspace, launcher=launcher)
    >>> ...
    >>> launcher.close()

The parent (``warm_parent.py``) is started on the first launch and imports, before each fork,
the modules of that step's ``LaunchSpec.preload`` it does not hold yet (plus ``preload=`` given
here, at start). Each step is still its own process, in its own process group, supervised and
limited like a fresh one.

Falls back to a fresh interpreter per step, with a warning, when a preload import fails or
hangs; a step whose env sets variables native libraries read at load time (``OMP_*``,
``OPENBLAS_*``, ...) differently from the parent starts fresh, silently. A parent that dies is
started again on the next launch; a step that was running in it is reported as such
(``parent_lost``) and the runner runs it once more.

Caveats: a forked step's RSS includes the pages of every module the parent preloaded, also
those its script does not import (``--cursus-no-preload`` measures each step alone).
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

import psutil

from pytest_cursus.execution.child import PARENT_PID_VARIABLE
from pytest_cursus.execution.launcher import ExitRecord, FreshInterpreterLauncher, LaunchedProcess, LaunchSpec
from pytest_cursus.execution.preload import needs_fresh_interpreter

if TYPE_CHECKING:
    from pytest_cursus.results import ExecutorKind

# a preload import that takes longer than this is taken for a hang
PRELOAD_TIMEOUT_S = 300.0
# how often a parent that keeps dying is restarted before steps go back to fresh interpreters
MAX_RESTARTS = 3


class CursusExecutorWarning(UserWarning):
    """The warm executor could not be used as configured; steps ran in fresh interpreters."""


@final
class ForkedChild:
    """A step forked by the warm parent: observed through a pidfd, reaped by its parent."""

    __slots__ = ("connection", "parent_lost", "pid", "pidfd", "started")
    executor: ExecutorKind = "forked"

    def __init__(self, pid: int, connection: _ParentConnection, started: float) -> None:
        self.pid = pid
        self.started = started
        self.connection = connection
        self.parent_lost = False
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None

    def exited(self, timeout: float) -> bool:
        if self.pidfd is not None:
            readable, _, _ = select.select([self.pidfd], [], [], timeout)
            return bool(readable)
        time.sleep(timeout)
        try:  # not reaped until we ask: a zombie, never a recycled pid
            return psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    def reap(self) -> ExitRecord | None:
        reply = self.connection.request({"op": "reap", "pid": self.pid}, timeout=None)
        if reply is None or "error" in reply:
            # the parent died: the kernel killed the step with it (its parent-death signal)
            self.parent_lost = True
            return None
        return ExitRecord(int(reply["status"]), float(reply["cpu"]), int(reply["inblock"]), int(reply["oublock"]))

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


class _ParentConnection:
    """The socket to one warm parent process; one request at a time."""

    def __init__(self, process: subprocess.Popen[bytes], control: socket.socket) -> None:
        self.process = process
        self.control = control
        self.stream = control.makefile("rb")
        self.lock = threading.Lock()
        self.broken = False
        self.timed_out = False  # the last request got no answer in time (the parent may live on)

    def request(self, message: dict[str, Any], timeout: float | None) -> dict[str, Any] | None:
        """The reply, or None when the parent is gone (or did not answer within ``timeout``)."""
        with self.lock:
            if self.broken:
                return None
            try:
                self.control.settimeout(timeout)
                self.control.sendall(json.dumps(message).encode() + b"\n")
                line = self.stream.readline()
            except TimeoutError:
                self.timed_out, line = True, b""
            except OSError:
                line = b""
            if not line:
                self.broken = True
                return None
            return json.loads(line)

    def alive(self) -> bool:
        return not self.broken and self.process.poll() is None

    def close(self, grace: float = 5.0) -> None:
        """Closing the socket tells the parent to kill its children and exit."""
        self.broken = True
        for closable in (self.stream, self.control):
            try:
                closable.close()
            except OSError:
                pass
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.terminate()  # it ends its steps' trees on SIGTERM too, then exits
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@final
class WarmForkLauncher:
    """A ``StepLauncher`` forking steps from a warm parent; see the module docstring."""

    def __init__(
        self,
        *,
        base_env: dict[str, str],
        workdir: Path,
        preload: tuple[str, ...] = (),
        python: str | None = None,
        preload_timeout: float = PRELOAD_TIMEOUT_S,
    ) -> None:
        self.base_env = {name: value for name, value in base_env.items() if name != PARENT_PID_VARIABLE}
        self.workdir = workdir
        self.configured = preload
        self.python = python or sys.executable
        self.preload_timeout = preload_timeout
        self.fresh = FreshInterpreterLauncher(self.python)
        self.connection: _ParentConnection | None = None
        self.fallen_back: str | None = None  # why every step now runs fresh
        self.not_preloaded: dict[str, str] = {}  # module -> why
        self.preload_seconds = 0.0  # import time paid in the parent, in all
        self.starts = 0
        self._lock = threading.Lock()

    @property
    def parent_pid(self) -> int | None:
        return self.connection.process.pid if self.connection is not None and self.connection.alive() else None

    def launch(self, spec: LaunchSpec) -> LaunchedProcess:
        if self.fallen_back is not None or needs_fresh_interpreter(spec.env, self.base_env):
            return self.fresh.launch(spec)
        modules = [name for name in (*self.configured, *spec.preload) if name.rstrip("?") not in self.not_preloaded]
        message = {
            "op": "launch",
            "request_file": str(spec.request_file),
            "env": spec.env,
            "cwd": str(spec.cwd),
            "stdout": str(spec.stdout),
            "stderr": str(spec.stderr),
            "preload": modules,
        }
        with self._lock:
            for _ in range(2):  # a parent that dies under this launch is started again once
                connection = self._connection()
                if connection is None:
                    return self.fresh.launch(spec)
                sent = time.monotonic()
                reply = connection.request(message, timeout=self.preload_timeout)
                if reply is None and connection.timed_out:
                    self._fall_back(
                        f"the warm parent did not answer within {self.preload_timeout:g}s" + _importing(modules)
                    )
                    return self.fresh.launch(spec)
                if reply is None:
                    self._lost(connection, "it died" + _importing(modules))
                    continue
                if "pid" in reply:
                    self.preload_seconds += float(reply.get("preload_seconds", 0.0))
                    # the step's clock starts at the fork, after the imports done for it
                    return ForkedChild(int(reply["pid"]), connection, sent + float(reply.get("preload_seconds", 0.0)))
                if reply.get("error") == "threads":
                    # left to the steps; a parent holding those threads is not forked again
                    module = str(reply["module"])
                    self.not_preloaded[module] = f"it starts threads when imported ({reply['detail']})"
                    self._warn(f"{module} is not preloaded: {self.not_preloaded[module]}; steps import it themselves")
                    self._stop()
                    modules = [name for name in modules if name.rstrip("?") != module]
                    message["preload"] = modules
                    continue
                self._fall_back(f"preloading {reply.get('module')} failed: {reply.get('detail')}")
                return self.fresh.launch(spec)
            self._fall_back("the warm parent died twice while starting one step" + _importing(modules))
            return self.fresh.launch(spec)

    def start(self) -> None:
        """Start the warm parent now without waiting for it, so that its interpreter boots while
        pytest sets up the first item rather than when the first step is launched."""
        with self._lock:
            if self.fallen_back is None and self.connection is None:
                self._connection()

    def close(self) -> None:
        with self._lock:
            self._stop()

    # --- the parent process ---------------------------------------------------------------

    def _connection(self) -> _ParentConnection | None:
        if self.connection is not None and self.connection.alive():
            return self.connection
        if self.connection is not None:
            self._lost(self.connection, "it died between two steps")
        if self.starts > MAX_RESTARTS:
            self._fall_back(f"the warm parent died {self.starts} times")
            return None
        self.starts += 1
        ours, theirs = socket.socketpair()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.workdir / "warm-parent.log", "ab") as log:
                process = subprocess.Popen(
                    [self.python, "-m", "pytest_cursus.execution.warm_parent", str(theirs.fileno())],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=(theirs.fileno(),),
                    cwd=self.workdir,
                    env={**self.base_env, PARENT_PID_VARIABLE: str(os.getpid())},
                    start_new_session=True,  # Ctrl-C reaches pytest, which ends the steps in order
                )
        except OSError as exc:
            ours.close()
            self._fall_back(f"the warm parent could not be started: {exc}")
            return None
        finally:
            theirs.close()
        self.connection = _ParentConnection(process, ours)
        return self.connection

    def _lost(self, connection: _ParentConnection, why: str) -> None:
        code = connection.process.poll()
        self._warn(
            f"the warm parent process (pid {connection.process.pid}) was lost: {why}"
            + (f" (exit status {code})" if code is not None else "")
            + f"; see {self.workdir / 'warm-parent.log'}; starting it again"
        )
        self._stop()

    def _stop(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _fall_back(self, why: str) -> None:
        self._stop()
        if self.fallen_back is None:
            self.fallen_back = why
            self._warn(f"{why}; steps run in fresh interpreters from now on (as with --cursus-no-preload)")

    @staticmethod
    def _warn(message: str) -> None:
        warnings.warn(CursusExecutorWarning(message), stacklevel=3)


def _importing(modules: list[str]) -> str:
    return f" while importing {', '.join(name.rstrip('?') for name in modules)}" if modules else ""
