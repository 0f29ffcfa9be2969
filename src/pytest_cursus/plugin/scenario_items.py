"""The pytest nodes: a scenario file, its step and edge items, and the item an invalid file becomes."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_cursus.errors import ConfigError, ConfigErrors, SourceLocation
from pytest_cursus.plan.dag import Edge
from pytest_cursus.plan.scenario_plan import ScenarioPlan, load_scenario
from pytest_cursus.plugin.generated_data_items import items_for_step
from pytest_cursus.plugin.items import (
    BaselineNotCompared,
    BaselineRegression,
    CursusItem,
    EdgeIncompatible,
    ScenarioItem,
    StepFailed,
    note_setup,
    upstream_failures_reported,
)
from pytest_cursus.plugin.reporter import reporter_for
from pytest_cursus.plugin.session import (
    BASELINE_CHECK_KEY,
    CACHE_PROPERTY,
    CHECKED_OUTPUT_KEY,
    STEP_RESULT_KEY,
    cursus_session,
)
from pytest_cursus.reporting.baseline import describe_regression
from pytest_cursus.run.pipeline import UpstreamFailed


class ScenarioYamlFile(pytest.File):
    """A scenario file: yields its steps in DAG order, each preceded by the edges into it."""

    def collect(self) -> Iterator[pytest.Item]:
        state = cursus_session(self.config)
        try:
            with _collector_paused():
                plan = load_scenario(self.path, state.options.plan_options(), state.file_lookups())
        except (ConfigError, ConfigErrors) as exc:
            # An item, not a collection error: pytest stops the whole session on collection errors,
            # and the other scenarios must still run (docs/pytest-integration.md, "An invalid scenario").
            yield InvalidScenarioItem.from_parent(self, name=self.path.name.split(".")[0], error=exc)
            return
        # Workspaces, keywords and reports are per scenario name: two files may not share one.
        owner = state.scenario_names.setdefault(plan.name, self.path)
        if owner != self.path:
            error = ConfigError(
                f"scenario name {plan.name!r} is already used by {owner}; give this file its own 'scenario:' name",
                SourceLocation(self.path, 1, "scenario"),
            )
            yield InvalidScenarioItem.from_parent(self, name=plan.name, error=error)
            return
        try:
            marks = {step: step_marks(plan, step) for step in plan.steps}
        except ConfigError as error:
            yield InvalidScenarioItem.from_parent(self, name=plan.name, error=error)
            return
        pipeline_items = state.options.mode != "isolation"
        for step in plan.steps:
            if pipeline_items:
                for edge in plan.edges_into(step):
                    yield EdgeItem.from_parent(self, name=f"compat[{edge.id}]", plan=plan, edge=edge)
                yield _marked(StepItem.from_parent(self, name=step, plan=plan, step=step), marks[step])
            for item in items_for_step(self, plan, step):
                yield _marked(item, marks[step])


def step_marks(plan: ScenarioPlan, step: str) -> list[pytest.MarkDecorator]:
    """The pytest marks of a step's ``marks:``. An unregistered name under --strict-markers is pytest's
    failure; it becomes the scenario's error, located at the step."""
    found = []
    for mark in plan.steps[step].marks:
        try:
            decorator = getattr(pytest.mark, mark.name)
        except pytest.fail.Exception as exc:
            raise ConfigError(
                f"step {step!r}: marks: {exc.msg}", SourceLocation(plan.path, plan.steps[step].line, f"{step}.marks")
            ) from None
        found.append(decorator(*mark.args, **mark.kwargs) if mark.args or mark.kwargs else decorator)
    return found


def skipped_by_mark(item: pytest.Item) -> bool:
    """Whether a ``skip`` or ``xfail(run=False)`` mark keeps the item from running: such a step's
    item reports nothing of its run, so a downstream step runs it as setup and reports its failure."""
    if item.get_closest_marker("skip") is not None:
        return True
    return any(not mark.kwargs.get("run", True) for mark in item.iter_markers("xfail"))


