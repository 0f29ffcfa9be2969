"""How long a step's processes live: Linux's child subreaper and parent-death signal, and ending
every descendant a process leaves behind.

A process that double-forks (``fork``, ``setsid``, ``fork`` again, the middle one exits) leaves its
parent's tree: the kernel hands the orphan to the nearest ancestor marked as a *child subreaper*,
or to init. A step's process and the warm parent are subreapers, so whatever runs below them stays
below them until they end it. Only the standard library is imported here: a step's child process
imports this module before the script.

Elsewhere than Linux the ``prctl`` calls do nothing and say so (False); the supervisor's own kills
still apply.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TypedDict

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PROC_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
_COMMAND_LIMIT = 200  # characters of a command line kept in a report
_REAP_PAUSE_S = 0.01


class LeftoverProcess(TypedDict):
    """A process still running when its ancestor ended: what ``report.json`` records of it."""

    pid: int
    command: str


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        return int(ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # not Linux (no prctl in the C library)
        return False


def become_subreaper() -> bool:
    """Orphans among this process's descendants become its children rather than init's."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(signum: int) -> bool:
    """The kernel sends ``signum`` to this process when the *thread* that started it ends."""
    return _prctl(_PR_SET_PDEATHSIG, signum)


def children_of(pid: int) -> list[int] | None:
    """The pids of ``pid``'s children, from /proc; None when the kernel does not list them there."""
    if not _PROC_CHILDREN:
        return None
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            continue
    return found


def descendant_pids(pid: int) -> list[int] | None:
    """Pids below ``pid``, read from /proc/<pid>/task/<tid>/children (a few small reads, where
    walking every process's stat file costs milliseconds on a busy host); None when the kernel
    does not provide those files."""
    if not _PROC_CHILDREN:
        return None
    found: list[int] = []
    pending = [pid]
    while pending:
        children = children_of(pending.pop()) or []
        found.extend(children)
        pending.extend(children)
    return found


def command_line(pid: int) -> str:
    """The process's command line as a shell would show it (its name when that cannot be read)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            text = handle.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
        if not text:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
                text = f"[{handle.read().strip()}]"
    except OSError:
        return "?"
    return text if len(text) <= _COMMAND_LIMIT else text[:_COMMAND_LIMIT] + "..."


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited process waiting to be reaped runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _reap_children() -> None:
    """Collect every child that has exited; our own children only (``waitpid(-1)``)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_descendants(*, silent: frozenset[int] = frozenset(), within: float = 5.0) -> list[LeftoverProcess]:
    """SIGKILL every process below this one until none is left, and reap them; the ones that were
    running, but those in ``silent``, as the report names them.

    The caller must be a subreaper (``become_subreaper``): the descendants of a killed process
    then become its children, so a process forked meanwhile is found on the next round rather than
    lost to init. Gives up after ``within`` seconds (a process in uninterruptible sleep). Where
    /proc cannot list children (not Linux), nothing is done.
    """
    seen: dict[int, LeftoverProcess] = {}
    deadline = time.monotonic() + within
    while True:
        pids = descendant_pids(os.getpid())
        if pids is None:
            return []
        running = [pid for pid in pids if _running(pid)]
        if not running:
            break
        for pid in running:
            if pid not in seen and pid not in silent:
                seen[pid] = LeftoverProcess(pid=pid, command=command_line(pid))
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
        _reap_children()
        if time.monotonic() > deadline:
            break
        time.sleep(_REAP_PAUSE_S)
    _reap_children()
    return list(seen.values())
