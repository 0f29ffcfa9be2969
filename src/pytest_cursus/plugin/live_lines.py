"""Live lines in pytest's terminal as steps run: the engine's ``StepProgress`` told to the user.

* ``-v``: every step's started and finished line, ``[i/N]`` counting the steps the session will
  run (selected step items and the upstream steps they need), upstream steps run as setup and
  cache hits included.
* without ``-v``: a finished line only for a step that ran longer than ``--cursus-progress-after``.
* ``-s``: the step's stdout and stderr lines as it writes them, prefixed ``[step] ``.
* under xdist, a worker has no terminal: it puts its finished steps on the report of the phase that
  produced them, and the controller writes them as the report arrives (started lines and output are
  not forwarded: they would arrive with the finished line).

Lines are written the way pytest's live logging (``log_cli``) writes records: past capture, with a
newline first when pytest's own progress line is open, so that line goes on intact below them.
S3 transfers write their status lines through the same writer (:class:`TerminalLineStream`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_cursus.plugin.session import cursus_session, is_xdist_worker

if TYPE_CHECKING:
    from pytest_cursus.reporting.progress_lines import FinishedStep, StepNumbers
    from pytest_cursus.results import StepResult

LIVE_LINES_NAME = "cursus-live-lines"
PROGRESS_ATTRIBUTE = "cursus_progress"  # on a worker's report: {"total": N, "finished": [FinishedStep JSON]}


class LiveLines:
    """Registered once per process as a plugin; the pipeline run's ``progress``."""

    def __init__(self, config: pytest.Config, progress_after: float) -> None:
        self.config = config
        self.progress_after = progress_after
        self.verbose = config.get_verbosity() > 0
        self.worker = is_xdist_worker(config)
        # -s: the step's output is wanted as it is written (a worker's has nowhere to go)
        self.streaming = config.getoption("capture", None) == "no" and not self.worker
        self.total = 0  # the steps this session will run, set once collection is done
        self._numbers: StepNumbers | None = None
        self._pending: list[FinishedStep] = []  # a worker's, until the report of the running phase
        self._lock = threading.Lock()  # output lines come from the follower's thread
        # pytest's open line our lines ended (an item's location, a file's path), to write again
        self._open_line: str | Path | None = None

    # --- the engine's StepProgress -------------------------------------------------------------

    @property
    def streams_output(self) -> bool:
        return self.streaming

    def step_started(self, scenario: str, step: str, *, as_setup: bool) -> None:
        if self.worker or not (self.verbose or self.streaming):
            return
        from pytest_cursus.reporting.progress_lines import started_line

        self.write_line(started_line(self.numbers().of(scenario, step), scenario, step, as_setup=as_setup))

    def step_finished(self, result: StepResult, *, as_setup: bool) -> None:
        from pytest_cursus.reporting.progress_lines import FinishedStep

        finished = FinishedStep.of(result, reuse=cursus_session(self.config).reuse_of(result), as_setup=as_setup)
        if self.worker:
            self._pending.append(finished)
        else:
            self.show(finished)

    def output_line(self, scenario: str, step: str, line: str) -> None:
        self.write_line(f"[{step}] {line}")

    # --- writing ---------------------------------------------------------------------------------

    def numbers(self) -> StepNumbers:
        if self._numbers is None:
            from pytest_cursus.reporting.progress_lines import StepNumbers

            self._numbers = StepNumbers()
        self._numbers.total = self.total
        return self._numbers

    def show(self, finished: FinishedStep) -> None:
        """The finished line, if this run shows it: always with -v or -s, else for a long step that ran here."""
        long = finished.reuse is None and finished.wall_seconds > self.progress_after
        if self.verbose or self.streaming or long:
            self.write_line(finished.line(self.numbers().of(finished.scenario, finished.step)))

    def write_line(self, line: str) -> None:
        """``line`` on a line of its own, past pytest's capture, flushed at once (live in a CI log too).

        A line pytest left open (an item's location with ``-v``, a file's dots without) is ended first
        and written again just before pytest writes the item's outcome (:meth:`pytest_runtest_logreport`),
        so ``path::step PASSED [ 50%]`` stays whole below our lines."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return  # -p no:terminal
        writer = self.config.get_terminal_writer()
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with self._lock, capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            if writer.width_of_current_line:
                writer.line()
                if isinstance(reporter.currentfspath, (str, Path)):
                    self._open_line = self._open_line or reporter.currentfspath
                else:
                    reporter.currentfspath = None  # ended here: pytest must not end it again
            writer.line(line)
            writer.flush()

    def _reopen_line(self, report: pytest.TestReport) -> None:
        """Write again the line pytest left open, before it writes an outcome on it (a passed setup or
        teardown shows none: the line is kept owed until one does)."""
        if self._open_line is None or (report.when != "call" and report.passed):
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        opened, self._open_line = self._open_line, None
        if reporter is None or reporter.currentfspath != opened:
            return
        text = opened if isinstance(opened, str) else os.path.relpath(opened, reporter.startpath) + " "
        self.config.get_terminal_writer().write(text, flush=True)

    def stream(self) -> TerminalLineStream:
        """Where S3 transfers write their status lines."""
        return TerminalLineStream(self)

    # --- xdist: from the workers to the controller -------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        if self._pending:
            payload = {"total": self.total, "finished": [finished.to_json() for finished in self._pending]}
            setattr(report, PROGRESS_ATTRIBUTE, payload)
            self._pending = []
        return report

    @pytest.hookimpl(tryfirst=True)  # before the terminal writes the item's own outcome
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.worker:
            return
        payload = getattr(report, PROGRESS_ATTRIBUTE, None)
        if payload is not None:
            from pytest_cursus.reporting.progress_lines import FinishedStep

            self.total = max(self.total, payload["total"])
            for finished in payload["finished"]:
                self.show(FinishedStep.from_json(finished))
        self._reopen_line(report)


class TerminalLineStream:
    """A text stream for S3 transfers' status lines: each complete line through :class:`LiveLines`,
    never a ``\\r`` rewrite (which would break pytest's own progress line)."""

    def __init__(self, lines: LiveLines) -> None:
        self.lines = lines
        self._partial = ""

    def write(self, text: str) -> int:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self.lines.write_line(line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False  # whole lines: the status is rewritten by a new line, not in place


def live_lines_for(config: pytest.Config) -> LiveLines | None:
    """The session's live lines, registered in ``pytest_configure`` (None with -p no:cursus)."""
    plugin = config.pluginmanager.get_plugin(LIVE_LINES_NAME)
    return plugin if isinstance(plugin, LiveLines) else None
