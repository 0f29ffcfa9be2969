"""Synthetic data next to real data: a side-by-side profile that says what to fix in the schema.

    >>> comparison = compare_datasets("xgb", "data.transactions", synthetic_dir, real_dir, real_location="s3://b/x/")
    >>> print(comparison.render_text())

Each side is profiled from its table files (CSV/TSV/Parquet/JSON lines, gzipped or not) as
:func:`.tabular.read_head` reads them, so both sides get the types a step's reader would infer:
per column the logical type, the null rate, the numeric (or date) range, and the set of values
when it is small. The comparison lists columns present on one side only, type differences, null
rates, ranges and value sets that differ, each with a hint for the synthetic spec.

Caveats:
    * Statistics come from the first :data:`PROFILE_ROWS` rows of each side (files in name
      order); the row count is the full count of what is on disk (for a synthetic source, the
      spec's ``rows``). Real data fetched with ``sample_rows`` is profiled as sampled.
    * A synthetic source is generated for the profile with at most :data:`PROFILE_ROWS` rows in
      one shard: same seed and columns, so the same distributions.
"""

from __future__ import annotations

import math
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    import pyarrow as pa

    from pytest_cursus.data.schema import SyntheticSpec

PROFILE_ROWS = 100_000
MAX_CATEGORIES = 20
NULL_RATE_TOLERANCE = 0.02  # absolute difference of null fractions that counts
RANGE_TOLERANCE = 0.05  # of the larger of the two spans
_SHOWN_VALUES = 6

DifferenceKind = Literal["only_synthetic", "only_real", "dtype", "null_rate", "range", "categories"]


class ColumnProfile(BaseModel):
    dtype: str  # int, float, bool, string, datetime, null (no value to tell)
    null_rate: float
    minimum: float | str | None = None  # numbers as numbers, datetimes as ISO text
    maximum: float | str | None = None
    distinct: int
    categories: list[str] | None = None  # the distinct values, when at most MAX_CATEGORIES


class DatasetProfile(BaseModel):
    location: str
    files: int
    rows: int | None  # all rows of the dataset; None when unknown
    profiled_rows: int
    columns: dict[str, ColumnProfile]
    note: str = ""

    def size_text(self) -> str:
        """``200 rows, 3 files, profiled 100000, sample_rows=... per file``"""
        parts = [
            "? rows" if self.rows is None else f"{self.rows} rows",
            f"{self.files} file{'s' if self.files != 1 else ''}",
        ]
        if self.rows is not None and self.profiled_rows < self.rows:
            parts.append(f"profiled {self.profiled_rows}")
        if self.note:
            parts.append(self.note)
        return ", ".join(parts)


class ColumnDifference(BaseModel):
    column: str
    kind: DifferenceKind
    synthetic: str
    real: str
    hint: str


class ColumnCells(NamedTuple):
    """One side of a column, as shown: each cell is ``""`` when the column is absent."""

    dtype: str
    null_rate: str
    spread: str  # the range, or the value set


class SideBySideRow(NamedTuple):
    column: str
    synthetic: ColumnCells
    real: ColumnCells
    differs: frozenset[DifferenceKind]  # what the comparison found different in this column