def _marked(item: pytest.Item, marks: list[pytest.MarkDecorator]) -> pytest.Item:
    for mark in marks:
        item.add_marker(mark)
    return item


class StepItem(ScenarioItem):
    """Runs one step in its own process; passes when it completes and meets ``expect:``."""

    runs_the_step = True

    def __init__(self, *, plan: ScenarioPlan, step: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.step = step
        self._mark("cursus_step")

    def setup(self) -> None:
        with upstream_failures_reported(self):
            produced = self.cursus.pipeline().prepare(self.plan, self.step)
        note_setup(self, produced)

    def runtest(self) -> None:
        state = self.cursus
        result = state.pipeline().run_step(self.plan, self.step, in_process=state.options.debug)
        self.stash[STEP_RESULT_KEY] = result
        reuse = state.reuse_of(result)
        if reuse is not None:
            self.user_properties.append((CACHE_PROPERTY, reuse))
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
            if check.status == "not_compared" and state.options.baseline_strict:
                raise BaselineNotCompared(self.plan.name, self.step, check.reason or "", check.baseline_file)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.plan.steps[self.step].line - 1, f"{self.plan.name}::{self.step}"


class EdgeItem(ScenarioItem):
    """Checks that an upstream output is something the downstream input can read."""

    def __init__(self, *, plan: ScenarioPlan, edge: Edge, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.edge = edge
        self._mark("cursus_edge")

    def setup(self) -> None:
        state = self.cursus
        pipeline = state.pipeline()
        if self.plan.execution is not None:
            # --cursus-execution: the upstream step is not run, the edge checks what the execution wrote
            self.stash[CHECKED_OUTPUT_KEY] = pipeline.execution_output(self.plan, self.edge.upstream, self.edge.output)
            return
        with upstream_failures_reported(self):
            produced = pipeline.prepare(self.plan, self.edge.upstream)
        upstream = pipeline.result(self.plan, self.edge.upstream)
        if upstream is None:
            upstream = pipeline.ensure(self.plan, self.edge.upstream)
            produced.append(upstream)
        note_setup(self, produced)
        if not upstream.passed:
            if (self.plan.path, self.edge.upstream) in state.selected_steps:
                pytest.skip(f"upstream step {self.edge.upstream!r} failed: nothing to check")
            raise UpstreamFailed(self.name, upstream)
        self.stash[STEP_RESULT_KEY] = upstream
        self.stash[CHECKED_OUTPUT_KEY] = Path(upstream.outputs[self.edge.output])

    def runtest(self) -> None:
        verdict = self.cursus.pipeline().check_edge(self.plan, self.edge, self.stash[CHECKED_OUTPUT_KEY])
        if verdict.remembered:
            # as its upstream is: CACHED from an earlier run's entry, SHARED from one this session stored
            reuse = self.cursus.reuse_of(self.stash[STEP_RESULT_KEY]) or "cached"
            self.user_properties.append((CACHE_PROPERTY, reuse))
        if verdict.problems:
            remembered = (
                "\n  (found by an earlier check of the same cache entry against the same schema: the files were "
                "not read again)"
                if verdict.remembered
                else ""
            )
            raise EdgeIncompatible(
                f"{self.edge.upstream}.{self.edge.output} -> {self.edge.downstream}.{self.edge.input}:\n"
                + "\n".join(f"  - {problem}" for problem in verdict.problems)
                + remembered
            )

    def reportinfo(self) -> tuple[Path, int, str]:
        line = self.plan.steps[self.edge.downstream].line
        return self.path, line - 1, f"{self.plan.name}::compat[{self.edge.id}]"


class InvalidScenarioItem(CursusItem):
    """Stands for a scenario file that could not be read: errors at setup with the reason."""

    def __init__(self, *, error: ConfigError | ConfigErrors, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Without the traceback of the load: explain() says all there is, while pytest would format
        # that traceback first, repr'ing every frame's arguments (a parsed document among them),
        # and keep its frames alive for the whole session.
        self.error = error.with_traceback(None)
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
