"""The status line of a transfer that lasts over :data:`PROGRESS_AFTER_S`."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol

PROGRESS_AFTER_S = 1.0
PROGRESS_EVERY_S = 0.5  # how often the waiting thread wakes to update it (5 times that off a terminal)


class ProgressStream(Protocol):
    """Where progress lines go: a text stream (sys.stderr), or pytest's terminal past capture."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...

    def isatty(self) -> bool: ...


class Progress:
    """One status line for a transfer that lasts over :data:`PROGRESS_AFTER_S`; counted from any
    thread, written only from the thread that waits for the transfer (:meth:`tick`)."""

    def __init__(
        self,
        label: str,
        files: int,
        total_bytes: int,
        stream: ProgressStream | None,
        check_time: Callable[[], None] | None = None,
    ) -> None:
        self.label = label
        self.check_time = check_time  # raises to stop the transfer (the step's staging is out of time)
        self.files = files
        self.total_bytes = total_bytes
        self.stream = stream
        self.started = time.monotonic()
        self.done = 0
        self.cached = 0
        self.bytes = 0
        self.shown = False
        self._last = 0.0
        self._lock = threading.Lock()

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self.bytes += count

    def file_done(self, size: int, cached: bool = False) -> None:
        with self._lock:
            self.done += 1
            self.bytes += size
            self.cached += cached

    def tick(self) -> None:
        if self.check_time is not None:
            self.check_time()
        now = time.monotonic()
        if now - self.started < PROGRESS_AFTER_S:
            return
        stream = self.stream or sys.stderr
        tty = _isatty(stream)
        if not tty and now - self._last < 5 * PROGRESS_EVERY_S:
            return
        self._last = now
        self.shown = True
        stream.write(("\r" if tty else "") + self._line(now) + ("" if tty else "\n"))
        stream.flush()

    def finish(self, note: str) -> None:
        if not self.shown:
            return
        stream = self.stream or sys.stderr
        tty = _isatty(stream)
        stream.write(("\r" if tty else "") + self._line(time.monotonic()) + (f"; {note}" if note else "") + "\n")
        stream.flush()

    def _line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        cached = f", {self.cached} from cache" if self.cached else ""
        mib = f"{self.bytes / 2**20:.1f}/{self.total_bytes / 2**20:.1f} MiB, {self.bytes / 2**20 / elapsed:.1f} MiB/s"
        return f"cursus s3: {self.label}: {self.done}/{self.files} files{cached}, {mib}, {elapsed:.0f}s"


def _isatty(stream: ProgressStream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