class ProfileComparison(BaseModel):
    """Shown in the terminal summary ("cursus: synthetic vs real"), the pytest-html report and
    the ``--cursus-json`` document (docs/s3.md)."""

    scenario: str
    subject: str  # "data.<source>" or "<step>.<output>"
    step: str | None = None  # the step whose input the real data is
    scenario_file: str | None = None  # as in the item's node id; set by the pytest reporter
    synthetic: DatasetProfile | None = None
    real: DatasetProfile | None = None
    differences: list[ColumnDifference] = Field(default_factory=list)
    error: str | None = None  # why no profile could be made

    @property
    def compared(self) -> bool:
        return self.error is None and self.synthetic is not None and self.real is not None

    def headline(self) -> str:
        """``synthetic <where> (<rows>, <files>) vs real <where> (...)``, or why not compared."""
        if not self.compared:
            return f"not compared ({self.error or 'no table files on one side'})"
        assert self.synthetic is not None and self.real is not None
        return f"synthetic {_describe_side(self.synthetic)} vs real {_describe_side(self.real)}"

    def side_by_side(self) -> list[SideBySideRow]:
        """Every column of either side, synthetic order first, with what differs in it."""
        if self.synthetic is None or self.real is None:
            return []
        kinds: dict[str, set[DifferenceKind]] = {}
        for difference in self.differences:
            kinds.setdefault(difference.column, set()).add(difference.kind)
        names = list(self.synthetic.columns) + [
            name for name in self.real.columns if name not in self.synthetic.columns
        ]
        return [
            SideBySideRow(
                name,
                _cells(self.synthetic.columns.get(name)),
                _cells(self.real.columns.get(name)),
                frozenset(kinds.get(name, ())),
            )
            for name in names
        ]

    def render_text(self) -> str:
        title = f"{self.scenario}: {self.subject}"
        if not self.compared:
            return f"{title}: {self.headline()}"
        lines = [f"{title}: {self.headline()}"]
        rows = [("column", "synthetic", "real")]
        rows += [
            (side.column, _describe_cells(side.synthetic), _describe_cells(side.real)) for side in self.side_by_side()
        ]
        widths = [max(len(row[index]) for row in rows) for index in range(2)]
        for row in rows:
            lines.append(f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip())
        if self.differences:
            lines.append("  differences (what to change in the synthetic spec):")
            lines += [
                f"    - {d.column}: {d.kind.replace('_', ' ')}: synthetic {d.synthetic}, real {d.real} -> {d.hint}"
                for d in self.differences
            ]
        else:
            lines.append("  no differences in columns, types, null rates, ranges or value sets")
        return "\n".join(lines)


def profile_dataset(path: Path, location: str, rows: int | None = None, note: str = "") -> DatasetProfile | None:
    """Profile the table files under ``path``; None when it holds none. ``rows`` overrides the
    counted row total (a synthetic spec knows its own)."""
    import pyarrow as pa

    from pytest_cursus.data.tabular import count_rows, list_tabular_files, read_head

    files = list_tabular_files(path)
    if not files:
        return None
    tables = []
    remaining = PROFILE_ROWS
    for file in files:
        if remaining <= 0:
            break
        table = read_head(file, remaining)
        tables.append(table)
        remaining -= table.num_rows
    combined = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    total = rows if rows is not None else sum(count_rows(file) for file in files)
    return DatasetProfile(
        location=location,
        files=len(files),
        rows=total,
        profiled_rows=combined.num_rows,
        columns={name: _profile_column(combined.column(name)) for name in combined.column_names},
        note=note,
    )


def compare_profiles(scenario: str, subject: str, synthetic: DatasetProfile, real: DatasetProfile) -> ProfileComparison:
    differences: list[ColumnDifference] = []
    for name, column in synthetic.columns.items():
        if name not in real.columns:
            differences.append(
                ColumnDifference(
                    column=name,
                    kind="only_synthetic",
                    synthetic=column.dtype,
                    real="absent",
                    hint=f"remove column {name}, or check the real data's header",
                )
            )
    for name, column in real.columns.items():
        if name not in synthetic.columns:
            differences.append(
                ColumnDifference(
                    column=name,
                    kind="only_real",
                    synthetic="absent",
                    real=column.dtype,
                    hint=f"add column {name} ({_grammar_type(column)})",
                )
            )
    for name, ours in synthetic.columns.items():
        theirs = real.columns.get(name)
        if theirs is not None:
            differences += _column_differences(name, ours, theirs)
    return ProfileComparison(
        scenario=scenario, subject=subject, synthetic=synthetic, real=real, differences=differences
    )


