"""Property-based fuzzing of a step: run its script on many small datasets made from its inputs'
schemas, and when it fails, shrink the data to a minimal failing example.

    >>> fuzzer = StepFuzzer(StepRunner(workspace / "_fuzz"), database=cache / "cursus-hypothesis")
    >>> report = fuzzer.run(step_plan, {"DATA": schema}, fixed_inputs={}, examples=50, max_rows=20,
    ...                     key="scenarios/x.yaml::train")  # doctest: +SKIP
    >>> report.failure.tables["DATA"]  # doctest: +SKIP

Each example is a real run of the script in its own child process (the same ``StepRunner`` as a
pipeline step), so an example costs a process start and the script's imports.

The data honours each column's schema (type, ``min``/``max``, ``values``, ``min_length``/
``max_length``, ``start``/``end``, ``unique``) and deliberately reaches the edge cases real data
has: zero rows and one row (the shortest examples come first), a column entirely null (only
where the column declares ``nulls``), one value in every row (a single class in a label),
values repeated across rows where ``unique`` is not set, unicode strings, empty strings where
``min_length`` is 0, and extreme and special floats (``inf``, ``-inf``, ``1e308``, ``-0.0``,
the smallest subnormal; ``nan`` where the column declares ``nulls``) on the sides of a float
column's range that are left open. Two of them do not depend on chance: a one-row dataset with
every nullable column of an input null is tried before any generated one
(:func:`null_edge_datasets`), and the first generated dataset is the simplest, with zero rows.

Every run has a seed (:attr:`FuzzReport.seed`): given one, the datasets are those of any other
run with that seed (the same schemas, budget and hypothesis version), after the failing examples
the database saved; without one, a new seed is drawn and reported.

Caveats:
    * Weights of a category are not followed: every value is as likely, so rare classes appear.
    * Distinct datasets are run once: hypothesis may produce the same data from different
      choices, and an already-seen dataset reuses its result.
    * Shrinking stops after :data:`SHRINK_RUN_BUDGET` script runs: from then on, data not seen
      before is taken to pass, so the example reported is the smallest found within the budget.
      It is always one the script really failed on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import example as explicit_example
from hypothesis import seed as fixed_seed
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky

from pytest_cursus.data.schema import ColumnSpec, SyntheticSpec
from pytest_cursus.data.synthetic import arrow_type, synthetic_file_names, write_table
from pytest_cursus.execution.step_runner import StepRunner
from pytest_cursus.execution.workspace import fresh_directory
from pytest_cursus.formats.scenario_file import FuzzInputEdges
from pytest_cursus.plan.input_schemas import InputSchema
from pytest_cursus.plan.scenario_plan import StepPlan
from pytest_cursus.results import StepResult
from pytest_cursus.run.layout_mismatch import fuzz_layout_mismatch

DEFAULT_EXAMPLES = 50
DEFAULT_MAX_ROWS = 20
SHRINK_RUN_BUDGET = 80
TABLE_PREVIEW_ROWS = 20
EXAMPLE_FILE = "example.json"

_INT64 = (-(2**63), 2**63 - 1)
_DATETIME_RANGE = (dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59))
_TEXT = st.characters(exclude_categories=("Cs", "Cc"))  # no surrogates, no control characters
_SMALLEST_SUBNORMAL = 5e-324


# --- strategies -------------------------------------------------------------------------------


ALL_EDGES = FuzzInputEdges()


def value_strategy(column: ColumnSpec, edges: FuzzInputEdges = ALL_EDGES) -> st.SearchStrategy[Any]:
    """One non-null value of ``column``, within what its schema declares."""
    if column.type == "int":
        low = _INT64[0] if column.min is None else int(column.min)
        high = _INT64[1] if column.max is None else int(column.max)
        return st.integers(low, high)
    if column.type == "float":
        return _float_strategy(column, edges)
    if column.type == "bool":
        return st.booleans()
    if column.type == "category":
        return st.sampled_from(column.category_domain()[0])
    if column.type == "string":
        return st.text(_TEXT, min_size=column.min_length, max_size=column.max_length)
    start = column.start or _DATETIME_RANGE[0]
    end = column.end or _DATETIME_RANGE[1]
    return st.datetimes(min_value=start, max_value=end).map(lambda moment: moment.replace(microsecond=0))


def _float_strategy(column: ColumnSpec, edges: FuzzInputEdges) -> st.SearchStrategy[float]:
    low = None if column.min is None else float(column.min)
    high = None if column.max is None else float(column.max)
    specials = [0.0]
    if edges.special_floats:
        specials += [_SMALLEST_SUBNORMAL, -_SMALLEST_SUBNORMAL, 1e308, -1e308]
        specials += [-0.0] if (low is None or low <= 0) and (high is None or high >= 0) else []
        specials += [math.inf] if high is None else []
        specials += [-math.inf] if low is None else []
    specials += [math.nan] if column.nulls > 0 and edges.nulls else []
    within = [
        value
        for value in specials
        if math.isnan(value) or ((low is None or value >= low) and (high is None or value <= high))
    ]
    finite = st.floats(
        min_value=low,
        max_value=high,
        allow_nan=False,
        allow_infinity=(low is None or high is None) and edges.special_floats,
        allow_subnormal=edges.special_floats,
    )
    return st.one_of(finite, st.sampled_from(within)) if within else finite


def shape_strategy(column: ColumnSpec, edges: FuzzInputEdges = ALL_EDGES) -> st.SearchStrategy[str]:
    """How a column's values are laid out over the rows.

    Values drawn one by one, one value in every row (a single class), a few values repeated
    (duplicates), or all nulls; in that order of simplicity, so shrinking keeps an all-null
    column only when the failure needs it. ``edges`` turns the single value and all nulls off.
    """
    shapes = ["varied"]
    if not column.unique:
        shapes += ["constant", "repeats"] if edges.single_value else ["repeats"]
    if column.nulls > 0 and edges.nulls:
        shapes += ["all_null"]
    return st.sampled_from(shapes)


@st.composite
def column_strategy(
    draw: st.DrawFn, column: ColumnSpec, rows: int, shape: str, edges: FuzzInputEdges = ALL_EDGES
) -> list[Any]:
    """The values of one column of ``shape`` over ``rows`` rows (``None`` is null)."""
    values = value_strategy(column, edges)
    if shape == "all_null":
        return [None] * rows
    if shape == "constant":
        return [draw(values)] * rows
    if shape == "repeats":
        if edges.single_value or (column.distinct_values() or 2) < 2:
            pool = draw(st.lists(values, min_size=1, max_size=3))
        else:  # two distinct values at least: never one value in every row
            pool = draw(st.lists(values, min_size=2, max_size=3, unique_by=_identity))
        drawn = [draw(st.sampled_from(pool)) for _ in range(rows)]
    elif column.unique:
        drawn = draw(st.lists(values, min_size=rows, max_size=rows, unique_by=_identity))
    else:
        drawn = draw(st.lists(values, min_size=rows, max_size=rows))
    if column.nulls > 0 and edges.nulls:
        missing = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
        drawn = [None if gone else value for value, gone in zip(drawn, missing, strict=True)]
    return drawn


def _identity(value: Any) -> Any:
    # nan != nan: compare floats by their bits, so two nans are duplicates and 0.0/-0.0 are not
    return repr(value) if isinstance(value, float) else value


@st.composite
def table_strategy(
    draw: st.DrawFn,
    schema: InputSchema,
    max_rows: int,
    edges: FuzzInputEdges = ALL_EDGES,
    forced_shapes: Mapping[str, str] | None = None,
) -> pa.Table:
    """A table of ``schema``'s columns with ``edges.min_rows`` to ``max_rows`` rows (fewer if ``unique`` needs);
    a column of ``forced_shapes`` takes that shape instead of drawing one."""
    most = feasible_rows(schema.columns, max_rows)
    rows = draw(st.integers(min(edges.min_rows, most), most))
    # every shape before any value: fewer rows then shift only values, never which column is
    # all-null or single-valued, so the shrinker can drop rows and keep the failure
    forced = forced_shapes or {}
    shapes = {
        name: forced[name] if name in forced else draw(shape_strategy(column, edges))
        for name, column in schema.columns.items()
    }
    arrays = {
        name: pa.array(draw(column_strategy(column, rows, shapes[name], edges)), type=arrow_type(column))
        for name, column in schema.columns.items()
    }
    return pa.table(arrays)


def dataset_strategy(
    schemas: Mapping[str, InputSchema], max_rows: int, edges: Mapping[str, FuzzInputEdges] | None = None
) -> st.SearchStrategy[dict[str, pa.Table]]:
    """One table per fuzzed input; ``edges`` turns edge cases off per input."""
    edges = edges or {}
    return st.fixed_dictionaries(
        {name: table_strategy(schema, max_rows, edges.get(name, ALL_EDGES)) for name, schema in schemas.items()}
    )


@dataclass(frozen=True)
class NullEdge:
    """A dataset tried before any generated one: every column of ``input`` that declares nulls is null."""

    input: str
    tables: dict[str, pa.Table]

    @property
    def description(self) -> str:
        return f"every column of {self.input} that declares nulls is null"


def null_edge_datasets(
    schemas: Mapping[str, InputSchema], max_rows: int, edges: Mapping[str, FuzzInputEdges] | None = None
) -> list[NullEdge]:
    """One dataset per input with a column declaring ``nulls`` (unless its ``nulls`` edge is off): one row
    in each input (or ``min_rows``), that input's nullable columns all null, the rest hypothesis's simplest
    values.

    Generated data reaches an all-null column only by chance (a shape among four, in a table of one
    row or more); tried first, the bug a real all-null column brings is found on every run.
    """
    edges = edges or {}
    datasets = []
    for name, schema in schemas.items():
        nullable = {
            column: "all_null"
            for column, spec in schema.columns.items()
            if spec.nulls > 0 and edges.get(name, ALL_EDGES).nulls
        }
        if not nullable or feasible_rows(schema.columns, max_rows) == 0:
            continue
        strategy = st.fixed_dictionaries(
            {
                other: _rows_of_a_null_edge(
                    other_schema, max_rows, edges.get(other, ALL_EDGES), nullable if other == name else None
                )
                for other, other_schema in schemas.items()
            }
        )
        datasets.append(NullEdge(name, _simplest(strategy)))
    return datasets


def _rows_of_a_null_edge(
    schema: InputSchema, max_rows: int, edges: FuzzInputEdges, forced_shapes: Mapping[str, str] | None
) -> st.SearchStrategy[pa.Table]:
    """Tables of exactly one row, or ``min_rows`` (no more than ``unique`` columns allow)."""
    rows = min(max(1, edges.min_rows), feasible_rows(schema.columns, max_rows))
    return table_strategy(schema, rows, edges.model_copy(update={"min_rows": rows}), forced_shapes)


def _simplest(strategy: st.SearchStrategy[dict[str, pa.Table]]) -> dict[str, pa.Table]:
    """The first dataset hypothesis generates: the simplest one (the first of each choice, values nearest
    zero), the same on every run. ``find`` would get it too, then spend seconds shrinking what is already
    minimal. Where the simplest is not valid (several rows of a ``unique`` column cannot all be 0), the
    first valid one of a fixed seed."""
    drawn: list[dict[str, pa.Table]] = []

    @fixed_seed(0)
    @settings(
        database=None,
        max_examples=1,
        phases=(Phase.generate,),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(strategy)
    def keep(tables: dict[str, pa.Table]) -> None:
        drawn.append(tables)

    keep()
    return drawn[0]


def feasible_rows(columns: Mapping[str, ColumnSpec], max_rows: int) -> int:
    """``max_rows``, lowered so that every ``unique`` column can hold distinct values."""
    limit = max_rows
    for column in columns.values():
        if column.unique:
            distinct = column.distinct_values()
            if column.type == "int":
                low = _INT64[0] if column.min is None else int(column.min)
                high = _INT64[1] if column.max is None else int(column.max)
                distinct = high - low + 1
            if distinct is not None:
                limit = min(limit, distinct)
    return limit


# --- showing and saving an example ------------------------------------------------------------


def render_table(table: pa.Table, max_rows: int = TABLE_PREVIEW_ROWS) -> str:
    """A small aligned text table; strings quoted so that ``''`` and ``'  '`` show, nulls as ``null``."""
    names = table.column_names
    if not names:
        return "(no columns)"
    rows = [[_cell(value) for value in row.values()] for row in table.slice(0, max_rows).to_pylist()]
    widths = [max([len(name)] + [len(row[index]) for row in rows]) for index, name in enumerate(names)]
    lines = [" | ".join(name.ljust(width) for name, width in zip(names, widths, strict=True)).rstrip()]
    lines.append("-+-".join("-" * width for width in widths))
    lines += [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    if table.num_rows == 0:
        lines.append("(0 rows)")
    elif table.num_rows > max_rows:
        lines.append(f"... {table.num_rows - max_rows} more rows")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (str, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def example_file_names(schema: InputSchema) -> list[str]:
    """Where an input's table is written, relative to its directory: every file of its layout, else one part file."""
    if schema.files:
        return list(schema.files)
    spec = SyntheticSpec(rows=0, format=schema.file_format, compression=schema.compression, columns=schema.columns)  # type: ignore[arg-type]
    return synthetic_file_names(spec)[:1]


