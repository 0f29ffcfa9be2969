"""Isolation mode: a step run on synthetic inputs made from schemas instead of upstream outputs.

An input wired to ``<step>.<output>`` gets :data:`ISOLATION_ROWS` rows generated from its schema
(see :mod:`.input_schemas`); an input fed by a data source keeps that source. A step with an
upstream input that has no schema cannot run alone: :class:`MissingSchema` says what to add.

Outputs are checked against the structural part of ``expect:`` (``files``, ``columns``); row
counts (``min_rows``, ``max_rows``) describe the real data, not these synthetic rows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_cursus.checks.expectations import check_expectations
from pytest_cursus.data.schema import SyntheticSpec
from pytest_cursus.errors import CursusError, DataSourceError
from pytest_cursus.execution.launcher import StepLauncher
from pytest_cursus.execution.step_runner import StepRunner
from pytest_cursus.plan.input_schemas import input_schema, missing_schema_advice
from pytest_cursus.plan.scenario_plan import ScenarioPlan, SourceInput, UpstreamInput
from pytest_cursus.results import StepFailure, StepResult
from pytest_cursus.run.layout_mismatch import isolation_layout_mismatch

ISOLATION_ROWS = 1000
ISOLATION_SEED = 0
WORKSPACE_DIR = "_isolation"


class MissingSchema(CursusError):
    """A step input has no schema to generate its data from."""


class IsolationRun:
    """Runs steps alone; workspaces under ``<workspace_root>/_isolation/<scenario>/<step>``."""

    def __init__(
        self, workspace_root: Path, runner: StepRunner | None = None, launcher: StepLauncher | None = None
    ) -> None:
        self.root = workspace_root / WORKSPACE_DIR
        self.runner = runner or StepRunner(self.root, launcher=launcher)

    def check_schemas(self, plan: ScenarioPlan, step: str) -> None:
        """Raise ``MissingSchema`` when an upstream input of ``step`` has no schema."""
        for name, binding in plan.steps[step].inputs.items():
            if isinstance(binding, UpstreamInput) and input_schema(plan, step, name) is None:
                raise MissingSchema(
                    f"step {step!r} cannot run in isolation: input {name!r} reads {binding.step}.{binding.output} "
                    f"and no schema says what that data holds; {missing_schema_advice(plan, step, name)}"
                )

    def inputs(self, plan: ScenarioPlan, step: str, source_data: Callable[[str], Path]) -> dict[str, Path]:
        """The data for each wired input: generated for upstream inputs, the source's for the others."""
        self.check_schemas(plan, step)
        data: dict[str, Path] = {}
        for name, binding in plan.steps[step].inputs.items():
            if isinstance(binding, SourceInput):
                data[name] = source_data(binding.source)
                continue
            schema = input_schema(plan, step, name)
            assert schema is not None  # checked above
            from pytest_cursus.data.synthetic import write_synthetic

            target = self.root / plan.name / "_data" / f"{step}.{name}"
            spec = SyntheticSpec(
                rows=ISOLATION_ROWS,
                seed=ISOLATION_SEED,
                format=schema.file_format,
                compression=schema.compression,  # type: ignore[arg-type]
                columns=schema.columns,
            )
            try:
                if schema.files:
                    _write_layout(spec, schema.files, _fresh(target))
                else:
                    write_synthetic(spec, _fresh(target))
            except ValueError as exc:
                raise DataSourceError(f"{schema.origin}: {exc}") from None
            data[name] = target
        return data

    def run(self, plan: ScenarioPlan, step: str, source_data: Callable[[str], Path]) -> StepResult:
        """Run ``step`` on isolation inputs; ``MissingSchema`` propagates (the caller skips)."""
        try:
            data = self.inputs(plan, step, source_data)
        except DataSourceError as exc:
            return StepResult(
                scenario=plan.name,
                step=step,
                outcome="failed",
                workspace=str(self.root / plan.name / step),
                failure=StepFailure(kind="setup", message=str(exc)),
            )
        result = self.runner.run(plan.steps[step], data)
        generated = {
            name: path for name, path in data.items() if isinstance(plan.steps[step].inputs[name], UpstreamInput)
        }
        mismatch = isolation_layout_mismatch(result, generated)
        if mismatch is not None and result.failure is not None:
            result.failure.message = f"{mismatch}\n{result.failure.message}"
        # generated data has no meaningful row counts or values: only the files and columns are checked
        structural = {
            name: expectation.model_copy(update={"min_rows": None, "max_rows": None, "values": {}, "rows": []})
            for name, expectation in plan.steps[step].expect.items()
        }
        if result.passed and structural:
            problems = check_expectations(structural, {name: Path(path) for name, path in result.outputs.items()})
            if problems:
                result.failure = StepFailure(kind="expectation", message="\n".join(problems))
                result.outcome = "failed"
        return result


def _write_layout(spec: SyntheticSpec, files: tuple[str, ...], directory: Path) -> None:
    """One file per path of a schema's layout, each with its own rows (seeded by its position)."""
    from pytest_cursus.data.synthetic import generate_table, write_table

    for index, relative in enumerate(files):
        table = generate_table(spec.columns, spec.rows, spec.seed + index)
        write_table(table, directory / relative, spec.format, spec.compression)


def _fresh(directory: Path) -> Path:
    from pytest_cursus.execution.workspace import fresh_directory

    return fresh_directory(directory)  # refuses to delete outside a workspace the plugin created
