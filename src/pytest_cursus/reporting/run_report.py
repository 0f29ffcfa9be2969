"""The ``--cursus-json`` document: every step of a run with its metrics, outcome and cache status.

One pydantic model is the format: the plugin writes it, ``--cursus-baseline`` and
``cursus-runtime compare|trend`` read it. ``schema_version`` changes when a field changes
meaning or goes away (adding optional fields does not change it); readers reject versions they
do not know with a message saying which one they found. The format is documented field by field
in docs/reports.md.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_cursus.data.profile_comparison import ProfileComparison
from pytest_cursus.results import OutputFile, StepFailure, StepMetrics, StepResult

SCHEMA_VERSION = 1
FORMAT_NAME: Literal["pytest-cursus-run"] = "pytest-cursus-run"
OUTPUT_LISTING_LIMIT = 200  # files listed per output; totals always cover every file
VERSIONED_PACKAGES = (
    "pytest-cursus",
    "pytest",
    "pandas",
    "numpy",
    "pyarrow",
    "pydantic",
    "psutil",
    "pytest-xdist",
    "pytest-html",
)

ItemOutcome = Literal["passed", "failed", "skipped", "error"]
RecommendationKind = Literal[
    "memory_near_limit", "cpu_bound_one_core", "io_bound", "output_larger_than_input", "near_timeout"
]


class OutputRecord(BaseModel):
    path: str
    files: int
    bytes: int
    rows: int | None = None  # summed over the output's table files; None when none is readable
    listing: list[OutputFile] = Field(default_factory=list)  # the first OUTPUT_LISTING_LIMIT files
    listing_truncated: bool = False


class Recommendation(BaseModel):
    kind: RecommendationKind
    message: str


class BaselineCheck(BaseModel):
    """This run's step against the same step (scenario and step name) of a baseline run."""

    baseline_file: str
    status: Literal["ok", "regressed", "not_compared"]
    reason: str | None = None  # why not compared
    old_wall_seconds: float | None = None
    new_wall_seconds: float | None = None
    time_ratio: float | None = None
    old_peak_rss_bytes: int | None = None
    new_peak_rss_bytes: int | None = None
    memory_ratio: float | None = None
    regressed: list[Literal["time", "memory"]] = Field(default_factory=list)


class StepRecord(BaseModel):
    """One step of the run: its own test item's outcome, or a step run only as another's setup."""

    model_config = ConfigDict(extra="ignore")

    scenario: str
    scenario_file: str
    step: str
    nodeid: str | None = None  # None: run as setup of a selected item, not selected itself
    position: int = 0  # the step's place in its scenario's DAG order
    upstream: list[str] = Field(default_factory=list)
    outcome: ItemOutcome
    as_setup: bool = False
    cached: bool = False
    cache_key: str | None = None
    # why it ran and was not cached: "script changed", "inputs changed: data_input", "not in cache", ...
    run_reason: str | None = None
    failure: StepFailure | None = None
    # what a container allows but the user should know (writes into input copies, unmet pip pins)
    notes: list[str] = Field(default_factory=list)
    skip_reason: str | None = None
    metrics: StepMetrics | None = None  # None when the step never ran (skipped, setup error)
    outputs: dict[str, OutputRecord] = Field(default_factory=dict)
    timeout_seconds: float | None = None
    max_memory_mb: float | None = None
    env: dict[str, str] = Field(default_factory=dict)  # secret values masked
    workspace: str | None = None
    stdout_path: str | None = None
    stderr_path: str | None = None
    stderr_tail: str = ""
    baseline: BaselineCheck | None = None
    recommendations: list[Recommendation] = Field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.scenario, self.step)

    @property
    def rows_out(self) -> int | None:
        counted = [output.rows for output in self.outputs.values() if output.rows is not None]
        return sum(counted) if counted else None

    @property
    def bytes_out(self) -> int:
        return sum(output.bytes for output in self.outputs.values())


class ScriptlessNode(BaseModel):
    """A node of a DAG scenario that runs no script (docs/dag.md): a data source, whose outputs reach
    the steps reading them from the scenario's ``data:``, or a node not run at all (a registration sink)."""

    model_config = ConfigDict(extra="ignore")

    scenario: str
    scenario_file: str
    node: str
    role: Literal["data source", "not run"]
    reason: str
    upstream: list[str] = Field(default_factory=list)  # its upstream nodes in the DAG
    read_by: list[str] = Field(default_factory=list)  # the steps reading its outputs (a data source)


class ReportedStep(StepRecord):
    """A ``StepRecord`` as carried on a test report, with excerpts of the step's logs for the
    HTML report (masked) and its scenario's nodes that run no script (so they cross xdist's process
    boundary); neither is part of a step in the JSON document."""

    stdout_excerpt: str = ""
    stderr_excerpt: str = ""
    scriptless_nodes: list[ScriptlessNode] = Field(default_factory=list)

    def record(self) -> StepRecord:
        return StepRecord.model_validate(
            self.model_dump(exclude={"stdout_excerpt", "stderr_excerpt", "scriptless_nodes"})
        )


class RunReport(BaseModel):
    """The whole ``--cursus-json`` document."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["pytest-cursus-run"] = FORMAT_NAME
    schema_version: int = SCHEMA_VERSION
    created: str = Field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    )
    versions: dict[str, str] = Field(default_factory=dict)
    machine: dict[str, str | int] = Field(default_factory=dict)
    steps: list[StepRecord] = Field(default_factory=list)
    # synthetic vs real data profiles, one per real dataset compared (docs/s3.md)
    profile_comparisons: list[ProfileComparison] = Field(default_factory=list)
    # the DAG scenarios' nodes that run no script: data sources and nodes not run (docs/dag.md)
    scriptless_nodes: list[ScriptlessNode] = Field(default_factory=list)

    def by_key(self) -> dict[tuple[str, str], StepRecord]:
        return {step.key: step for step in self.steps}


class RunReportError(ValueError):
    pass


def output_records(result: StepResult) -> dict[str, OutputRecord]:
    records = {}
    for name, (files, size, rows) in result.output_totals().items():
        listing = result.output_files.get(name, [])
        records[name] = OutputRecord(
            path=result.outputs.get(name, ""),
            files=files,
            bytes=size,
            rows=rows,
            listing=listing[:OUTPUT_LISTING_LIMIT],
            listing_truncated=len(listing) > OUTPUT_LISTING_LIMIT,
        )
    return records


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def machine() -> dict[str, str | int]:
    return {"platform": platform.platform(), "cpu_count": os.cpu_count() or 1, "python_executable": sys.executable}


def read_run_report(path: Path) -> RunReport:
    """Load a ``--cursus-json`` file; any problem is a ``RunReportError`` naming the file and field."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RunReportError(f"{path}: cannot read the run report ({exc.strerror or exc})") from None

    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise RunReportError(f"{path}: not JSON ({exc}); expected a file written by --cursus-json") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise RunReportError(
            f"{path}: expected format {FORMAT_NAME!r} (a file written by --cursus-json), found format={found!r}"
        )
    if document.get("schema_version") != SCHEMA_VERSION:
        raise RunReportError(
            f"{path}: schema_version {document.get('schema_version')!r} is not one this version reads "
            f"(expected {SCHEMA_VERSION}); regenerate it with this version's --cursus-json"
        )
    try:
        return RunReport.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RunReportError(f"{path}: field {where}: {first['msg']} (found {first.get('input')!r:.80})") from None


def write_run_report(report: RunReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    temporary.replace(path)
