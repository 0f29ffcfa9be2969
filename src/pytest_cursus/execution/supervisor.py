"""Watching a step's process tree: timeout, memory limit, resource use, and no survivors."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Literal

import psutil

from pytest_cursus.execution.launcher import LaunchedProcess
from pytest_cursus.execution.process_lifetime import LeftoverProcess, command_line, descendant_pids

KillReason = Literal["timeout", "memory", "interrupt"]
FIRST_SAMPLE_S = 0.005
SAMPLE_INTERVAL_S = 0.05
MEMORY_SERIES_POINTS = 200  # a long step's series is downsampled to at most this many points
_BLOCK_BYTES = 512  # unit of rusage ru_inblock / ru_oublock on Linux


@dataclass
class ProcessOutcome:
    """How a step's process ended and what it used."""

    exit_status: int | None  # as os.waitstatus_to_exitcode: negative for a signal
    killed_for: KillReason | None
    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    memory_series: list[tuple[float, int]] = field(default_factory=list)
    read_bytes: int = 0  # through read() calls, page cache or not
    write_bytes: int = 0
    disk_read_bytes: int = 0  # that reached the storage layer
    disk_write_bytes: int = 0
    parent_lost: bool = False  # the warm executor's parent died under the step
    # processes still running after the step's own process had ended by itself (os._exit, a
    # crash): killed with the tree. Those left when main() returned the child kills and reports.
    leftover_processes: list[LeftoverProcess] = field(default_factory=list)

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
    ``SAMPLE_INTERVAL_S`` (the first samples come sooner, so short steps are seen too). CPU time
    and I/O are kept per pid, so a child that exited between samples still counts with what it
    had used when last seen; the final ``wait4`` rusage (which includes every descendant the step
    reaped) is a floor for CPU time and storage I/O, so a step too short to be sampled is still
    measured.
    """

    def __init__(self, sample_interval: float = SAMPLE_INTERVAL_S) -> None:
        self.sample_interval = sample_interval

    def supervise(
        self, child: LaunchedProcess, *, timeout: float | None, max_memory_bytes: int | None
    ) -> ProcessOutcome:
        started = child.started
        tree = _ProcessTree(child.pid)
        killed_for: KillReason | None = None
        leftovers: list[LeftoverProcess] = []
        interval = FIRST_SAMPLE_S
        try:
            # at once: a step forked from the warm parent can be done within the first interval
            tree.sample(time.monotonic() - started)
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
            tree.final_sweep()
            if killed_for is None:
                leftovers = tree.leftovers()
            # Kill before reaping: while the step's pid is an unreaped zombie its process group
            # id cannot be recycled, so the group kill can only hit the step's own processes.
            tree.kill()
        except BaseException:
            # Ctrl-C or any error of ours: the step's processes must not outlive us.
            tree.kill()
            child.reap()
            child.close()
            raise
        record = child.reap()
        child.close()
        exit_status = os.waitstatus_to_exitcode(record.status) if record is not None else None
        rusage_cpu = record.cpu_seconds if record is not None else 0.0
        rusage_in = record.disk_read_blocks * _BLOCK_BYTES if record is not None else 0
        rusage_out = record.disk_write_blocks * _BLOCK_BYTES if record is not None else 0
        io = tree.io_totals()
        return ProcessOutcome(
            exit_status=exit_status,
            killed_for=killed_for,
            parent_lost=child.parent_lost,
            leftover_processes=leftovers,
            wall_seconds=wall,
            cpu_seconds=max(rusage_cpu, tree.cpu_seconds()),
            # not ru_maxrss: Linux carries the forking parent's high-water RSS over exec into the
            # child's maxrss, so it would report pytest's own size for every small step
            peak_rss_bytes=tree.peak_rss,
            memory_series=tree.series.points(),
            read_bytes=io.read_chars,
            write_bytes=io.write_chars,
            disk_read_bytes=max(io.read_bytes, rusage_in),
            disk_write_bytes=max(io.write_bytes, rusage_out),
        )


class _ProcessTree:
    """The step's process and every descendant seen so far."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pgid = pid  # the launcher starts each step as its own session and group leader
        self.known: dict[int, psutil.Process] = {}
        self.cpu_by_pid: dict[int, float] = {}
        self.io_by_pid: dict[int, IoCounters] = {}
        self.peak_rss = 0
        self.series = MemorySeries(MEMORY_SERIES_POINTS, FIRST_SAMPLE_S)
        try:
            self.root: psutil.Process | None = psutil.Process(pid)
            self.known[pid] = self.root
        except psutil.Error:
            self.root = None

    def members(self) -> list[psutil.Process]:
        if self.root is not None:
            for pid in _descendants(self.root):
                if pid not in self.known:
                    try:
                        self.known[pid] = psutil.Process(pid)
                    except psutil.Error:
                        continue
        return [process for process in self.known.values() if _alive(process)]

    def sample(self, elapsed: float) -> int:
        rss = 0
        for process in self.members():
            try:
                with process.oneshot():
                    rss += process.memory_info().rss
                    times = process.cpu_times()
                    self.cpu_by_pid[process.pid] = times.user + times.system
                    self.io_by_pid[process.pid] = _io_counters(process)
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)
        self.series.add(elapsed, rss)
        return rss

    def final_sweep(self) -> None:
        """CPU and I/O counters once more, zombies included: the step (unreaped, so readable)
        often writes its outputs after the last sample."""
        for process in list(self.known.values()):
            try:
                if not process.is_running():  # compares creation time: never a recycled pid
                    continue
                with process.oneshot():
                    times = process.cpu_times()
                    self.cpu_by_pid[process.pid] = times.user + times.system
                    self.io_by_pid[process.pid] = _io_counters(process)
            except psutil.Error:
                continue

    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_pid.values())

    def io_totals(self) -> IoCounters:
        return IoCounters(
            read_chars=sum(c.read_chars for c in self.io_by_pid.values()),
            write_chars=sum(c.write_chars for c in self.io_by_pid.values()),
            read_bytes=sum(c.read_bytes for c in self.io_by_pid.values()),
            write_bytes=sum(c.write_bytes for c in self.io_by_pid.values()),
        )

    def leftovers(self) -> list[LeftoverProcess]:
        """The descendants still running once the step's own process has exited."""
        return [
            LeftoverProcess(pid=process.pid, command=command_line(process.pid))
            for process in self.members()
            if process.pid != self.pid
        ]

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


