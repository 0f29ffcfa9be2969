"""The pytest nodes: a scenario file, its step and edge items, and the item an invalid file becomes."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_cursus.checks.edge_checks import check_edge
from pytest_cursus.errors import ConfigError, ConfigErrors, CursusError, DataSourceError, SourceLocation
from pytest_cursus.plan.dag import Edge
from pytest_cursus.plan.scenario_plan import ScenarioPlan, load_scenario
from pytest_cursus.plugin.reporter import BASELINE_CHECK_KEY, SETUP_RESULTS_KEY, reporter_for
from pytest_cursus.plugin.session import OPTIONS_KEY, SELECTED_STEPS_KEY, file_lookups, pipeline_for
from pytest_cursus.reporting.baseline import describe_regression
from pytest_cursus.reporting.failure_text import describe_failure
from pytest_cursus.results import StepResult
from pytest_cursus.run.pipeline import UpstreamFailed

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr  # what Item.repr_failure may return; not public API

STEP_RESULT_KEY = pytest.StashKey[StepResult]()
CHECKED_OUTPUT_KEY = pytest.StashKey[Path]()  # the data an edge item checks
SCENARIO_NAMES_KEY = pytest.StashKey[dict[str, Path]]()


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


class ScenarioYamlFile(pytest.File):
    """A scenario file: yields its steps in DAG order, each preceded by the edges into it."""

    def collect(self) -> Iterator[pytest.Item]:
        options = self.config.stash[OPTIONS_KEY]
        try:
            with _collector_paused():
                plan = load_scenario(self.path, options.plan_options(), file_lookups(self.config))
        except (ConfigError, ConfigErrors) as exc:
            # An item, not a collection error: pytest stops the whole session on collection errors,
            # and the other scenarios must still run (docs/pytest-integration.md, "An invalid scenario").
            yield InvalidScenarioItem.from_parent(self, name=self.path.name.split(".")[0], error=exc)
            return
        # Workspaces, keywords and reports are per scenario name: two files may not share one.
        owners = self.config.stash.setdefault(SCENARIO_NAMES_KEY, {})
        owner = owners.setdefault(plan.name, self.path)
        if owner != self.path:
            error = ConfigError(
                f"scenario name {plan.name!r} is already used by {owner}; give this file its own 'scenario:' name",
                SourceLocation(self.path, 1, "scenario"),
            )
            yield InvalidScenarioItem.from_parent(self, name=plan.name, error=error)
            return
        from pytest_cursus.plugin.generated_data_items import items_for_step

        pipeline_items = options.mode != "isolation"
        for step in plan.steps:
            if pipeline_items:
                for edge in plan.edges_into(step):
                    yield EdgeItem.from_parent(self, name=f"compat[{edge.id}]", plan=plan, edge=edge)
                yield StepItem.from_parent(self, name=step, plan=plan, step=step)
            yield from items_for_step(self, plan, step)


class CursusItem(pytest.Item):
    """Base of our items: ``explain`` gives the user-facing text of a failure in any phase."""

    def explain(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
        return _explain(excinfo)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        return self.explain(excinfo) or super().repr_failure(excinfo, style=style)


class _ScenarioItem(CursusItem):
    plan: ScenarioPlan

    def _mark(self, kind: str) -> None:
        self.add_marker(_marker("cursus"))
        self.add_marker(_marker(kind))
        self.extra_keyword_matches.add(self.plan.name)


class StepItem(_ScenarioItem):
    """Runs one step in its own process; passes when it completes and meets ``expect:``."""

    def __init__(self, *, plan: ScenarioPlan, step: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.step = step
        self._mark("cursus_step")

    def setup(self) -> None:
        with _upstream_failures_reported(self):
            produced = pipeline_for(self.config).prepare(self.plan, self.step)
        _note_setup(self, produced)

    def runtest(self) -> None:
        result = pipeline_for(self.config).run_step(
            self.plan, self.step, in_process=self.config.stash[OPTIONS_KEY].debug
        )
        self.stash[STEP_RESULT_KEY] = result
        if result.cached:
            self.user_properties.append(("cursus_cache", "hit"))
        if not result.passed:
            raise StepFailed(result)
        reporter = reporter_for(self.config)
        check = reporter.check_baseline(self.plan.name, self.step, result) if reporter else None
        if check is not None:
            self.stash[BASELINE_CHECK_KEY] = check
            if check.status == "regressed":
                raise BaselineRegression(
                    self.plan.name, self.step, describe_regression(check, reporter.thresholds), check.baseline_file
                )  # type: ignore[union-attr]

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.plan.steps[self.step].line - 1, f"{self.plan.name}::{self.step}"


class EdgeItem(_ScenarioItem):
    """Checks that an upstream output is something the downstream input can read."""

    def __init__(self, *, plan: ScenarioPlan, edge: Edge, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.edge = edge
        self._mark("cursus_edge")

    def setup(self) -> None:
        pipeline = pipeline_for(self.config)
        if self.plan.execution is not None:
            # --cursus-execution: the upstream step is not run, the edge checks what the execution wrote
            self.stash[CHECKED_OUTPUT_KEY] = pipeline.execution_output(self.plan, self.edge.upstream, self.edge.output)
            return
        with _upstream_failures_reported(self):
            produced = pipeline.prepare(self.plan, self.edge.upstream)
        upstream = pipeline.result(self.plan, self.edge.upstream)
        if upstream is None:
            upstream = pipeline.ensure(self.plan, self.edge.upstream)
            produced.append(upstream)
        _note_setup(self, produced)
        if not upstream.passed:
            if (self.plan.path, self.edge.upstream) in self.config.stash.get(SELECTED_STEPS_KEY, set()):
                pytest.skip(f"upstream step {self.edge.upstream!r} failed: nothing to check")
            raise UpstreamFailed(self.name, upstream)
        self.stash[STEP_RESULT_KEY] = upstream
        self.stash[CHECKED_OUTPUT_KEY] = Path(upstream.outputs[self.edge.output])

    def runtest(self) -> None:
        channel = self.plan.steps[self.edge.downstream].contract.inputs[self.edge.input]
        problems = check_edge(self.stash[CHECKED_OUTPUT_KEY], channel.data)
        if problems:
            raise EdgeIncompatible(
                f"{self.edge.upstream}.{self.edge.output} -> {self.edge.downstream}.{self.edge.input}:\n"
                + "\n".join(f"  - {problem}" for problem in problems)
            )

    def reportinfo(self) -> tuple[Path, int, str]:
        line = self.plan.steps[self.edge.downstream].line
        return self.path, line - 1, f"{self.plan.name}::compat[{self.edge.id}]"


class InvalidScenarioItem(CursusItem):
    """Stands for a scenario file that could not be read: errors at setup with the reason."""

    def __init__(self, *, error: ConfigError | ConfigErrors, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        self.add_marker("cursus")

    def setup(self) -> None:
        raise self.error

    def runtest(self) -> None:  # never reached: setup always fails
        raise self.error

    def explain(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
        if isinstance(excinfo.value, (ConfigError, ConfigErrors)):
            # the first line is what pytest's short summary shows: make it the first problem
            return excinfo.value.render(self.config.rootpath)
        return None

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"invalid scenario {self.path.name}"


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading a scenario allocates tens of thousands of short-lived objects (YAML nodes and
    marks, pydantic models) that reference counting frees; with the cyclic garbage collector
    on, they trigger collections that walk every item collected so far. Paused per file, it
    runs as usual between files (measured: 500 files, gc time 0.54 s -> 0.16 s)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_MARKERS: dict[str, pytest.MarkDecorator] = {}


def _marker(name: str) -> pytest.MarkDecorator:
    """``pytest.mark.<name>``, made once: looking a marker up by name checks the registered
    markers every time, and thousands of items carry the same few."""
    if name not in _MARKERS:
        _MARKERS[name] = getattr(pytest.mark, name)
    return _MARKERS[name]


@contextmanager
def _upstream_failures_reported(item: _ScenarioItem) -> Iterator[None]:
    """A failed upstream step skips this item when the upstream's own item reports the
    failure in this session, and errors it otherwise, so the failure is never hidden and a
    serial run and an xdist run give the same outcomes."""
    try:
        yield
    except UpstreamFailed as exc:
        if (item.plan.path, exc.upstream.step) in item.config.stash.get(SELECTED_STEPS_KEY, set()):
            pytest.skip(f"upstream step {exc.upstream.step!r} failed")
        raise


def _note_setup(item: pytest.Item, produced: list[StepResult]) -> None:
    item.stash[SETUP_RESULTS_KEY] = produced
    if produced:
        listed = ", ".join(f"{r.step} ({'cached' if r.cached else r.outcome})" for r in produced)
        item.add_report_section("setup", "cursus", f"upstream steps produced as setup of this item: {listed}")


def _explain(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    """The user-facing text of our own failures; None for anything else (a bug of ours)."""
    error = excinfo.value
    if isinstance(error, DataSourceError):  # e.g. an execution output that cannot be downloaded
        return str(error)
    if isinstance(error, StepFailed):
        return describe_failure(error.result)
    if isinstance(error, UpstreamFailed):
        return f"{error}\n\n" + describe_failure(error.upstream, ran_as_setup=True)
    if isinstance(error, EdgeIncompatible):
        return f"incompatible data on edge {error}"
    if isinstance(error, BaselineRegression):
        return str(error)
    return None
