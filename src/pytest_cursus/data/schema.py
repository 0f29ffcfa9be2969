"""The column grammar shared by scenarios' ``synthetic:`` sources and contracts' ``data:`` blocks.

One pydantic model per YAML shape, the single source of truth for validation::

    >>> spec = SyntheticSpec.model_validate({
    ...     "rows": 10, "columns": {"amount": {"type": "float", "min": 0, "max": 5000, "nulls": 0.1}},
    ... })
    >>> spec.columns["amount"].float_bounds()
    (0.0, 5000.0)

Caveats:
    ``unique`` is checked against the row count by :class:`SyntheticSpec` (which knows it) and
    again at generation time; a :class:`DataSchema` alone cannot be checked, it has no rows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import string
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator, model_validator

ColumnType = Literal["int", "float", "bool", "category", "string", "datetime"]
FileFormat = Literal["csv", "tsv", "parquet", "jsonl"]
CategoryValue = Union[str, int, float, bool]  # noqa: UP007 - a runtime alias on Python 3.10
# Strict so YAML `min: true` or `min: "5"` is an error rather than a silent coercion.
Number = Union[StrictInt, StrictFloat]  # noqa: UP007

# Defaults when a column leaves its range open.
DEFAULT_INT_RANGE = (0, 1_000_000)
DEFAULT_FLOAT_RANGE = (0.0, 1.0)
DEFAULT_DATETIME_RANGE = (dt.datetime(2020, 1, 1), dt.datetime(2024, 12, 31, 23, 59, 59))

# Generated strings start with a letter that cannot begin a number, a boolean ("true"/"false"),
# an infinity ("inf") or a null token ("NA", "nan", "null", "None"), so CSV readers (pyarrow,
# pandas) never turn a generated string into anything but that string.
STRING_FIRST_ALPHABET = "abcdeghjklmopqrsuvwxyzABCDEGHJKLMOPQRSUVWXYZ"
STRING_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# Which optional keys each type accepts; `type`, `nulls` and `unique` apply to every type.
_KEYS_FOR_TYPE: dict[str, frozenset[str]] = {
    "int": frozenset({"min", "max"}),
    "float": frozenset({"min", "max"}),
    "bool": frozenset(),
    "category": frozenset({"values", "weights"}),
    "string": frozenset({"min_length", "max_length"}),
    "datetime": frozenset({"start", "end"}),
}
_TYPES_FOR_KEY: dict[str, list[str]] = {}
for _type, _keys in _KEYS_FOR_TYPE.items():
    for _key in _keys:
        _TYPES_FOR_KEY.setdefault(_key, []).append(_type)


class ColumnSpec(BaseModel):
    """One column: its type, the share of nulls, uniqueness and the type's own options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ColumnType
    nulls: float = Field(default=0.0, ge=0.0, le=1.0)
    unique: bool = False
    min: Number | None = None
    max: Number | None = None
    values: list[CategoryValue] | None = None
    weights: list[float] | None = None
    min_length: int = Field(default=1, ge=0)
    max_length: int = Field(default=20, ge=0)
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @field_validator("start", "end", mode="before", json_schema_input_type=Union[dt.datetime, dt.date, None])  # noqa: UP007
    @classmethod
    def _date_or_datetime(cls, value: object) -> object:
        # a bare date (YAML `2019-01-01`) is its midnight, as pydantic reads it; declared for the JSON Schema
        return value

    @field_validator("start", "end")
    @classmethod
    def _naive_utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        # Columns are timestamp[s] without a zone: an aware bound is taken as its UTC instant.
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value

    @model_validator(mode="after")
    def _check_combination(self) -> ColumnSpec:
        allowed = _KEYS_FOR_TYPE[self.type]
        for key in sorted(self.model_fields_set - {"type", "nulls", "unique"} - allowed):
            owners = " or ".join(_TYPES_FOR_KEY[key])
            raise ValueError(
                f"Expected {key!r} only on {owners} columns but got "
                f"{key}={getattr(self, key)!r} on a column of type={self.type!r}"
            )
        if self.type in ("int", "float"):
            self._check_numeric_bounds()
        elif self.type == "category":
            self._check_category()
        elif self.type == "string" and self.min_length > self.max_length:
            raise ValueError(
                f"Expected min_length <= max_length but got min_length={self.min_length}, max_length={self.max_length}"
            )
        elif self.type == "datetime" and self.start and self.end and self.start > self.end:
            raise ValueError(
                f"Expected start <= end but got start={self.start.isoformat()}, end={self.end.isoformat()}"
            )
        return self

    def _check_numeric_bounds(self) -> None:
        for name in ("min", "max"):
            bound = getattr(self, name)
            if bound is None:
                continue
            if isinstance(bound, float) and not math.isfinite(bound):
                raise ValueError(f"Expected a finite {name} but got {name}={bound!r}")
            if self.type == "int" and not float(bound).is_integer():
                raise ValueError(f"Expected a whole number {name} on an int column but got {name}={bound!r}")
            if self.type == "int" and not _INT64_MIN <= bound <= _INT64_MAX:
                raise ValueError(f"Expected {name} within the int64 range but got {name}={bound!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"Expected min <= max but got min={self.min!r}, max={self.max!r}")
        if self.type == "float":
            low, high = self.float_bounds()
            if not math.isfinite(high - low):
                raise ValueError(f"Expected a float range narrower than 1e308 but got min={low!r}, max={high!r}")

    def _check_category(self) -> None:
        if not self.values:
            raise ValueError(f"Expected a non-empty 'values' list on a category column but got values={self.values!r}")
        if self.weights is None:
            return
        if len(self.weights) != len(self.values):
            raise ValueError(
                f"Expected one weight per value ({len(self.values)}) but got "
                f"weights={self.weights!r} ({len(self.weights)} items)"
            )
        if any(not math.isfinite(w) or w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError(f"Expected non-negative weights with a positive sum but got weights={self.weights!r}")

    # Resolved ranges: the generator and the feasibility check must agree on the defaults.

    def int_bounds(self) -> tuple[int, int]:
        """Inclusive ``(low, high)``; an open side is the given side +/- the default width.

        Not used for a unique int with neither bound: see :meth:`is_sequential_id`.
        """
        width = DEFAULT_INT_RANGE[1] - DEFAULT_INT_RANGE[0]
        low = None if self.min is None else int(self.min)
        high = None if self.max is None else int(self.max)
        if low is None and high is None:
            return DEFAULT_INT_RANGE
        if low is None:
            assert high is not None
            return max(_INT64_MIN, high - width), high
        if high is None:
            return low, min(_INT64_MAX, low + width)
        return low, high

    def float_bounds(self) -> tuple[float, float]:
        width = DEFAULT_FLOAT_RANGE[1] - DEFAULT_FLOAT_RANGE[0]
        low = None if self.min is None else float(self.min)
        high = None if self.max is None else float(self.max)
        if low is None and high is None:
            return DEFAULT_FLOAT_RANGE
        if low is None:
            assert high is not None
            return high - width, high
        if high is None:
            return low, low + width
        return low, high

    def datetime_bounds(self) -> tuple[dt.datetime, dt.datetime]:
        width = DEFAULT_DATETIME_RANGE[1] - DEFAULT_DATETIME_RANGE[0]
        if self.start is None and self.end is None:
            return DEFAULT_DATETIME_RANGE
        if self.start is None:
            assert self.end is not None
            return self.end - width, self.end
        if self.end is None:
            return self.start, self.start + width
        return self.start, self.end

    def is_sequential_id(self) -> bool:
        """A unique int with no bounds: generated as 1, 2, 3, ... like a primary key."""
        return self.type == "int" and self.unique and self.min is None and self.max is None

    def category_kind(self) -> Literal["bool", "int", "float", "string"]:
        """What a category's values are stored as: their common type, else text.

        Ints with floats are floats; any other mix (``[1, "a"]``, ``[true, 1]``) is string.
        """
        assert self.values is not None
        if all(isinstance(value, bool) for value in self.values):
            return "bool"
        if any(isinstance(value, (bool, str)) for value in self.values):
            return "string"
        if all(isinstance(value, int) for value in self.values):
            return "int"
        return "float"

    def category_domain(self) -> tuple[list[CategoryValue], list[float]]:
        """Distinct values as stored (see :meth:`category_kind`) and their summed weights.

        Values with zero weight are dropped: they can never be drawn.
        """
        assert self.values is not None
        convert = {"bool": bool, "int": int, "float": float, "string": str}[self.category_kind()]
        weights: dict[CategoryValue, float] = {}
        for value, weight in zip(self.values, self.weights or [1.0] * len(self.values), strict=True):
            stored = convert(value)
            weights[stored] = weights.get(stored, 0.0) + weight
        kept = [(value, weight) for value, weight in weights.items() if weight > 0]
        return [value for value, _ in kept], [weight for _, weight in kept]

    def distinct_values(self) -> int | None:
        """How many distinct non-null values the column can take; ``None`` when effectively unbounded."""
        if self.type == "bool":
            return 2
        if self.type == "category":
            return len(self.category_domain()[0])
        if self.type == "int":
            if self.is_sequential_id():
                return None
            low, high = self.int_bounds()
            return high - low + 1
        if self.type == "float":
            low_float, high_float = self.float_bounds()
            return 1 if low_float == high_float else None
        if self.type == "datetime":
            start, end = self.datetime_bounds()
            return int((end - start).total_seconds()) + 1
        total = 0
        for length in range(self.min_length, self.max_length + 1):
            total += 1 if length == 0 else len(STRING_FIRST_ALPHABET) * len(STRING_ALPHABET) ** (length - 1)
            if total > 2**62:  # plenty for any row count; stop before the numbers get silly
                return None
        return total


TableSchema = dict[str, ColumnSpec]


def null_count(rows: int, nulls: float) -> int:
    """Exactly how many of the first ``rows`` rows are null for a ``nulls`` fraction.

    Defined on prefixes so that a table generated in chunks has, in every chunk, the nulls
    ``null_count(stop) - null_count(start)`` and in total exactly ``round(rows * nulls)``.
    """
    return round(rows * nulls)


def check_unique_feasible(name: str, column: ColumnSpec, rows: int) -> None:
    """Raise ``ValueError`` when ``unique`` asks for more distinct values than the column has."""
    if not column.unique:
        return
    needed = rows - null_count(rows, column.nulls)
    available = column.distinct_values()
    if available is not None and needed > available:
        raise ValueError(
            f"Expected at most {available} unique non-null values in column {name!r} "
            f"({_describe_domain(column)}) but got rows={rows} with nulls={column.nulls} "
            f"({needed} non-null values must be distinct)"
        )


def _describe_domain(column: ColumnSpec) -> str:
    if column.type == "int":
        low, high = column.int_bounds()
        return f"int in [{low}, {high}]"
    if column.type == "float":
        return f"float with min = max = {column.float_bounds()[0]}"
    if column.type == "datetime":
        start, end = column.datetime_bounds()
        return f"datetime seconds in [{start.isoformat()}, {end.isoformat()}]"
    if column.type == "category":
        return f"category values={column.category_domain()[0]!r}"
    if column.type == "string":
        return f"string of length {column.min_length}..{column.max_length}"
    return "bool"


def check_column_names(columns: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
    for name in columns:
        if not name.strip():
            raise ValueError(f"Expected non-blank column names but got name={name!r}")
    return columns


class SyntheticSpec(BaseModel):
    """A scenario's ``synthetic:`` data source: how many rows, which columns, which files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int = Field(default=1000, ge=0)
    seed: int = 0
    format: FileFormat = "csv"
    # For csv/tsv/jsonl a gzip stream (`part-00000.csv.gz`); for parquet the column codec.
    compression: Literal["gzip"] | None = None
    shards: int = Field(default=1, ge=1)
    columns: dict[str, ColumnSpec] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _check_names(cls, columns: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        return check_column_names(columns)

    @model_validator(mode="after")
    def _check_unique(self) -> SyntheticSpec:
        for name, column in self.columns.items():
            check_unique_feasible(name, column, self.rows)
        return self


_SUFFIX_FORMATS: dict[str, FileFormat] = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl"}


class DataSchema(BaseModel):
    """A contract input's or output's ``data:`` block: the columns it reads or writes.

    ``layout`` places the files in sub-directories: ``"{split}/{split}_processed_data.csv"`` with
    ``layout_values: {split: [train, val, test]}`` is three files, ``train/train_processed_data.csv``, ...
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, ColumnSpec] = Field(min_length=1)
    format: FileFormat | None = None
    layout: str | None = None
    layout_values: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _check_names(cls, columns: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        return check_column_names(columns)

    @model_validator(mode="after")
    def _check_layout(self) -> DataSchema:
        if self.layout is None:
            if self.layout_values:
                raise ValueError(
                    f"Expected layout_values only with a layout but got layout_values={self.layout_values!r} "
                    "and no layout"
                )
            return self
        placeholders = layout_placeholders(self.layout)
        parts = self.layout.split("/")
        if self.layout.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(
                f"Expected layout to be a relative file path inside the channel's directory "
                f"(no leading '/', no '.', '..' or empty parts) but got layout={self.layout!r}"
            )
        missing = [name for name in placeholders if name not in self.layout_values]
        unused = [name for name in self.layout_values if name not in placeholders]
        if missing or unused:
            raise ValueError(
                f"Expected layout_values to give the values of exactly the placeholders of layout={self.layout!r} "
                f"({', '.join(placeholders) or 'none'}) but got layout_values for "
                f"{', '.join(self.layout_values) or 'none'}"
            )
        for name, values in self.layout_values.items():
            bad = [value for value in values if not value or "/" in value or value in (".", "..")]
            if not values or bad or len(set(values)) != len(values):
                raise ValueError(
                    f"Expected layout_values.{name} to be distinct, non-empty names without '/' "
                    f"but got {name}={values!r}"
                )
        suffix = layout_file_format(self.layout)
        if suffix is None:
            raise ValueError(
                f"Expected layout to end in a table file name ({', '.join(_SUFFIX_FORMATS)}, optionally .gz) "
                f"but got layout={self.layout!r}"
            )
        if self.format is not None and self.format != suffix:
            raise ValueError(
                f"Expected the layout's file suffix to match format={self.format!r} but got layout={self.layout!r}"
            )
        return self

    @property
    def file_format(self) -> FileFormat | None:
        """``format``, else what the layout's file suffix says."""
        return self.format or (layout_file_format(self.layout) if self.layout else None)

    def layout_files(self) -> list[str]:
        """The relative paths of the layout, one per combination of placeholder values (empty: no layout)."""
        if self.layout is None:
            return []
        names = layout_placeholders(self.layout)
        combinations = itertools.product(*(self.layout_values[name] for name in names))
        return [self.layout.format(**dict(zip(names, values, strict=True))) for values in combinations]


def layout_placeholders(layout: str) -> list[str]:
    """The ``{name}`` placeholders of a layout, in order of first use; ``ValueError`` on anything else."""
    names: list[str] = []
    try:
        fields = list(string.Formatter().parse(layout))
    except ValueError as exc:
        raise ValueError(
            f"Expected layout placeholders written as {{name}} but got layout={layout!r} ({exc})"
        ) from None
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(
                f"Expected layout placeholders written as {{name}} (a plain identifier) but got "
                f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} in layout={layout!r}"
            )
        if name not in names:
            names.append(name)
    return names


def layout_file_format(layout: str) -> FileFormat | None:
    name = layout.rsplit("/", 1)[-1].lower().removesuffix(".gz")
    for suffix, file_format in _SUFFIX_FORMATS.items():
        if name.endswith(suffix):
            return file_format
    return None