def write_example(
    tables: Mapping[str, pa.Table], schemas: Mapping[str, InputSchema], directory: Path
) -> dict[str, Path]:
    """Write each table as ``directory/<input>/part-00000.<format>`` (or once per file of the schema's
    layout); return the input directories."""
    written = {}
    for name, table in tables.items():
        schema = schemas[name]
        folder = directory / name
        for file_name in example_file_names(schema):
            write_table(table, folder / file_name, schema.file_format, schema.compression)
        written[name] = folder
    return written


@dataclass(frozen=True)
class SavedExample:
    """A failing example saved for replay: ``<dir>/example.json`` and ``<dir>/inputs/<input>/``."""

    directory: Path
    scenario_file: str
    step: str
    inputs: dict[str, Path]

    @classmethod
    def save(
        cls,
        directory: Path,
        scenario_file: Path,
        step: str,
        tables: Mapping[str, pa.Table],
        schemas: Mapping[str, InputSchema],
    ) -> SavedExample:
        if directory.exists():
            shutil.rmtree(directory)
        inputs = write_example(tables, schemas, directory / "inputs")
        record = {
            "scenario_file": str(scenario_file),
            "step": step,
            "inputs": {name: f"inputs/{name}" for name in inputs},
        }
        (directory / EXAMPLE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        return cls(directory, str(scenario_file), step, inputs)

    @classmethod
    def load(cls, directory: Path) -> SavedExample:
        """Read a saved example; ``ValueError`` says what is wrong with the directory."""
        record_path = directory / EXAMPLE_FILE
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            inputs = {str(name): directory / str(relative) for name, relative in record["inputs"].items()}
            example = cls(directory, str(record["scenario_file"]), str(record["step"]), inputs)
        except FileNotFoundError:
            raise ValueError(
                f"{directory} holds no {EXAMPLE_FILE}: expected a directory saved by a failing [fuzz] item"
            ) from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{record_path} is not a saved fuzz example: {exc}") from None
        missing = [str(path) for path in example.inputs.values() if not path.exists()]
        if missing:
            raise ValueError(f"{record_path} names input data that is missing: {', '.join(missing)}")
        return example


# --- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleTiming:
    """Where one example's time went (seconds)."""

    total: float  # in the parent: writing the data, staging, the child, judging
    child: float  # the child process, from launch to exit
    script_import: float  # importing the script inside the child
    script_main: float  # its main()

    @property
    def process_start(self) -> float:
        """Interpreter start, the runner's own imports, the report and reaping: what a warm executor saves."""
        return max(0.0, self.child - self.script_import - self.script_main)


@dataclass
class FuzzFailure:
    tables: dict[str, pa.Table]
    result: StepResult
    found_at: int  # the script run on which a failure was first seen (1-based)
    flaky: str | None = None  # set when hypothesis saw the failure but not again on replay
    layout_mismatch: str | None = None  # set when every run failed on a file the data layout does not have
    edge: str | None = None  # set when the failing dataset is a null edge (tried as is, not shrunk)


@dataclass
class FuzzReport:
    runs: int = 0  # script runs, one per distinct dataset
    examples: int = 0  # datasets hypothesis asked for (repeats included)
    saved_examples: int = 0  # failing examples of earlier runs found in the database, tried first
    seed: int = 0  # hypothesis's seed: the same seed, the same generated datasets
    edge_runs: int = 0  # script runs on the null edge datasets, before any other
    timings: list[ExampleTiming] = field(default_factory=list)
    results: list[StepResult] = field(default_factory=list)  # one per script run
    failure: FuzzFailure | None = None
    seconds: float = 0.0


class _ExampleFailed(Exception):
    """Raised inside the hypothesis test body when the script failed on an example."""


class StepFuzzer:
    """Runs one step on generated datasets with hypothesis; see the module docstring."""

    def __init__(self, runner: StepRunner, *, database: Path | None = None) -> None:
        self.runner = runner
        self.database = database

    def run_once(self, step: StepPlan, input_data: Mapping[str, Path]) -> tuple[StepResult, ExampleTiming]:
        started = time.perf_counter()
        result = self.runner.run(step, input_data)
        metrics = result.metrics
        timing = ExampleTiming(
            time.perf_counter() - started, metrics.wall_seconds, metrics.import_seconds, metrics.main_seconds
        )
        return result, timing

    def run(
        self,
        step: StepPlan,
        schemas: Mapping[str, InputSchema],
        fixed_inputs: Mapping[str, Path],
        *,
        examples: int,
        max_rows: int,
        key: str,
        edges: Mapping[str, FuzzInputEdges] | None = None,
        seed: int | None = None,
    ) -> FuzzReport:
        """Fuzz ``step``: ``schemas`` are the inputs to generate, ``fixed_inputs`` the others.

        ``key`` names the step across runs (the scenario file and step): failing examples are
        stored in the database under it and tried first next time. ``seed`` fixes the generated
        datasets (default: a new seed, reported in :attr:`FuzzReport.seed`).
        """
        report = FuzzReport(seed=secrets.randbelow(2**32) if seed is None else seed)
        last: list[tuple[dict[str, pa.Table], StepResult]] = []
        started = time.perf_counter()
        null_edges = null_edge_datasets(schemas, max_rows, edges)
        edge_names = {_digest(edge.tables): edge.description for edge in null_edges}
        example = self._example_body(step, schemas, fixed_inputs, report, last, edge_names)
        example._hypothesis_internal_add_digest = key.encode()  # type: ignore[attr-defined]
        database = DirectoryBasedExampleDatabase(str(self.database)) if self.database is not None else None
        report.saved_examples = _saved_count(database, example)
        test = _hypothesis_test(
            example,
            dataset_strategy(schemas, max_rows, edges),
            database,
            max_examples=max(1, examples - len(null_edges)),  # the null edges are part of the budget
            seed=report.seed,
            explicit=[edge.tables for edge in null_edges],
        )
        try:
            test()
        except _ExampleFailed:
            assert report.failure is not None and last
            # hypothesis replays the minimal example last: that is the one to report
            tables, result = last[0]
            report.failure = FuzzFailure(tables, result, report.failure.found_at, edge=edge_names.get(_digest(tables)))
            generated = {name: self._data_dir(step) / name for name in schemas}
            report.failure.layout_mismatch = fuzz_layout_mismatch(report.results, generated)
        except Flaky as exc:
            if report.failure is not None:
                report.failure.flaky = str(exc).splitlines()[0]
        finally:
            report.seconds = time.perf_counter() - started
        return report

    def _data_dir(self, step: StepPlan) -> Path:
        return self.runner.workspace_root / step.scenario / f"{step.name}.data"

    def _example_body(
        self,
        step: StepPlan,
        schemas: Mapping[str, InputSchema],
        fixed_inputs: Mapping[str, Path],
        report: FuzzReport,
        last: list[tuple[dict[str, pa.Table], StepResult]],
        edge_names: Mapping[str, str],
    ) -> Callable[[dict[str, pa.Table]], None]:
        """The hypothesis test body: one script run per distinct dataset, counted in ``report``.

        ``last`` keeps the dataset hypothesis tried last, with its result: after shrinking, the minimal one.
        ``edge_names`` are the digests of the null edge datasets, counted apart in ``report.edge_runs``.
        """
        data_dir = self._data_dir(step)
        seen: dict[str, StepResult] = {}

        # hypothesis keys its database by this function's source (comments and blank lines aside):
        # edit it and the failing examples that earlier runs saved are no longer tried first
        def example(tables: dict[str, pa.Table]) -> None:
            report.examples += 1
            digest = _digest(tables)
            result = seen.get(digest)
            if result is None:
                shrinking = report.failure is not None
                if shrinking and report.runs - report.failure.found_at >= SHRINK_RUN_BUDGET:  # type: ignore[union-attr]
                    return  # budget spent: unseen data counts as passing (see Caveats)
                fresh_directory(data_dir)  # refuses to delete outside a workspace the plugin created
                generated = write_example(tables, schemas, data_dir)
                result, timing = self.run_once(step, {**fixed_inputs, **generated})
                report.runs += 1
                report.edge_runs += digest in edge_names
                report.timings.append(timing)
                report.results.append(result)
                seen[digest] = result
                if not result.passed and report.failure is None:
                    report.failure = FuzzFailure(tables, result, report.runs)
            last[:] = [(tables, result)]
            if not result.passed:
                raise _ExampleFailed(result.failure.message if result.failure else "failed")

        return example


def _hypothesis_test(
    body: Callable[[dict[str, pa.Table]], None],
    datasets: st.SearchStrategy[dict[str, pa.Table]],
    database: DirectoryBasedExampleDatabase | None,
    *,
    max_examples: int,
    seed: int,
    explicit: Sequence[dict[str, pa.Table]] = (),
) -> Callable[[], None]:
    """``body`` as a hypothesis test over ``datasets``, set up for examples that each cost a process start;
    the ``explicit`` datasets are tried first, in order (before the database's), and not shrunk."""
    test = given(datasets)(body)
    for tables in reversed(explicit):  # hypothesis tries the example applied last first
        test = explicit_example(tables)(test)
    # @seed turns the database off; the settings applied after it turn it back on
    test = fixed_seed(seed)(test)
    return settings(
        database=database,
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
        # no Phase.explain: it reruns examples to explain them, each a process start here
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    )(test)


def _digest(tables: Mapping[str, pa.Table]) -> str:
    hasher = hashlib.sha256()
    for name in sorted(tables):
        table = tables[name]
        hasher.update(
            repr((name, table.schema.names, [str(t) for t in table.schema.types], table.to_pydict())).encode()
        )
    return hasher.hexdigest()


def _saved_count(database: DirectoryBasedExampleDatabase | None, test: Any) -> int:
    """How many failing examples of earlier runs the database holds for this test."""
    if database is None:
        return 0
    try:
        from hypothesis.internal.reflection import function_digest

        return sum(1 for _ in database.fetch(function_digest(test)))
    except Exception:  # noqa: BLE001 - an internal API: only the message depends on it
        return 0
