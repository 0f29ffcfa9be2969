"""The plugin's options: one table, registered both as ``--cursus-*`` flags and ``cursus_*`` ini
keys (the command line wins), and read into a plain ``CursusOptions`` the engine understands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pytest_cursus.checks.edge_checks import EDGE_SAMPLE_FILES
from pytest_cursus.data.execution_outputs import DEFAULT_LAYOUT, check_layout
from pytest_cursus.data.s3.access import DEFAULT_CACHE_MAX_MB as DEFAULT_S3_CACHE_MAX_MB
from pytest_cursus.data.s3.access import DEFAULT_CONCURRENCY
from pytest_cursus.data.s3.uri import check_s3_uri
from pytest_cursus.plan.options import (
    DEFAULT_TIMEOUT_S,
    PIP_POLICIES,
    SOURCE_VARIANTS,
    PlanOptions,
)  # not scenario_plan: its models and YAML wait for a scenario
from pytest_cursus.project_root import STEP_CACHE_DEFAULT_MAX_MB as DEFAULT_MAX_MB
from pytest_cursus.reporting.regression_thresholds import (
    DEFAULT_MAX_MEMORY_RATIO,
    DEFAULT_MAX_TIME_RATIO,
    DEFAULT_MIN_MEMORY_INCREASE_MB,
    DEFAULT_MIN_TIME_INCREASE_S,
    Thresholds,
)
from pytest_cursus.run.sharding import Shard

RUN_MODES = ("pipeline", "isolation", "both")
DEFAULT_PROGRESS_AFTER_S = 5.0
OptionKind = Literal["paths", "path", "choice", "float", "int", "text", "flag"]


@dataclass(frozen=True)
class OptionSpec:
    name: str  # `scenarios` -> --cursus-scenarios / cursus_scenarios
    kind: OptionKind
    help: str
    choices: tuple[str, ...] = ()
    default: Any = None
    metavar: str | None = None
    check: Callable[[str], Any] | None = None  # for "text": validates (ValueError) and converts

    @property
    def flag(self) -> str:
        return "--cursus-" + self.name.replace("_", "-")

    @property
    def ini_name(self) -> str:
        return "cursus_" + self.name


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise ValueError(f"expected 1 or more, got {value!r}")
    return number


def check_endpoint(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


def module_names(value: str) -> tuple[str, ...]:
    names = tuple(name for name in value.replace(",", " ").split() if name)
    for name in names:
        if not all(part.isidentifier() for part in name.split(".")):
            raise ValueError(f"expected dotted module names separated by commas, got {name!r}")
    return names


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("scenarios", "paths", "directory or file of scenario YAML to collect (repeatable)", metavar="DIR"),
    OptionSpec(
        "contracts",
        "paths",
        "directory or file searched for contracts, added to every scenario's 'contracts:' (repeatable)",
        metavar="DIR",
    ),
    OptionSpec(
        "scripts",
        "paths",
        "directory searched for entry-point scripts, added to every scenario's 'scripts:' (repeatable)",
        metavar="DIR",
    ),
    OptionSpec(
        "source",
        "choice",
        "which variant of each data source feeds root inputs (default: synthetic)",
        choices=SOURCE_VARIANTS,
        default="synthetic",
    ),
    OptionSpec(
        "workspace",
        "path",
        "where step workspaces are written (default: a 'cursus' directory under pytest's basetemp)",
        metavar="DIR",
    ),
    OptionSpec(
        "timeout",
        "float",
        f"default per-step timeout in seconds when a scenario sets none (default: {DEFAULT_TIMEOUT_S:g})",
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
    ),
    OptionSpec(
        "max_memory_mb",
        "float",
        "default per-step memory limit (peak RSS of the process tree) when a scenario sets none (default: no limit)",
        metavar="MB",
    ),
    OptionSpec(
        "no_cache",
        "flag",
        "run every step even when the step cache holds its outputs (steps still run once per run under xdist)",
        default=False,
    ),
    OptionSpec(
        "edge_sample",
        "int",
        f"table files of an upstream output whose schema a compat[...] edge item reads (default: {EDGE_SAMPLE_FILES}; "
        "every file's size is still checked); 0 reads every table file",
        default=EDGE_SAMPLE_FILES,
        metavar="N",
    ),
    OptionSpec(
        "cache_dir",
        "path",
        "where the step cache lives (default: 'cursus-steps' under pytest's cache directory; --cache-clear empties it)",
        metavar="DIR",
    ),
    OptionSpec(
        "mode",
        "choice",
        "pipeline: steps on their upstream's outputs (DAG order); "
        "isolation: each step alone on data generated from its contract's data: schemas; both (default: pipeline)",
        choices=RUN_MODES,
        default="pipeline",
    ),
    OptionSpec(
        "fuzz",
        "int",
        "add a [fuzz] item per step: N examples of generated data from its inputs' schemas (hypothesis); "
        "0 turns off the fuzz: blocks of scenarios too",
        metavar="N",
    ),
    OptionSpec(
        "fuzz_seed",
        "int",
        "the random seed of every [fuzz] item: the same datasets every run, as a failure's seed replays them "
        "(default: a fuzz: block's seed, else a new one each run, printed)",
        metavar="N",
    ),
    OptionSpec(
        "fuzz_replay",
        "paths",
        "run the [fuzz] item of the step a saved failing example belongs to once, on that example "
        "(a directory printed by a failing [fuzz] item; repeatable)",
        metavar="DIR",
    ),
    OptionSpec(
        "cache_max_mb",
        "float",
        f"size cap of the step cache; least recently used entries are evicted (default: {DEFAULT_MAX_MB})",
        default=float(DEFAULT_MAX_MB),
        metavar="MB",
    ),
    OptionSpec(
        "preload",
        "text",
        "modules the warm executor imports once before forking steps, "
        "besides the third-party modules found in the scripts' top-level imports (comma-separated)",
        default=(),
        metavar="MODULES",
        check=module_names,
    ),
    OptionSpec(
        "no_preload",
        "flag",
        "start each step in a fresh Python interpreter instead of forking it from a warm parent "
        "that imported its third-party modules once",
        default=False,
    ),
    OptionSpec(
        "inputs_read_only",
        "flag",
        "fail a step that writes into its own copy of an input (default: allowed and noted, as in a SageMaker "
        "container); a scenario's or step's inputs_read_only: wins",
        default=False,
    ),
    OptionSpec(
        "pip",
        "choice",
        "what a pip install a script runs does: check (install nothing, note a requirement the environment does "
        "not meet), strict (fail the step on it), allow (let pip install) (default: check)",
        choices=PIP_POLICIES,
        default="check",
    ),
    OptionSpec(
        "debug",
        "flag",
        "run each selected step's main() in the pytest process itself, so --pdb and breakpoint() work; "
        "gives up isolation and limits (upstream steps run as usual)",
        default=False,
    ),
    OptionSpec(
        "watch",
        "flag",
        "after the run, keep watching the scenarios' scripts, the modules they import from the scenario's roots, "
        "contracts, scenario files and file: data, and rerun what a change affects (Ctrl-C ends it; needs the "
        "watch extra)",
        default=False,
    ),
    OptionSpec(
        "s3_endpoint",
        "text",
        "endpoint URL for S3 (MinIO, a moto server); default: boto3's own",
        metavar="URL",
        check=check_endpoint,
    ),
    OptionSpec(
        "s3_cache_dir",
        "path",
        "where downloaded S3 objects are cached, by bucket, key and ETag (default: 'cursus-s3' under pytest's cache "
        "directory; --cache-clear empties it, --cursus-no-cache bypasses it)",
        metavar="DIR",
    ),
    OptionSpec(
        "s3_cache_max_mb",
        "float",
        "size cap of the S3 download cache; least recently used objects are evicted at the end of the session "
        f"(default: {DEFAULT_S3_CACHE_MAX_MB})",
        default=float(DEFAULT_S3_CACHE_MAX_MB),
        metavar="MB",
    ),
    OptionSpec(
        "s3_concurrency",
        "text",
        f"S3 transfers run at once (default: {DEFAULT_CONCURRENCY})",
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        check=positive_int,
    ),
    OptionSpec(
        "execution",
        "text",
        "s3:// prefix where a real pipeline execution wrote its step outputs: "
        "inputs that reference upstream steps read them instead of running those steps (docs/s3.md)",
        metavar="URI",
        check=check_s3_uri,
    ),
    OptionSpec(
        "execution_layout",
        "text",
        f"template of an execution output's URI (default: {DEFAULT_LAYOUT}; "
        "placeholders: {prefix} {step} {output} {contract} {scenario})",
        metavar="TEMPLATE",
        check=check_layout,
    ),
    OptionSpec(
        "progress_after",
        "float",
        f"without -v, print a step's finished line only when it ran longer than this (default: "
        f"{DEFAULT_PROGRESS_AFTER_S:g}); -v prints every step's started and finished lines",
        default=DEFAULT_PROGRESS_AFTER_S,
        metavar="SECONDS",
    ),
    OptionSpec(
        "keep_logs",
        "path",
        "copy each failed step's logs (stdout.log, stderr.log, report.json) to DIR/<scenario>/<step>/, "
        "where they outlive pytest's basetemp (default: 'cursus-logs' under pytest's cache directory, "
        "the logs of each step whose latest run failed)",
        metavar="DIR",
    ),
    OptionSpec(
        "json",
        "path",
        "write every step's metrics, outcome and cache status to this JSON file (schema: docs/reports.md)",
        metavar="PATH",
    ),
    OptionSpec(
        "baseline",
        "path",
        "compare with an earlier --cursus-json file; a step regressing beyond the ratios below fails "
        "(steps run instead of coming from the step cache, whose numbers are old)",
        metavar="PATH",
    ),
    OptionSpec(
        "shard",
        "text",
        "run only shard I of N (0 <= I < N) of the collected files, whole scenario files balanced by "
        "--cursus-shard-durations: N runners together run every item once",
        metavar="I/N",
        check=Shard.parse,
    ),
    OptionSpec(
        "shard_durations",
        "path",
        "a --cursus-json report of an earlier full run whose step durations balance the shards "
        "(give every runner the same file; default: every step counts the same)",
        metavar="PATH",
    ),
    OptionSpec(
        "baseline_strict",
        "flag",
        "baseline: also fail a step that could not be compared (missing from the baseline, or failed or cached in it)",
        default=False,
    ),
    OptionSpec(
        "max_time_ratio",
        "float",
        f"baseline: fail a step whose wall time grew more than this factor (default: {DEFAULT_MAX_TIME_RATIO:g})",
        default=DEFAULT_MAX_TIME_RATIO,
        metavar="RATIO",
    ),
    OptionSpec(
        "max_memory_ratio",
        "float",
        f"baseline: fail a step whose peak memory grew more than this factor (default: {DEFAULT_MAX_MEMORY_RATIO:g})",
        default=DEFAULT_MAX_MEMORY_RATIO,
        metavar="RATIO",
    ),
    OptionSpec(
        "min_time_increase",
        "float",
        f"baseline: ignore wall time increases up to this many seconds (default: {DEFAULT_MIN_TIME_INCREASE_S:g})",
        default=DEFAULT_MIN_TIME_INCREASE_S,
        metavar="SECONDS",
    ),
    OptionSpec(
        "min_memory_increase_mb",
        "float",
        f"baseline: ignore peak memory increases up to this many MB (default: {DEFAULT_MIN_MEMORY_INCREASE_MB:g})",
        default=DEFAULT_MIN_MEMORY_INCREASE_MB,
        metavar="MB",
    ),
)


@dataclass(frozen=True)
class CursusOptions:
    scenarios: tuple[Path, ...] = ()
    contracts: tuple[Path, ...] = ()
    scripts: tuple[Path, ...] = ()
    source: str = "synthetic"
    workspace: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    max_memory_mb: float | None = None
    no_cache: bool = False
    edge_sample: int = EDGE_SAMPLE_FILES
    preload: tuple[str, ...] = ()
    no_preload: bool = False
    debug: bool = False
    watch: bool = False
    inputs_read_only: bool = False
    pip: str = "check"
    cache_dir: Path | None = None
    cache_max_mb: float = float(DEFAULT_MAX_MB)
    s3_endpoint: str | None = None
    s3_cache_dir: Path | None = None
    s3_cache_max_mb: float = float(DEFAULT_S3_CACHE_MAX_MB)
    s3_concurrency: int = DEFAULT_CONCURRENCY
    execution: str | None = None
    execution_layout: str | None = None
    mode: str = "pipeline"
    fuzz: int | None = None  # None: only steps with a fuzz: block; 0: none
    fuzz_seed: int | None = None  # None: a fuzz: block's seed, else a new one per item
    fuzz_replay: tuple[Path, ...] = ()
    progress_after: float = DEFAULT_PROGRESS_AFTER_S
    keep_logs: Path | None = None
    json: Path | None = None
    baseline: Path | None = None
    baseline_strict: bool = False
    shard: Shard | None = None
    shard_durations: Path | None = None
    max_time_ratio: float = DEFAULT_MAX_TIME_RATIO
    max_memory_ratio: float = DEFAULT_MAX_MEMORY_RATIO
    min_time_increase: float = DEFAULT_MIN_TIME_INCREASE_S
    min_memory_increase_mb: float = DEFAULT_MIN_MEMORY_INCREASE_MB

    def thresholds(self) -> Thresholds:
        return Thresholds(
            self.max_time_ratio, self.max_memory_ratio, self.min_time_increase, self.min_memory_increase_mb
        )

    def plan_options(self) -> PlanOptions:
        return PlanOptions(
            contracts=self.contracts,
            scripts=self.scripts,
            source=self.source,
            timeout=self.timeout,
            max_memory_mb=self.max_memory_mb,
            execution=self.execution,
            execution_layout=self.execution_layout,
            inputs_read_only=self.inputs_read_only,
            pip=self.pip,  # type: ignore[arg-type]  # checked against PIP_POLICIES
        )


class OptionError(ValueError):
    pass


def resolve_options(
    command_line: Callable[[str], Any], ini: Callable[[str], Any], *, invocation_dir: Path, ini_dir: Path
) -> CursusOptions:
    """Build ``CursusOptions``: each value from the command line if given, else the ini file."""
    values: dict[str, Any] = {}
    for spec in OPTIONS:
        given = command_line(spec.name)
        base = invocation_dir
        if given is None or given == []:
            given = ini(spec.name)
            base = ini_dir
        values[spec.name] = convert_value(spec, given, base)
    return CursusOptions(**values)


def convert_value(spec: OptionSpec, value: Any, base: Path) -> Any:
    """An option's value from the command line, an ini file or a keyword, converted and checked
    (relative paths against ``base``); ``OptionError`` names the flag and ini key."""
    if value is None or value == "" or value == []:
        return () if spec.kind == "paths" else spec.default
    if spec.kind == "flag":
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise OptionError(f"{spec.ini_name}: expected true or false, got {value!r}")
    if spec.kind == "paths":
        items = value.split() if isinstance(value, str) else value
        return tuple((base / str(item)).resolve() for item in items)
    if spec.kind == "path":
        return (base / str(value)).resolve()
    if spec.kind == "int":
        try:
            whole = int(str(value))
        except ValueError:
            raise OptionError(f"{spec.flag} / {spec.ini_name}: expected a whole number, got {value!r}") from None
        if whole < 0:
            raise OptionError(f"{spec.flag} / {spec.ini_name}: expected 0 or more, got {value!r}")
        return whole
    if spec.kind == "text":
        try:
            return spec.check(str(value)) if spec.check else str(value)
        except ValueError as exc:
            raise OptionError(f"{spec.flag} / {spec.ini_name}: {exc}") from None
    if spec.kind == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise OptionError(f"{spec.flag} / {spec.ini_name}: expected a number, got {value!r}") from None
        if number <= 0:
            raise OptionError(f"{spec.flag} / {spec.ini_name}: expected a positive number, got {value!r}")
        return number
    if value not in spec.choices:
        raise OptionError(f"{spec.flag} / {spec.ini_name}: expected one of {', '.join(spec.choices)}, got {value!r}")
    return value
