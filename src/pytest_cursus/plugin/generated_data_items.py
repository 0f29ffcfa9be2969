"""Items that run a step on generated data: ``<step>[isolation]`` and ``<step>[fuzz]``.

Node ids: ``scenarios/xgb.yaml::train[isolation]`` (``--cursus-mode isolation|both``) and
``scenarios/xgb.yaml::train[fuzz]`` (``--cursus-fuzz N``, a step's ``fuzz:`` block, or
``--cursus-fuzz-replay DIR``). The work is done by :mod:`.isolation` and :mod:`.fuzzing`.
"""

from __future__ import annotations

import shlex
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_cursus.errors import CursusError, MissingExtra
from pytest_cursus.plan.input_schemas import InputSchema, input_schema, missing_schema_advice
from pytest_cursus.plan.scenario_plan import ScenarioPlan, SourceInput, UpstreamInput
from pytest_cursus.plugin.items import (
    ScenarioItem,
    StepFailed,
    note_setup,
    upstream_failures_reported,
)
from pytest_cursus.plugin.session import STEP_RESULT_KEY, cursus_session
from pytest_cursus.reporting.failure_text import describe_failure, shown_path
from pytest_cursus.run.options import CursusOptions

if TYPE_CHECKING:
    from pytest_cursus.run.fuzzing import FuzzReport, SavedExample
HYPOTHESIS_DIR = "cursus-hypothesis"
FAILURES_DIR = "cursus-fuzz-failures"


def items_for_step(parent: pytest.File, plan: ScenarioPlan, step: str) -> Iterator[pytest.Item]:
    """The isolation and fuzz items of ``step`` that the options ask for (after its pipeline items)."""
    options = cursus_session(parent.config).options
    if options.mode in ("isolation", "both"):
        yield IsolationItem.from_parent(parent, name=f"{step}[isolation]", plan=plan, step=step)
    if _wants_fuzz(parent.config, options, plan, step):
        yield FuzzItem.from_parent(parent, name=f"{step}[fuzz]", plan=plan, step=step)


def _wants_fuzz(config: pytest.Config, options: CursusOptions, plan: ScenarioPlan, step: str) -> bool:
    replayed = replays(config)
    if replayed and (plan.path.resolve(), step) in replayed:
        return True
    if options.fuzz is not None:
        return options.fuzz > 0
    return plan.steps[step].fuzz is not None


def replays(config: pytest.Config) -> dict[tuple[Path, str], SavedExample]:
    """The saved examples ``--cursus-fuzz-replay`` names, by (scenario file, step)."""
    state = cursus_session(config)
    if state.replays is None:
        found: dict[tuple[Path, str], SavedExample] = {}
        for directory in state.options.fuzz_replay:
            try:
                MissingExtra.check("hypothesis", "fuzz", "--cursus-fuzz-replay")
            except MissingExtra as exc:
                raise pytest.UsageError(str(exc)) from None
            from pytest_cursus.run.fuzzing import SavedExample  # pyarrow and hypothesis: only when replaying

            try:
                example = SavedExample.load(directory)
            except ValueError as exc:
                raise pytest.UsageError(f"--cursus-fuzz-replay: {exc}") from None
            found[(Path(example.scenario_file).resolve(), example.step)] = example
        state.replays = found
    return state.replays