def compare_datasets(
    scenario: str,
    subject: str,
    synthetic: Path,
    real: Path,
    *,
    synthetic_location: str,
    real_location: str,
    synthetic_rows: int | None = None,
    real_note: str = "",
) -> ProfileComparison:
    """Profile both sides and compare them; problems reading either side become ``error``."""
    try:
        ours = profile_dataset(synthetic, synthetic_location, rows=synthetic_rows)
        theirs = profile_dataset(real, real_location, note=real_note)
    except Exception as exc:  # noqa: BLE001 - a profile is advice: it never fails the run
        return ProfileComparison(
            scenario=scenario, subject=subject, error=f"could not read the data ({type(exc).__name__}: {exc})"
        )
    if ours is None or theirs is None:
        side = "synthetic" if ours is None else "real"
        return ProfileComparison(
            scenario=scenario, subject=subject, synthetic=ours, real=theirs, error=f"no table file on the {side} side"
        )
    return compare_profiles(scenario, subject, ours, theirs)


def compare_source(
    scenario: str, name: str, spec: SyntheticSpec, real: Path, real_location: str, scratch: Path, real_note: str = ""
) -> ProfileComparison:
    """Generate the source's synthetic variant on the side (in ``scratch``, removed after) and
    compare it with the real data at ``real``."""
    from pytest_cursus.data.synthetic import write_synthetic

    subject = f"data.{name}"
    sample = spec.model_copy(update={"rows": min(spec.rows, PROFILE_ROWS), "shards": 1})
    try:
        if scratch.exists():
            shutil.rmtree(scratch)
        write_synthetic(sample, scratch)
        return compare_datasets(
            scenario,
            subject,
            scratch,
            real,
            synthetic_location="spec",
            real_location=real_location,
            synthetic_rows=spec.rows,
            real_note=real_note,
        )
    except Exception as exc:  # noqa: BLE001 - a profile is advice: it never fails the run
        return ProfileComparison(
            scenario=scenario,
            subject=subject,
            error=f"the synthetic variant could not be generated ({type(exc).__name__}: {exc})",
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _profile_column(column: pa.ChunkedArray) -> ColumnProfile:
    import pyarrow as pa
    import pyarrow.compute as pc

    from pytest_cursus.data.tabular import logical_type

    dtype = logical_type(column.type)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    rows = len(column)
    values = column.drop_null()
    distinct = int(pc.count_distinct(values).as_py()) if len(values) else 0
    profile = ColumnProfile(dtype=dtype, null_rate=column.null_count / rows if rows else 0.0, distinct=distinct)
    if len(values) and dtype in ("int", "float", "datetime"):
        bounds = pc.min_max(values)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if dtype == "datetime":
            profile.minimum, profile.maximum = _iso(low), _iso(high)
        elif not (isinstance(low, float) and (math.isnan(low) or math.isnan(high))):
            profile.minimum, profile.maximum = float(low), float(high)
    if dtype in ("string", "bool", "int") and distinct <= MAX_CATEGORIES:
        profile.categories = sorted(str(value) for value in pc.unique(values).to_pylist())
    return profile


def _column_differences(name: str, ours: ColumnProfile, theirs: ColumnProfile) -> list[ColumnDifference]:
    found = []
    if "null" not in (ours.dtype, theirs.dtype) and ours.dtype != theirs.dtype:
        found.append(
            ColumnDifference(
                column=name,
                kind="dtype",
                synthetic=ours.dtype,
                real=theirs.dtype,
                hint=f"declare type {_grammar_type(theirs)}",
            )
        )
        return found  # ranges and value sets of different types do not compare
    if abs(ours.null_rate - theirs.null_rate) > NULL_RATE_TOLERANCE or (ours.null_rate == 0) != (theirs.null_rate == 0):
        found.append(
            ColumnDifference(
                column=name,
                kind="null_rate",
                synthetic=_percent(ours.null_rate),
                real=_percent(theirs.null_rate),
                hint=f"set nulls: {round(theirs.null_rate, 3):g}",
            )
        )
    if _ranges_differ(ours, theirs):
        keys = ("start", "end") if theirs.dtype == "datetime" else ("min", "max")
        hint = f"set {keys[0]}: {_value(theirs.minimum)}, {keys[1]}: {_value(theirs.maximum)}"
        found.append(
            ColumnDifference(column=name, kind="range", synthetic=_range(ours), real=_range(theirs), hint=hint)
        )
    if ours.dtype in ("string", "bool"):  # numbers are compared by their range
        difference = _categories_difference(name, ours, theirs)
        if difference is not None:
            found.append(difference)
    return found


def _categories_difference(name: str, ours: ColumnProfile, theirs: ColumnProfile) -> ColumnDifference | None:
    if ours.categories is None and theirs.categories is None:
        return None
    if ours.categories is None or theirs.categories is None:
        if ours.categories is None:
            hint = (
                f"the real values are a small set: use type category with values [{', '.join(theirs.categories or [])}]"
            )
        else:
            hint = (
                f"the real values are not a small set ({theirs.distinct} distinct): "
                "use type string, or list more values"
            )
        return ColumnDifference(
            column=name, kind="categories", synthetic=_values(ours), real=_values(theirs), hint=hint
        )
    only_real = sorted(set(theirs.categories) - set(ours.categories))
    only_synthetic = sorted(set(ours.categories) - set(theirs.categories))
    if not only_real and not only_synthetic:
        return None
    hints = []
    if only_real:
        hints.append(f"add {_listed(only_real)} to values")
    if only_synthetic:
        hints.append(f"remove {_listed(only_synthetic)} (never in the real data)")
    return ColumnDifference(
        column=name, kind="categories", synthetic=_values(ours), real=_values(theirs), hint="; ".join(hints)
    )


def _ranges_differ(ours: ColumnProfile, theirs: ColumnProfile) -> bool:
    low, high, real_low, real_high = (
        _number(value) for value in (ours.minimum, ours.maximum, theirs.minimum, theirs.maximum)
    )
    if low is None or high is None or real_low is None or real_high is None:
        return False
    span = max(high - low, real_high - real_low, 1e-12)
    return abs(low - real_low) > RANGE_TOLERANCE * span or abs(high - real_high) > RANGE_TOLERANCE * span


def _number(value: float | str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return float(value)


def _grammar_type(column: ColumnProfile) -> str:
    """The column grammar's type for what the real data holds."""
    if column.dtype == "string" and column.categories is not None:
        return "category"
    return "string" if column.dtype == "null" else column.dtype


def _describe_side(profile: DatasetProfile) -> str:
    return f"{profile.location} ({profile.size_text()})"


def _cells(column: ColumnProfile | None) -> ColumnCells:
    if column is None:
        return ColumnCells("", "", "")
    if column.minimum is not None:
        spread = _range(column)
    else:
        spread = "" if column.dtype == "null" else _values(column)
    return ColumnCells(column.dtype, _percent(column.null_rate), spread)


def _describe_cells(cells: ColumnCells) -> str:
    if not cells.dtype:
        return "-"
    return ", ".join(part for part in (cells.dtype, f"{cells.null_rate} null", cells.spread) if part)


def _range(column: ColumnProfile) -> str:
    return f"{_value(column.minimum)} .. {_value(column.maximum)}" if column.minimum is not None else "no range"


def _values(column: ColumnProfile) -> str:
    if column.categories is None:
        return f"{column.distinct} distinct values"
    return "{" + _listed(column.categories) + "}"


def _listed(values: list[str]) -> str:
    shown = ", ".join(values[:_SHOWN_VALUES])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _SHOWN_VALUES else "")


def _value(value: float | str | None) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%" if 0 < rate < 0.01 else f"{rate * 100:.0f}%"


def _iso(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
