"""Watching a step's process tree: timeout, memory limit, resource use, and no survivors."""

from __future__ import annotations

import os
import select
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import psutil

KillReason = Literal["timeout", "memory", "interrupt"]
FIRST_SAMPLE_S = 0.005
SAMPLE_INTERVAL_S = 0.05


@dataclass
class ProcessOutcome:
    """How a step's process ended and what it used."""

    exit_status: int | None  # as os.waitstatus_to_exitcode: negative for a signal
    killed_for: KillReason | None
    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    memory_series: list[tuple[float, int]] = field(default_factory=list)

    @property
    def signal_name(self) -> str | None:
        if self.exit_status is not None and self.exit_status < 0:
            try:
                return signal.Signals(-self.exit_status).name
            except ValueError:
                return f"signal {-self.exit_status}"
        return None


class ProcessSupervisor:
    """Waits for one launched step, enforcing its limits on the whole process tree.

    Memory is the summed RSS of the step and all its descendants, sampled every
    ``SAMPLE_INTERVAL_S`` (the first samples come sooner, so short steps are seen too).
    """

    def __init__(self, sample_interval: float = SAMPLE_INTERVAL_S) -> None:
        self.sample_interval = sample_interval

    def supervise(self, pid: int, *, timeout: float | None, max_memory_bytes: int | None) -> ProcessOutcome:
        started = time.monotonic()
        tree = _ProcessTree(pid)
        killed_for: KillReason | None = None
        child = _Child(pid)
        interval = FIRST_SAMPLE_S
        try:
            while not child.exited(interval):
                elapsed = time.monotonic() - started
                rss = tree.sample(elapsed)
                if timeout is not None and elapsed > timeout:
                    killed_for = "timeout"
                    break
                if max_memory_bytes is not None and rss > max_memory_bytes:
                    killed_for = "memory"
                    break
                interval = min(interval * 2, self.sample_interval)
            wall = time.monotonic() - started
            # Kill before reaping: while the step's pid is an unreaped zombie its process group
            # id cannot be recycled, so the group kill can only hit the step's own processes.
            tree.kill()
        except BaseException:
            # Ctrl-C or any error of ours: the step's processes must not outlive us.
            tree.kill()
            child.reap()
            child.close()
            raise
        status, rusage = child.reap()
        child.close()
        exit_status = os.waitstatus_to_exitcode(status) if status is not None else None
        rusage_cpu = (rusage.ru_utime + rusage.ru_stime) if rusage is not None else 0.0
        rusage_rss = rusage.ru_maxrss * 1024 if rusage is not None else 0
        return ProcessOutcome(
            exit_status=exit_status,
            killed_for=killed_for,
            wall_seconds=wall,
            cpu_seconds=max(rusage_cpu, tree.cpu_seconds()),
            peak_rss_bytes=max(tree.peak_rss, rusage_rss),
            memory_series=tree.series,
        )


class _Child:
    """The step's process, observed without reaping until we choose to."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):  # older kernel or not Linux: plain polling
            self.pidfd = None

    def exited(self, timeout: float) -> bool:
        """Waits up to ``timeout`` (waking at once on exit) and tells whether the child exited."""
        if self.pidfd is not None:
            select.select([self.pidfd], [], [], timeout)
        else:
            time.sleep(timeout)
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def reap(self) -> tuple[int | None, Any]:
        """Blocks until the child is gone; returns its wait status and rusage."""
        while True:
            try:
                _, status, rusage = os.wait4(self.pid, 0)
                return status, rusage
            except InterruptedError:
                continue
            except ChildProcessError:  # already reaped: nothing more to learn
                return None, None

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


class _ProcessTree:
    """The step's process and every descendant seen so far."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pgid = pid  # the launcher starts each step as its own session and group leader
        self.known: dict[int, psutil.Process] = {}
        self.cpu_by_pid: dict[int, float] = {}
        self.peak_rss = 0
        self.series: list[tuple[float, int]] = []
        try:
            self.root: psutil.Process | None = psutil.Process(pid)
            self.known[pid] = self.root
        except psutil.Error:
            self.root = None

    def members(self) -> list[psutil.Process]:
        if self.root is not None:
            try:
                for child in self.root.children(recursive=True):
                    self.known.setdefault(child.pid, child)
            except psutil.Error:
                pass
        return [process for process in self.known.values() if _alive(process)]

    def sample(self, elapsed: float) -> int:
        rss = 0
        for process in self.members():
            try:
                with process.oneshot():
                    rss += process.memory_info().rss
                    times = process.cpu_times()
                    self.cpu_by_pid[process.pid] = times.user + times.system
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)
        self.series.append((round(elapsed, 3), rss))
        return rss

    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_pid.values())

    def kill(self) -> None:
        survivors = self.members()
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for process in survivors:  # descendants that left the group (setsid, daemons)
            try:
                process.kill()
            except psutil.Error:
                pass


def _alive(process: psutil.Process) -> bool:
    try:
        # is_running compares the creation time too, so a recycled pid is never hit
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
