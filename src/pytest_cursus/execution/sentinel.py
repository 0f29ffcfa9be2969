"""The sentinel: a small process that outlives pytest by a moment to end the fresh steps' processes.

A step started in a fresh interpreter is pytest's own child; its process dies with pytest
(parent-death signal), but what it started is then re-parented to init, out of anyone's reach,
when pytest is killed with SIGKILL (a CI cancel, the OOM killer). So every fresh step's
environment carries this pytest process's mark (``CURSUS_RUN_MARK``), which its descendants
inherit, and one sentinel per pytest process,

    python -m pytest_cursus.execution.sentinel FD MARK

waits on a pipe whose other end only pytest holds. When pytest ends, however it ends, the pipe
reads end-of-file and the sentinel kills every process whose environment carries the mark
(``/proc/<pid>/environ``: the environment the process was started with), round after round until
none is left, then exits.

What it cannot see: a process started with an environment of its own that leaves out the mark
(``env={...}``, ``env -i``) and that left the step's process group. Steps forked by the warm
parent do not need the sentinel: the warm parent is their subreaper and ends them itself
(``warm_parent.py``). Elsewhere than Linux (no /proc) the sentinel finds nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

MARK_VARIABLE = "CURSUS_RUN_MARK"
_SWEEP_ROUNDS = 50
_SWEEP_PAUSE_S = 0.02


class _Started:
    """The sentinel of this process: its pid, the write end of its pipe, the mark it looks for."""

    def __init__(self, owner: int, process: subprocess.Popen[bytes], pipe: int, mark: str) -> None:
        self.owner = owner  # a forked copy of pytest must start its own
        self.process = process
        self.pipe = pipe
        self.mark = mark


_started: _Started | None = None
_lock = threading.Lock()


def run_mark() -> dict[str, str]:
    """The environment variable that puts a step's processes in the sentinel's care, starting the
    sentinel on first use; empty when it cannot be started (the step runs, without that care)."""
    global _started
    with _lock:
        if _started is None or _started.owner != os.getpid() or _started.process.poll() is not None:
            _started = _start()
        return {MARK_VARIABLE: _started.mark} if _started is not None else {}


def _start() -> _Started | None:
    mark = f"{os.getpid()}-{uuid.uuid4().hex}"
    read_end, write_end = os.pipe()  # not inheritable: only the sentinel gets a copy, by pass_fds
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest_cursus.execution.sentinel", str(read_end), mark],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(read_end,),
            start_new_session=True,  # neither Ctrl-C nor a kill of pytest's group reaches it
        )
    except OSError:
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    return _Started(os.getpid(), process, write_end, mark)


def _carries(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return marker in b"\0" + handle.read()
    except OSError:  # gone, a zombie, or not ours to read
        return False


def sweep(mark: str) -> int:
    """SIGKILL every process whose environment carries ``mark``; how many were killed."""
    marker = f"\0{MARK_VARIABLE}={mark}\0".encode()
    killed: set[int] = set()
    for _ in range(_SWEEP_ROUNDS):
        try:
            pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        except OSError:
            return 0  # no /proc: nothing can be found
        found = [pid for pid in pids if pid != os.getpid() and _carries(pid, marker)]
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except OSError:
                continue
        time.sleep(_SWEEP_PAUSE_S)  # a killed process's environ stays readable until it is gone
    return len(killed)


def main(argv: list[str]) -> int:
    pipe, mark = int(argv[0]), argv[1]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is pytest's to handle
    while True:
        try:
            if not os.read(pipe, 4096):
                break  # end-of-file: pytest has ended
        except InterruptedError:
            continue
        except OSError:
            break
    sweep(mark)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
