"""The warm parent of the preloaded executor: ``python -m pytest_cursus.execution.warm_parent FD``.

It imports third-party modules once and forks one child per step from that warm state (in the
spirit of multiprocessing's forkserver with preload). It talks to the pytest process over the
socket ``FD``, one JSON object per line each way:

    {"op": "launch", "request_file", "env", "cwd", "stdout", "stderr", "preload": [...]}
        -> {"pid": N, "preload_seconds": s}  or  {"error": "import"|"threads", "module", "detail"}
    {"op": "reap", "pid": N}
        -> {"status": wait status, "cpu": s, "inblock": n, "oublock": n}  or  {"error": "unknown pid"}

A forked child is reaped only when asked (the supervisor kills its process group first, so the
group cannot be recycled meanwhile).

No step's process outlives the parent: it is a child subreaper, so a process a step double-forks
and leaves behind becomes its child rather than init's, and it kills every descendant it has when
the socket closes (pytest ended, or was killed) and when pytest dies (its parent-death signal,
SIGTERM, handled so). A process a step left running is killed when that step is reaped.

Nothing of a step reaches the parent or the next step: each child is a copy made by fork(), and
the parent itself never runs a script, only imports. Only the standard library and ``child``
(stdlib-only as well) are imported here, besides what is preloaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import Any

from pytest_cursus.execution import child
from pytest_cursus.execution.process_lifetime import become_subreaper, children_of, end_descendants

# the handlers a fresh interpreter starts with, restored in each child in case a preloaded
# module installed its own
_INITIAL_HANDLERS = {
    number: signal.getsignal(number)
    for number in signal.valid_signals()
    if number not in (signal.SIGKILL, signal.SIGSTOP) and signal.getsignal(number) is not None
}
_CHILD_FAILED_TO_START = 70
_ORPHAN_ROUNDS = 100  # a chain of processes, each killed in turn, is at most this deep


class WarmParent:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: set[int] = set()
        # processes a preloaded module started when imported: the parent's own, never a step's
        self.own_helpers: set[int] = set()

    def serve(self) -> None:
        stream = self.control.makefile("rb")
        try:
            for line in stream:
                reply = self.handle(json.loads(line))
                self.control.sendall(json.dumps(reply).encode() + b"\n")
        except (OSError, ValueError):
            pass  # the other end is gone: clean up below
        finally:
            self.kill_children()

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        if message["op"] == "launch":
            return self.launch(message)
        if message["op"] == "reap":
            return self.reap(int(message["pid"]))
        return {"error": "protocol", "detail": f"unknown op {message['op']!r}"}

    def launch(self, message: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        for name in message.get("preload", []):
            failure = preload(name)
            if failure is not None:
                return failure
        seconds = time.perf_counter() - started
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # nothing buffered here may be written again by the child
        self.own_helpers = set(children_of(os.getpid()) or ()) - self.children
        pid = os.fork()
        if pid == 0:
            code = _CHILD_FAILED_TO_START
            try:
                # the fd itself, not just the socket object (the reader made by serve() keeps
                # that alive): a step's processes must not hold the control channel open
                os.close(self.control.detach())
                become_step(message)
                code = child.serve(message["request_file"])
            except BaseException:  # noqa: BLE001 - the child must never return into this loop
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        self.children.add(pid)
        return {"pid": pid, "preload_seconds": seconds}

    def reap(self, pid: int) -> dict[str, Any]:
        if pid not in self.children:
            return {"error": "unknown pid", "detail": str(pid)}
        while True:
            try:
                _, status, usage = os.wait4(pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                self.children.discard(pid)
                return {"error": "unknown pid", "detail": str(pid)}
        self.children.discard(pid)
        if not self.children:
            self.end_orphans()
        return {
            "status": status,
            "cpu": usage.ru_utime + usage.ru_stime,
            "inblock": usage.ru_inblock,
            "oublock": usage.ru_oublock,
        }

    def end_orphans(self) -> None:
        """Kill what the steps left behind that became this process's children (a daemon a step
        double-forked, the children of a killed step's process), and reap them."""
        for _ in range(_ORPHAN_ROUNDS):
            orphans = set(children_of(os.getpid()) or ()) - self.children - self.own_helpers
            if not orphans:
                return
            for pid in orphans:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                try:  # its own children become ours when it is gone: the next round has them
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass

    def kill_children(self) -> None:
        end_descendants()  # the steps, and all they started, wherever it went below us
        self.children.clear()


def preload(name: str) -> dict[str, Any] | None:
    """Import ``name`` here; an error reply when it fails or leaves threads behind."""
    optional = name.endswith("?")  # `from pkg import x`: x may be an attribute, not a module
    name = name.rstrip("?")
    if name in sys.modules:
        return None
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # noqa: BLE001 - find_spec("pkg.sub") imports pkg: the step will show why it fails
        spec = None
    if spec is None:
        return None  # not installed, or not a module: the script deals with that itself
    try:
        importlib.import_module(name)
    except BaseException as exc:  # noqa: BLE001 - a failed preload is reported, never fatal here
        if optional and isinstance(exc, ImportError):
            return None
        return {"error": "import", "module": name, "detail": f"{type(exc).__name__}: {exc}"}
    if threading.active_count() > 1:
        # Python threads do not exist in a forked child, and their locks may be held forever
        return {
            "error": "threads",
            "module": name,
            "detail": ", ".join(t.name for t in threading.enumerate() if t is not threading.current_thread()),
        }
    return None


def become_step(message: dict[str, Any]) -> None:
    """Turn the freshly forked copy of this process into the step's own process."""
    os.setsid()  # its own group: the supervisor kills the tree with one signal
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, message["stdout"]), (2, message["stderr"])):
        opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    os.chdir(message["cwd"])
    os.environ.clear()
    os.environ.update(message["env"])
    os.environ[child.PARENT_PID_VARIABLE] = str(os.getppid())
    for number, handler in _INITIAL_HANDLERS.items():
        try:
            if signal.getsignal(number) is not handler:
                signal.signal(number, handler)
        except (OSError, ValueError):
            continue
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        # a fresh interpreter seeds numpy's global generator from the OS; a fork would give
        # every step the parent's state (the stdlib's `random` reseeds itself after fork)
        numpy.random.seed()


def end_everything(signum: int, frame: FrameType | None) -> None:
    """pytest is gone (the parent-death signal) or this process was told to stop: no step, nor
    anything a step started, may outlive it."""
    end_descendants()
    os._exit(128 + signum)


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[0]))
    signal.signal(signal.SIGTERM, end_everything)  # before the signal can come
    become_subreaper()  # orphans of the steps' trees become ours, never init's
    child.die_with_parent(signal.SIGTERM)  # if pytest is killed, SIGTERM: end the steps' trees, then exit
    WarmParent(control).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
