"""The base of every pytest-cursus item, and what the scenario, contract and generated-data
items share: how our failures read, how upstream steps run as setup are noted, markers."""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pluggy
import pytest

from pytest_cursus.errors import CursusError, DataSourceError, MissingExtra
from pytest_cursus.execution import child
from pytest_cursus.plan.scenario_plan import ScenarioPlan
from pytest_cursus.plugin.session import SETUP_RESULTS_KEY, CursusSession, cursus_session
from pytest_cursus.reporting.failure_text import describe_failure
from pytest_cursus.results import StepResult
from pytest_cursus.run.pipeline import UpstreamFailed

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr, Traceback  # what Item.repr_failure uses; not public API

# where the script's main() is called from (in this process under --cursus-debug)
_SCRIPT_CALLER = os.path.abspath(child.__file__)
# what runs an item: a traceback through them is pytest's and pluggy's business, not the user's
_RUNNER_DIRS = tuple(str(Path(inspect.getfile(runs)).parent) + os.sep for runs in (pytest.Item, pluggy.PluginManager))
_IMPORT_MACHINERY_DIR = str(Path(importlib.__file__ or "").parent) + os.sep


class StepFailed(CursusError):
    def __init__(self, result: StepResult) -> None:
        self.result = result
        super().__init__(result.failure.message if result.failure else "failed")


class EdgeIncompatible(CursusError):
    pass


class BaselineRegression(CursusError):
    """The step ran fine but slower or hungrier than ``--cursus-baseline`` allows."""

    def __init__(self, scenario: str, step: str, regression: str, baseline_file: str) -> None:
        super().__init__(
            f"step {step!r} of scenario {scenario!r} regressed against the baseline {baseline_file}: {regression}\n"
            "(thresholds: cursus_max_time_ratio / cursus_max_memory_ratio with the floors cursus_min_time_increase / "
            "cursus_min_memory_increase_mb; see docs/reports.md)"
        )


class BaselineNotCompared(CursusError):
    """``--cursus-baseline-strict``: the step passed but has nothing to be compared with."""

    def __init__(self, scenario: str, step: str, reason: str, baseline_file: str) -> None:
        super().__init__(
            f"step {step!r} of scenario {scenario!r} could not be compared with the baseline {baseline_file}: "
            f"{reason} (--cursus-baseline-strict fails such steps; drop it to let them pass uncompared)"
        )


class CursusItem(pytest.Item):
    """Base of our items: ``explain`` gives the user-facing text of a failure in any phase."""

    def explain(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
        return _explain(excinfo)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        return self.explain(excinfo) or super().repr_failure(excinfo, style=style)

    def _traceback_filter(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Traceback:
        """The frames a failure shows (``--fulltrace`` shows them all).

        Under ``--cursus-debug`` a script's exception reaches pytest through pytest's runner, pluggy, the
        plugin and the engine: some 30 frames, a thousand lines before the script's own. It is shown from
        the script's first frame, as Python would show it; anything else (a bug of ours) from the plugin's
        frames, without pytest's and pluggy's."""
        traceback = excinfo.traceback
        calls = [index for index, entry in enumerate(traceback) if str(entry.path) == _SCRIPT_CALLER]
        if calls:
            # importing the script runs through importlib's frames (Python's own tracebacks hide them too)
            script = traceback[calls[-1] + 1 :].filter(lambda entry: not _is_import_machinery(str(entry.path)))
            if script:
                return script
        return traceback.filter(lambda entry: not str(entry.path).startswith(_RUNNER_DIRS))


class ScenarioItem(CursusItem):
    """An item of one scenario (a step, an edge, an isolation or fuzz run of a step)."""

    plan: ScenarioPlan
    # whether the item stands for the run of its step in the pipeline (its reports carry the step's record)
    runs_the_step: ClassVar[bool] = False

    @property
    def cursus(self) -> CursusSession:
        """The plugin's state for this pytest session."""
        return cursus_session(self.config)

    def _mark(self, kind: str) -> None:
        self.add_marker(marker("cursus"))
        self.add_marker(marker(kind))
        self.extra_keyword_matches.add(self.plan.name)


_MARKERS: dict[str, pytest.MarkDecorator] = {}


def marker(name: str) -> pytest.MarkDecorator:
    """``pytest.mark.<name>``, made once: looking a marker up by name checks the registered
    markers every time, and thousands of items carry the same few."""
    if name not in _MARKERS:
        _MARKERS[name] = getattr(pytest.mark, name)
    return _MARKERS[name]


@contextmanager
def upstream_failures_reported(item: ScenarioItem) -> Iterator[None]:
    """A failed upstream step skips this item when the upstream's own item reports the
    failure in this session, and errors it otherwise, so the failure is never hidden and a
    serial run and an xdist run give the same outcomes."""
    try:
        yield
    except UpstreamFailed as exc:
        if (item.plan.path, exc.upstream.step) in cursus_session(item.config).selected_steps:
            pytest.skip(f"upstream step {exc.upstream.step!r} failed")
        raise


def note_setup(item: pytest.Item, produced: list[StepResult]) -> None:
    """Keeps the upstream steps an item's setup produced, for its report and its setup section."""
    item.stash[SETUP_RESULTS_KEY] = produced
    if produced:
        reuse_of = cursus_session(item.config).reuse_of
        listed = ", ".join(f"{r.step} ({reuse_of(r) or r.outcome})" for r in produced)
        item.add_report_section("setup", "cursus", f"upstream steps produced as setup of this item: {listed}")


def _is_import_machinery(path: str) -> bool:
    return path.startswith("<frozen importlib") or path.startswith(_IMPORT_MACHINERY_DIR)


def _explain(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    """The user-facing text of our own failures; None for anything else (a bug of ours)."""
    error = excinfo.value
    if isinstance(error, (DataSourceError, MissingExtra)):  # e.g. an execution output that cannot be downloaded
        return str(error)
    if isinstance(error, StepFailed):
        return describe_failure(error.result)
    if isinstance(error, UpstreamFailed):
        return f"{error}\n\n" + describe_failure(error.upstream, ran_as_setup=True)
    if isinstance(error, EdgeIncompatible):
        return f"incompatible data on edge {error}"
    if isinstance(error, (BaselineRegression, BaselineNotCompared)):
        return str(error)
    return None
