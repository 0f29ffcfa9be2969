"""What a front-end is told while steps run: a step started, a step finished, a line it wrote.

The engine (``run/pipeline.py``, ``execution/step_runner.py``) calls a :class:`StepProgress`; the
pytest plugin writes the events as live lines in pytest's terminal (``plugin/live_lines.py``), the
notebook API prints them (``notebook/progress.py``). Nothing here knows either front-end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pytest_cursus.results import StepResult

# how often the follower of a step's logs looks for new lines
FOLLOW_EVERY_S = 0.1
_READ_BYTES = 64 * 1024


class StepProgress(Protocol):
    """Told of each step as the engine produces it, in this process, on the thread running the step
    (``output_line``: on a thread of its own while the step runs)."""

    @property
    def streams_output(self) -> bool:
        """Whether the step's stdout and stderr lines are wanted as they are written (``output_line``)."""
        ...

    def step_started(self, scenario: str, step: str, *, as_setup: bool) -> None:
        """The step's process is about to start (not called for a step taken from the step cache)."""

    def step_finished(self, result: StepResult, *, as_setup: bool) -> None:
        """The step's final result: run, failed before it could start, or taken from the cache
        (``result.cached``); ``as_setup`` when it was produced as the upstream of another item."""

    def output_line(self, scenario: str, step: str, line: str) -> None:
        """A line the running step wrote to its stdout or stderr, secrets masked."""


class SilentProgress:
    """Tells no one: the engine used on its own."""

    streams_output = False

    def step_started(self, scenario: str, step: str, *, as_setup: bool) -> None:
        pass

    def step_finished(self, result: StepResult, *, as_setup: bool) -> None:
        pass

    def output_line(self, scenario: str, step: str, line: str) -> None:
        pass


class LogFollower:
    """Follows a running step's log files from a thread of its own, handing each complete line to
    ``emit`` as it is written (the child writes to files, not pipes: nothing to tee, nothing to block)."""

    def __init__(self, files: list[Path], emit: Callable[[str], None]) -> None:
        self._files = files
        self._emit = emit
        self._offsets = [0] * len(files)
        self._partial = [b""] * len(files)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="cursus-log-follower", daemon=True)

    def __enter__(self) -> LogFollower:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read(final=True)  # what was written between the last look and the end of the step

    def _follow(self) -> None:
        while not self._stop.wait(FOLLOW_EVERY_S):
            self._read(final=False)

    def _read(self, *, final: bool) -> None:
        for index, path in enumerate(self._files):
            try:
                with open(path, "rb") as handle:
                    handle.seek(self._offsets[index])
                    while chunk := handle.read(_READ_BYTES):
                        self._offsets[index] += len(chunk)
                        self._partial[index] += chunk
                        *lines, self._partial[index] = self._partial[index].split(b"\n")
                        for line in lines:
                            self._emit(line.decode("utf-8", errors="replace").rstrip("\r"))
            except OSError:
                continue  # not created yet
            if final and self._partial[index]:
                self._emit(self._partial[index].decode("utf-8", errors="replace"))
                self._partial[index] = b""
