"""What ``run_scenario`` and ``run_step`` return: results that read well in Jupyter (rich HTML:
the DAG coloured by outcome, a table of steps with their metrics, failures with the script's
traceback) and in a terminal (a text table), and that hand out outputs as paths and DataFrames.

    >>> result = run_scenario("scenarios/credit_risk.yaml")      # doctest: +SKIP
    >>> result["train"].outputs["model_output"]                   # a path: open(), tarfile, ...
    >>> result["preprocess"].outputs["processed_data"].read()     # every table file, one DataFrame

The pictures and tables are the pytest-html report's own pieces (``reporting/``), so a step
looks the same in a notebook and in the report.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_cursus.errors import CursusError
from pytest_cursus.formats.yaml_document import did_you_mean
from pytest_cursus.reporting.failure_text import describe_failure
from pytest_cursus.reporting.html_fragments import STYLE, dag_nodes, step_details
from pytest_cursus.reporting.run_report import ItemOutcome, ReportedStep
from pytest_cursus.reporting.step_records import reported_step
from pytest_cursus.reporting.svg_charts import dag_svg
from pytest_cursus.reporting.terminal_tables import scenario_table
from pytest_cursus.results import OutputFile, StepFailure, StepMetrics, StepResult
from pytest_cursus.secret_env import SecretScrubber

if TYPE_CHECKING:
    import pandas as pd

    from pytest_cursus.plan.scenario_plan import ScenarioPlan, StepPlan
    from pytest_cursus.run.extension_hooks import ExtensionHooks
    from pytest_cursus.run.options import CursusOptions


# the report's STYLE scopes its tables to a step's details; the notebook's step table needs its own
NOTEBOOK_STYLE = """
<style>
.cursus-notebook table.cursus-steps { border-collapse: collapse; margin: 6px 0; }
.cursus-notebook table.cursus-steps td, .cursus-notebook table.cursus-steps th {
  border: 1px solid #ddd; padding: 2px 8px; text-align: left; font-size: 12px; }
.cursus-outcome-passed { color: #2e7d32; } .cursus-outcome-failed { color: #c62828; font-weight: bold; }
.cursus-outcome-skipped { color: #b28704; }
</style>
"""


class NotTabularError(CursusError, ValueError):
    """``.read()`` on an output that holds no table file."""


class StepOutput(os.PathLike[str]):
    """One output of a step: a path (``open()``, ``pd.read_csv()``, ``/``), and ``read()``."""

    __slots__ = ("files", "name", "path", "step")

    def __init__(self, step: str, name: str, path: Path, files: list[OutputFile]) -> None:
        self.step = step
        self.name = name
        self.path = path
        self.files = files  # every file with its size and, for a table, its rows

    def __fspath__(self) -> str:
        return str(self.path)

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        size = sum(f.bytes for f in self.files)
        return f"<StepOutput {self.step}.{self.name}: {len(self.files)} file(s), {_size(size)} at {self.path}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StepOutput):
            return self.path == other.path
        if isinstance(other, (str, os.PathLike)):
            return self.path == Path(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def tables(self, pattern: str | None = None) -> list[Path]:
        """The table files (CSV/TSV/Parquet/JSON lines, gzipped or not), sorted; ``pattern``
        (``"train/*.csv"``) keeps those whose path relative to the output matches."""
        from pytest_cursus.data.tabular import list_tabular_files

        found = list_tabular_files(self.path)
        if pattern is None:
            return found
        base = self.path if self.path.is_dir() else self.path.parent
        return [path for path in found if fnmatch.fnmatch(path.relative_to(base).as_posix(), pattern)]

    def read(self, pattern: str | None = None) -> pd.DataFrame:
        """Every table file of the output (or those matching ``pattern``) as one DataFrame,
        read as pandas reads them and concatenated in path order.

        Caveats: the whole output is read into memory; a ``.json`` file is a document, not a
        table (name JSON lines ``.jsonl``); files with different columns give the union of
        the columns, with missing values where a file lacks one.
        """
        import pandas as pd

        from pytest_cursus.data.tabular import UnreadableTableError, read_frame

        tables = self.tables(pattern)
        if not tables:
            listed = ", ".join(f.path for f in self.files[:8]) + (", ..." if len(self.files) > 8 else "")
            wanted = f" matching {pattern!r}" if pattern else ""
            raise NotTabularError(
                f"output {self.name!r} of step {self.step!r} holds no table file{wanted} "
                f"(it has: {listed or 'no files'}); "
                "read() reads CSV, TSV, Parquet and JSON lines (.jsonl), gzipped or not: "
                f"open the files at {self.path} yourself"
            )
        try:
            frames = [read_frame(path) for path in tables]
        except UnreadableTableError as exc:
            raise NotTabularError(f"output {self.name!r} of step {self.step!r}: {exc}") from None
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


class StepOutputs(Mapping[str, StepOutput]):
    """A step's outputs by name; a wrong name says which names there are."""

    def __init__(self, step: str, outputs: dict[str, StepOutput], missing_reason: str | None = None) -> None:
        self._step = step
        self._outputs = outputs
        self._missing_reason = missing_reason

    def __getitem__(self, name: str) -> StepOutput:
        try:
            return self._outputs[name]
        except KeyError:
            if self._missing_reason:
                raise KeyError(f"step {self._step!r} has no outputs: {self._missing_reason}") from None
            raise KeyError(
                f"step {self._step!r} has no output {name!r}{did_you_mean(name, self._outputs)}; "
                f"its outputs are: {', '.join(self._outputs) or '(none)'}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{name!r}: {output!r}" for name, output in self._outputs.items()) + "}"


@dataclass
class StepRun:
    """One step of a notebook run: outcome, failure, metrics, outputs."""

    record: ReportedStep
    result: StepResult | None  # None when the step did not run (an upstream step failed)
    upstream: dict[str, StepRun] = field(default_factory=dict)  # run_step: steps produced for it
    # the step's secrets, masked in the logs it hands out (the log files keep the script's bytes)
    secrets: SecretScrubber = field(default_factory=SecretScrubber)

    @property
    def name(self) -> str:
        return self.record.step

    @property
    def scenario(self) -> str:
        return self.record.scenario

    @property
    def outcome(self) -> ItemOutcome:
        return self.record.outcome

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def cached(self) -> bool:
        return self.record.cached

    @property
    def failure(self) -> StepFailure | None:
        return self.record.failure

    @property
    def metrics(self) -> StepMetrics | None:
        return self.record.metrics

    @property
    def workspace(self) -> Path | None:
        return Path(self.record.workspace) if self.record.workspace else None

    @property
    def outputs(self) -> StepOutputs:
        if self.result is None:
            return StepOutputs(self.name, {}, self.record.skip_reason or "it did not run")
        return StepOutputs(
            self.name,
            {
                name: StepOutput(self.name, name, Path(path), self.result.output_files.get(name, []))
                for name, path in self.result.outputs.items()
            },
        )

    @property
    def stdout(self) -> str:
        """What the script printed, secret values masked."""
        return self.secrets.text(_read_log(self.record.stdout_path))

    @property
    def stderr(self) -> str:
        """What the script wrote to stderr, secret values masked."""
        return self.secrets.text(_read_log(self.record.stderr_path))

    def failure_text(self) -> str | None:
        """The failure as pytest shows it (message, script traceback, stderr tail, workspace)."""
        if self.result is not None and not self.result.passed:
            return describe_failure(self.result)
        if self.result is None:
            return f"step {self.name!r} of scenario {self.scenario!r} did not run: {self.record.skip_reason}"
        return None

    def __str__(self) -> str:
        steps = [*(run.record for run in self.upstream.values()), self.record]
        lines = [f"step {self.name} of scenario {self.scenario}: {self._headline()}", *scenario_table(steps)]
        failures = [run.failure_text() for run in (*self.upstream.values(), self) if not run.passed]
        return "\n".join(lines + [text for text in failures if text])

    __repr__ = __str__

    def _headline(self) -> str:
        return self.outcome + (" (cached)" if self.cached else "")

    def _repr_html_(self) -> str:
        records = [*(run.record for run in self.upstream.values()), self.record]
        parts = [
            STYLE + NOTEBOOK_STYLE,
            f'<div class="cursus-notebook" data-step="{escape(self.name)}">',
            f"<h3>Step {escape(self.name)} of scenario {escape(self.scenario)}: {escape(self._headline())}</h3>",
            f'<div class="cursus-dag-box">{dag_svg(dag_nodes(records), title=f"DAG of {self.scenario}")}</div>',
            _steps_table(records),
            step_details(self.record),
            "</div>",
        ]
        return "".join(parts)


@dataclass
class ScenarioRun:
    """Every step of a scenario run by ``run_scenario``, in DAG order; ``result["step"]``."""

    plan: ScenarioPlan
    steps: dict[str, StepRun]
    workspace: Path
    options: CursusOptions  # what it ran with; run_step(result, ...) reuses them
    hooks: ExtensionHooks

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def path(self) -> Path:
        return self.plan.path

    @property
    def passed(self) -> bool:
        return all(step.passed for step in self.steps.values())

    @property
    def failed(self) -> list[StepRun]:
        return [step for step in self.steps.values() if step.outcome == "failed"]

    def __getitem__(self, step: str) -> StepRun:
        try:
            return self.steps[step]
        except KeyError:
            raise KeyError(
                f"scenario {self.name!r} has no step {step!r}{did_you_mean(step, self.steps)}; "
                f"its steps are: {', '.join(self.steps)}"
            ) from None

    def __iter__(self) -> Iterator[StepRun]:
        return iter(self.steps.values())

    def __len__(self) -> int:
        return len(self.steps)

    def __contains__(self, step: object) -> bool:
        return step in self.steps

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for step in self.steps.values():
            counts[step.outcome] = counts.get(step.outcome, 0) + 1
        cached = sum(1 for step in self.steps.values() if step.cached)
        text = ", ".join(f"{count} {outcome}" for outcome, count in counts.items())
        return text + (f" ({cached} cached)" if cached else "")

    def __str__(self) -> str:
        lines = [
            f"scenario {self.name} ({self.path}): {self.summary()}",
            *scenario_table([s.record for s in self.steps.values()]),
        ]
        for step in self.steps.values():
            text = step.failure_text()
            if text:
                lines += ["", text]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        records = [step.record for step in self.steps.values()]
        parts = [
            STYLE + NOTEBOOK_STYLE,
            f'<div class="cursus-notebook" data-scenario="{escape(self.name)}">',
            f"<h3>Scenario {escape(self.name)}: {escape(self.summary())}</h3>",
            f'<div class="cursus-dag-box">{dag_svg(dag_nodes(records), title=f"DAG of {self.name}")}</div>',
            _steps_table(records),
        ]
        for step in self.steps.values():
            if step.outcome != "passed":
                parts.append(
                    f'<h4 class="cursus-failure">{escape(step.name)}: {escape(step.outcome)}</h4>'
                    f"{step_details(step.record)}"
                )
        parts.append("</div>")
        return "".join(parts)


def step_run(
    plan: ScenarioPlan,
    step: str,
    result: StepResult | None,
    *,
    skip_reason: str | None = None,
    as_setup: bool = False,
    step_plan: StepPlan | None = None,
) -> StepRun:
    """A ``StepRun`` built the way the pytest-html report builds its step records;
    ``step_plan``: the step as it ran (after ``pytest_cursus_adjust_step``)."""
    outcome: ItemOutcome = "skipped" if result is None else "passed" if result.passed else "failed"
    step_plan = step_plan or plan.steps[step]
    secrets = SecretScrubber.for_step(step_plan.env, step_plan.secrets)
    record = reported_step(
        step_plan,
        scenario_file=str(plan.path),
        position=list(plan.steps).index(step),
        outcome=outcome,
        result=result,
        as_setup=as_setup,
        skip_reason=skip_reason,
    )
    return StepRun(record, result, secrets=secrets)


def _steps_table(records: list[ReportedStep]) -> str:
    header = "".join(
        f"<th>{title}</th>"
        for title in ("step", "outcome", "cache", "wall", "CPU", "peak memory", "rows out", "outputs")
    )
    rows = []
    for record in records:
        metrics = record.metrics
        outputs = ", ".join(f"{name} ({_size(output.bytes)})" for name, output in record.outputs.items())
        cells = (
            f"<b>{escape(record.step)}</b>" + (" <small>(setup)</small>" if record.as_setup else ""),
            f'<span class="cursus-outcome-{escape(record.outcome)}">{escape(record.outcome)}</span>',
            "cached" if record.cached else ("ran" if metrics else "-"),
            f"{metrics.wall_seconds:.2f} s" if metrics else "-",
            f"{metrics.cpu_seconds:.2f} s" if metrics else "-",
            f"{metrics.peak_rss_mb:.1f} MB" if metrics else "-",
            f"{record.rows_out:,}" if record.rows_out is not None else "-",
            escape(outputs) or "-",
        )
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f'<table class="cursus-metrics cursus-steps"><tr>{header}</tr>{"".join(rows)}</table>'


def _read_log(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _size(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value} B"