class IsolationItem(ScenarioItem):
    """Runs one step alone, on inputs generated from schemas instead of upstream outputs."""

    def __init__(self, *, plan: ScenarioPlan, step: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.step = step
        self._mark("cursus_step")
        self.add_marker("cursus_isolation")

    def setup(self) -> None:
        from pytest_cursus.run.isolation import MissingSchema

        try:
            self.cursus.isolation_run().check_schemas(self.plan, self.step)
        except MissingSchema as exc:
            pytest.skip(str(exc))

    def runtest(self) -> None:
        pipeline = self.cursus.pipeline()
        result = self.cursus.isolation_run().run(
            self.plan, self.step, lambda name: pipeline.source_data(self.plan, name)
        )
        self.stash[STEP_RESULT_KEY] = result
        if not result.passed:
            raise StepFailed(result)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.plan.steps[self.step].line - 1, f"{self.plan.name}::{self.step}[isolation]"


class FuzzFailed(CursusError):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class FuzzItem(ScenarioItem):
    """Runs one step on many small generated datasets; fails with a shrunk, saved example."""

    def __init__(self, *, plan: ScenarioPlan, step: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.step = step
        self._mark("cursus_fuzz")

    @property
    def replay(self) -> SavedExample | None:
        return replays(self.config).get((self.plan.path.resolve(), self.step))

    def fuzzed_schemas(self) -> dict[str, InputSchema]:
        """The inputs to generate and their schemas; skips the item when there is none."""
        step_plan = self.plan.steps[self.step]
        settings = step_plan.fuzz
        wanted = settings.inputs if settings and settings.inputs else list(step_plan.inputs)
        schemas: dict[str, InputSchema] = {}
        for name in wanted:
            schema = input_schema(self.plan, self.step, name, from_sources=True)
            if schema is not None:
                schemas[name] = schema
            elif settings and settings.inputs:
                pytest.skip(
                    f"fuzz.inputs names {name!r}, which has no schema: "
                    f"{missing_schema_advice(self.plan, self.step, name)}"
                )
        if not schemas:
            listed = ", ".join(step_plan.inputs) or "(none wired)"
            advice = "; ".join(missing_schema_advice(self.plan, self.step, name) for name in step_plan.inputs)
            pytest.skip(
                f"no input of step {self.step!r} has a schema to generate data from (inputs: {listed}); "
                f"{advice or 'wire an input with a data: schema'}"
            )
        return schemas

    def setup(self) -> None:
        replay = self.replay
        generated = set(replay.inputs) if replay is not None else set(self.fuzzed_schemas())
        upstream = [
            name
            for name, binding in self.plan.steps[self.step].inputs.items()
            if isinstance(binding, UpstreamInput) and name not in generated
        ]
        if upstream and self.cursus.options.mode != "isolation":
            with upstream_failures_reported(self):
                produced = self.cursus.pipeline().prepare(self.plan, self.step)
            note_setup(self, produced)

    def _other_inputs(self, generated: set[str]) -> dict[str, Path]:
        """Data of the inputs not generated: their source, or upstream outputs (isolation data in isolation mode)."""
        pipeline = self.cursus.pipeline()
        data: dict[str, Path] = {}
        isolated: list[str] = []
        for name, binding in self.plan.steps[self.step].inputs.items():
            if name in generated:
                continue
            if isinstance(binding, SourceInput):
                data[name] = pipeline.source_data(self.plan, binding.source)
            elif self.cursus.options.mode == "isolation":
                isolated.append(name)
            else:
                upstream = pipeline.result(self.plan, binding.step)
                assert upstream is not None  # produced in setup
                data[name] = Path(upstream.outputs[binding.output])
        if isolated:
            from pytest_cursus.run.isolation import MissingSchema

            try:
                generated_data = self.cursus.isolation_run().inputs(
                    self.plan, self.step, lambda source: pipeline.source_data(self.plan, source)
                )
            except MissingSchema as exc:
                pytest.skip(str(exc))
            data.update({name: generated_data[name] for name in isolated})
        return data

    def runtest(self) -> None:
        MissingExtra.check("hypothesis", "fuzz", f"fuzzing step {self.step!r}")
        from pytest_cursus.execution.step_runner import StepRunner
        from pytest_cursus.run.fuzzing import (
            DEFAULT_EXAMPLES,
            DEFAULT_MAX_ROWS,
            SavedExample,
            StepFuzzer,
        )

        options = self.cursus.options
        step_plan = self.plan.steps[self.step]
        fuzzer = StepFuzzer(
            StepRunner(self.cursus.workspace_root() / "_fuzz", launcher=self.cursus.launcher()),
            database=self.cursus.cache_subdir(HYPOTHESIS_DIR),
        )
        replay = self.replay
        if replay is not None:
            result, _ = fuzzer.run_once(step_plan, {**self._other_inputs(set(replay.inputs)), **replay.inputs})
            self.stash[STEP_RESULT_KEY] = result
            if not result.passed:
                shown = shown_path(replay.directory, self.config.rootpath)
                raise FuzzFailed(f"replaying the saved example {shown}:\n\n{describe_failure(result)}")
            return
        schemas = self.fuzzed_schemas()
        settings = step_plan.fuzz
        examples = options.fuzz or (settings.examples if settings else DEFAULT_EXAMPLES)
        max_rows = settings.max_rows if settings else DEFAULT_MAX_ROWS
        report = fuzzer.run(
            step_plan,
            schemas,
            self._other_inputs(set(schemas)),
            examples=examples,
            max_rows=max_rows,
            key=self.nodeid,
            edges=settings.edges() if settings else None,
            seed=options.fuzz_seed if options.fuzz_seed is not None else (settings.seed if settings else None),
        )
        self.add_report_section("call", "cursus fuzz", _statistics(report))
        self.user_properties.append(("cursus_fuzz_runs", report.runs))
        failure = report.failure
        if failure is None:
            return
        self.stash[STEP_RESULT_KEY] = failure.result
        saved = SavedExample.save(
            self.cursus.cache_subdir(FAILURES_DIR) / self.plan.name / self.step,
            self.plan.path,
            self.step,
            failure.tables,
            schemas,
        )
        raise FuzzFailed(self._failure_text(report, schemas, saved))

    def _failure_text(self, report: FuzzReport, schemas: dict[str, InputSchema], saved: SavedExample) -> str:
        from pytest_cursus.run.fuzzing import render_table

        failure = report.failure
        assert failure is not None
        if failure.edge:
            origin = (
                f"found at script run {failure.found_at}, on a dataset tried before any generated one: {failure.edge}"
            )
        elif report.saved_examples and failure.found_at == report.edge_runs + 1:
            origin = "a failing example saved by an earlier run, tried first"
        else:
            origin = f"found at script run {failure.found_at}"
        shrunk = "" if failure.edge else ", shrunk to this minimal example"
        lines = [
            (
                f"step {self.step!r} of scenario {self.plan.name!r} fails on generated data "
                f"({origin}; {report.runs} script runs in {report.seconds:.1f}s, seed {report.seed}{shrunk}):"
            ),
        ]
        if failure.layout_mismatch:
            # the rows do not matter: showing the shrunk table would point at the data, not the layout
            lines = [
                f"step {self.step!r} of scenario {self.plan.name!r} fails on generated data "
                f"({report.runs} script runs in {report.seconds:.1f}s): {failure.layout_mismatch}"
            ]
        for name, table in ({} if failure.layout_mismatch else failure.tables).items():
            lines += [
                "",
                f"input {name}: {table.num_rows} row(s) x {table.num_columns} column(s) "
                f"(schema: {shown_path(schemas[name].declared_in, self.config.rootpath)}: {schemas[name].field})",
                textwrap.indent(render_table(table), "  "),
            ]
        if failure.flaky:
            lines += [
                "",
                f"note: the script did not fail again when hypothesis replayed it ({failure.flaky}): it may be flaky",
            ]
        lines += ["", describe_failure(failure.result)]
        lines += [
            "",
            f"Saved as input files: {shown_path(saved.directory / 'inputs', self.config.rootpath)}/",
            f"Rerun the step on it (from {self.config.rootpath}):",
            f"  {self.replay_command(saved.directory)}",
            "Fuzz it again on the same datasets (after the failing examples saved, tried first):",
            f"  {self.seeded_command(report.seed)}",
        ]
        return "\n".join(lines)

    def replay_command(self, directory: Path) -> str:
        return shlex.join(
            self._rerun_words() + ["--cursus-fuzz-replay", str(shown_path(directory, self.config.rootpath))]
        )

    def seeded_command(self, seed: int) -> str:
        words = self._rerun_words()
        if self.config.getoption("cursus_fuzz"):  # the example count: part of what the seed generates
            words += ["--cursus-fuzz", str(self.cursus.options.fuzz)]
        return shlex.join(words + ["--cursus-fuzz-seed", str(seed)])

    def _rerun_words(self) -> list[str]:
        """``pytest <node id>`` and the options of this run that change which step, script or data it means."""
        config = self.config
        words = ["pytest", self.nodeid]
        options = cursus_session(config).options
        for name in ("contracts", "scripts"):
            if config.getoption(f"cursus_{name}"):
                for path in getattr(options, name):
                    words += [f"--cursus-{name}", str(shown_path(path, config.rootpath))]
        for name in ("source", "mode"):
            if config.getoption(f"cursus_{name}"):
                words += [f"--cursus-{name}", str(getattr(options, name))]
        return words

    def explain(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
        if isinstance(excinfo.value, FuzzFailed):
            return excinfo.value.text
        return super().explain(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.plan.steps[self.step].line - 1, f"{self.plan.name}::{self.step}[fuzz]"


def _statistics(report: FuzzReport) -> str:
    if not report.timings:
        return f"{report.examples} examples, no script run; seed {report.seed}"
    total = sum(t.total for t in report.timings)
    start = sum(t.process_start for t in report.timings)
    imports = sum(t.script_import for t in report.timings)
    return (
        f"{report.examples} examples, {report.runs} script runs (distinct datasets) in {report.seconds:.1f}s: "
        f"{total / report.runs:.3f}s per run, of which process start {start / total:.0%}, "
        f"script imports {imports / total:.0%}; seed {report.seed}"
        + (f"; {report.saved_examples} saved failing example(s) tried first" if report.saved_examples else "")
    )
