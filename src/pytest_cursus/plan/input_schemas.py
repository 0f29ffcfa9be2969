"""Which column schema describes the data a step input reads, and where it was declared.

Isolation mode and fuzzing generate an input's data instead of taking it from upstream; they
need its columns. In order of preference:

1. the step's contract declares ``data:`` on the input;
2. the input is wired to ``<step>.<output>`` and the upstream contract declares ``data:`` on
   that output;
3. the input is fed by a ``synthetic:`` data source (its ``columns:``; fuzzing only: isolation
   keeps the source itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_cursus.data.schema import ColumnSpec, DataSchema, FileFormat
from pytest_cursus.plan.scenario_plan import ScenarioPlan, SourceInput, UpstreamInput

DEFAULT_FORMAT: FileFormat = "csv"


@dataclass(frozen=True)
class InputSchema:
    """The columns of one input's data, the file format to write them in, and their origin."""

    columns: dict[str, ColumnSpec]
    file_format: FileFormat
    compression: str | None
    declared_in: Path  # the contract or scenario file
    field: str  # e.g. "inputs.DATA.data"
    # relative paths of the files to write (a data: schema's layout); empty: one part-00000.<format>
    files: tuple[str, ...] = ()

    @classmethod
    def of_data(cls, data: DataSchema, declared_in: Path, field: str) -> InputSchema:
        compression = "gzip" if data.layout and data.layout.lower().endswith(".gz") else None
        return cls(
            dict(data.columns),
            data.file_format or DEFAULT_FORMAT,
            compression,
            declared_in,
            field,
            tuple(data.layout_files()),
        )

    @property
    def origin(self) -> str:
        return f"{self.declared_in}: {self.field}"


def input_schema(plan: ScenarioPlan, step: str, input_name: str, *, from_sources: bool = False) -> InputSchema | None:
    """The schema of ``input_name`` of ``step``, or None when nothing declares one."""
    step_plan = plan.steps[step]
    contract = step_plan.contract
    channel = contract.inputs[input_name]
    if channel.data is not None:
        return InputSchema.of_data(channel.data, contract.path, f"inputs.{input_name}.data")
    binding = step_plan.inputs.get(input_name)
    if isinstance(binding, UpstreamInput) and binding.step in plan.steps:
        upstream = plan.steps[binding.step].contract
        output = upstream.outputs.get(binding.output)
        if output is not None and output.data is not None:
            return InputSchema.of_data(output.data, upstream.path, f"outputs.{binding.output}.data")
    if from_sources and isinstance(binding, SourceInput):
        source = plan.data[binding.source]
        if source.synthetic is not None:
            spec = source.synthetic
            return InputSchema(
                dict(spec.columns), spec.format, spec.compression, plan.path, f"data.{binding.source}.synthetic"
            )
    return None


def missing_schema_advice(plan: ScenarioPlan, step: str, input_name: str) -> str:
    """What to add so that ``input_name`` of ``step`` has a schema."""
    step_plan = plan.steps[step]
    where = f"add 'data: {{columns: ...}}' to input {input_name!r} in {_shown(step_plan.contract.path)}"
    binding = step_plan.inputs.get(input_name)
    if isinstance(binding, UpstreamInput) and binding.step in plan.steps:
        upstream = plan.steps[binding.step].contract
        where += f", or to output {binding.output!r} in {_shown(upstream.path)}"
    return where


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
