"""The notebook's progress display: a line as each step starts and finishes, printed as it happens
(Jupyter shows a cell's output live) on stderr, where progress displays go (tqdm's, pip's), so
stdout stays the user's; numbered over the steps the call will run:

    cursus: [1/3] credit_risk::preprocess started
    cursus: [1/3] credit_risk::preprocess passed in 2.1s (peak 180 MB)
    cursus: [2/3] credit_risk::train cached
"""

from __future__ import annotations

import sys
from typing import TextIO

from pytest_cursus.reporting.progress_lines import FinishedStep, StepNumbers, started_line
from pytest_cursus.results import StepResult


class PrintedProgress:
    """The engine's ``StepProgress`` for ``run_scenario`` and ``run_step``: plain lines on ``stream``
    (``sys.stderr`` when it is written: a notebook replaces it per cell)."""

    streams_output = False  # the step's own output is in its StepRun (``.stdout``), not repeated here

    def __init__(self, total: int = 0, stream: TextIO | None = None) -> None:
        self.numbers = StepNumbers(total)
        self.stream = stream

    def step_started(self, scenario: str, step: str, *, as_setup: bool) -> None:
        self._print(started_line(self.numbers.of(scenario, step), scenario, step, as_setup=as_setup))

    def step_finished(self, result: StepResult, *, as_setup: bool) -> None:
        finished = FinishedStep.of(result, reuse="cached" if result.cached else None, as_setup=as_setup)
        self._print(finished.line(self.numbers.of(result.scenario, result.step)))

    def output_line(self, scenario: str, step: str, line: str) -> None:
        pass

    def _print(self, line: str) -> None:
        print(line, file=self.stream or sys.stderr, flush=True)