def _descendants(root: psutil.Process) -> list[int]:
    """Pids below ``root``: from /proc when the kernel lists children there, else from psutil
    (which reads the stat file of every process on the machine)."""
    found = descendant_pids(root.pid)
    if found is not None:
        return found
    try:
        return [child.pid for child in root.children(recursive=True)]
    except psutil.Error:
        return []


@dataclass(frozen=True)
class IoCounters:
    read_chars: int = 0  # through read() calls
    write_chars: int = 0
    read_bytes: int = 0  # reaching the storage layer
    write_bytes: int = 0


def _io_counters(process: psutil.Process) -> IoCounters:
    try:
        counters = process.io_counters()
    except (psutil.Error, AttributeError, NotImplementedError):  # no /proc/<pid>/io (not Linux)
        return IoCounters()
    return IoCounters(
        read_chars=getattr(counters, "read_chars", counters.read_bytes),
        write_chars=getattr(counters, "write_chars", counters.write_bytes),
        read_bytes=counters.read_bytes,
        write_bytes=counters.write_bytes,
    )


class MemorySeries:
    """RSS over time in at most ``limit`` points of equal width, each the peak of its bucket.

    Buckets start at the sampling resolution and double in width whenever there would be more
    than ``limit`` of them, so a long step costs bounded memory and its peaks stay visible.
    """

    __slots__ = ("buckets", "limit", "width")

    def __init__(self, limit: int, width: float = SAMPLE_INTERVAL_S) -> None:
        self.limit = limit
        self.width = width
        self.buckets: dict[int, tuple[float, int]] = {}

    def add(self, elapsed: float, rss: int) -> None:
        index = int(elapsed / self.width)
        known = self.buckets.get(index)
        if known is None or rss > known[1]:
            self.buckets[index] = (round(elapsed, 3), rss)
        while len(self.buckets) > self.limit:
            self.width *= 2
            merged: dict[int, tuple[float, int]] = {}
            for old, point in self.buckets.items():
                known = merged.get(old // 2)
                if known is None or point[1] > known[1]:
                    merged[old // 2] = point
            self.buckets = merged

    def points(self) -> list[tuple[float, int]]:
        return [self.buckets[index] for index in sorted(self.buckets)]


def _alive(process: psutil.Process) -> bool:
    try:
        # is_running compares the creation time too, so a recycled pid is never hit
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
