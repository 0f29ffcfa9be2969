"""Deterministic synthetic tables from the column grammar, generated and written in chunks.

    >>> from pytest_cursus.data.schema import ColumnSpec
    >>> table = generate_table({"id": ColumnSpec(type="int", unique=True)}, rows=3, seed=0)
    >>> table.column("id").to_pylist()
    [1, 2, 3]

How determinism works: rows are produced in fixed chunks of :data:`CHUNK_ROWS`; chunk ``i`` of
column ``c`` draws from its own generator seeded with ``(blake2b(seed, c), i)``. So a column's
values depend only on the seed, its name, its spec and the row count, never on the other
columns, on the shard layout or on the process (Python's ``hash()`` is salted per process).

Caveats:
    * Changing :data:`CHUNK_ROWS` changes the data; it is fixed on purpose.
    * ``unique`` columns (other than sequential ids) draw their distinct values for the whole
      table up front: memory is about 8 bytes per row for numbers, the string bytes for strings.
      Every other column is generated one chunk at a time.
    * Nulls are exact: ``round(rows * nulls)`` in total, spread chunk by chunk.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from pytest_cursus.data.schema import (
    STRING_ALPHABET,
    STRING_FIRST_ALPHABET,
    ColumnSpec,
    FileFormat,
    SyntheticSpec,
    check_unique_feasible,
    null_count,
)

CHUNK_ROWS = 100_000
# Test data is written to be read once: speed matters more than size.
_GZIP_LEVEL = 1

_ALPHABET = np.frombuffer(STRING_ALPHABET.encode("ascii"), dtype=np.uint8)
_FIRST_ALPHABET = np.frombuffer(STRING_FIRST_ALPHABET.encode("ascii"), dtype=np.uint8)
_EPOCH = np.datetime64("1970-01-01T00:00:00", "s")
# A progress line once generation has taken this long, then at most once per interval.
PROGRESS_AFTER_S = 1.0
PROGRESS_EVERY_S = 1.0
# Columns with at most this many distinct values are dictionary-encoded in Parquet.
_DICTIONARY_MAX_VALUES = 1 << 16
# Rounds of "draw more, keep the distinct ones" before unique generation gives up.
_MAX_DRAW_ROUNDS = 64
# A unique string column whose possible strings number less than this many times the rows.
_CROWDED = 64


def column_seed(seed: int, name: str) -> int:
    """A stable 64-bit seed for one column (same value in every process and Python version)."""
    digest = hashlib.blake2b(f"{seed}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def arrow_type(column: ColumnSpec) -> pa.DataType:
    """The Arrow type a column is generated as (a category: that of its values)."""
    return _ARROW_TYPES[column.category_kind() if column.type == "category" else column.type]


_ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "datetime": pa.timestamp("s"),
}


def synthetic_schema(columns: dict[str, ColumnSpec]) -> pa.Schema:
    return pa.schema([pa.field(name, arrow_type(column)) for name, column in columns.items()])


def generate_table(columns: dict[str, ColumnSpec], rows: int, seed: int) -> pa.Table:
    """All ``rows`` rows at once: the same rows :func:`write_synthetic` writes, in order."""
    batches = list(iter_synthetic_batches(columns, rows, seed))
    return pa.Table.from_batches(batches, schema=synthetic_schema(columns))


def iter_synthetic_batches(
    columns: dict[str, ColumnSpec], rows: int, seed: int, *, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pa.RecordBatch]:
    """Yield the table as record batches of ``chunk_rows`` rows (the last one shorter).

    Raises ``ValueError`` up front when a ``unique`` column cannot have ``rows`` distinct values.
    ``chunk_rows`` is a parameter for tests only: the data depends on it.
    """
    if rows < 0:
        raise ValueError(f"Expected rows >= 0 but got rows={rows}")
    if chunk_rows < 1:
        raise ValueError(f"Expected chunk_rows >= 1 but got chunk_rows={chunk_rows}")
    for name, column in columns.items():
        check_unique_feasible(name, column, rows)
    schema = synthetic_schema(columns)
    generators = [_ColumnGenerator(name, column, seed, rows) for name, column in columns.items()]

    # An inner generator, so that the checks above run at the call, before any file is opened.
    def batches() -> Iterator[pa.RecordBatch]:
        for index, start in enumerate(range(0, rows, chunk_rows)):
            stop = min(rows, start + chunk_rows)
            arrays = [generator.chunk(index, start, stop) for generator in generators]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return batches()


def synthetic_file_names(spec: SyntheticSpec) -> list[str]:
    """``part-00000.csv.gz``, ...: gzip on parquet is the column codec, so no ``.gz`` there."""
    suffix = f".{spec.format}"
    if spec.compression == "gzip" and spec.format != "parquet":
        suffix += ".gz"
    return [f"part-{index:05d}{suffix}" for index in range(spec.shards)]


def shard_row_counts(rows: int, shards: int) -> list[int]:
    """Rows split as evenly as possible, the first shards taking one extra row."""
    base, extra = divmod(rows, shards)
    return [base + (1 if index < extra else 0) for index in range(shards)]


def write_synthetic(spec: SyntheticSpec, directory: Path, *, progress: GenerationProgress | None = None) -> list[Path]:
    """Write ``spec`` as shard files in ``directory`` (created if needed); return them sorted.

    Shards concatenated in name order hold exactly the rows of ``generate_table``. Output is
    byte-identical for the same spec (and the same pyarrow version, whose name parquet embeds).
    Memory stays at a few chunks whatever ``spec.rows`` is (plus the up-front values of
    ``unique`` columns, see the module's caveats). ``progress`` is told the rows written so far.
    """
    directory.mkdir(parents=True, exist_ok=True)
    schema = synthetic_schema(spec.columns)
    generated = iter_synthetic_batches(spec.columns, spec.rows, spec.seed)
    batches = _RowStream(generated if progress is None else progress.track(generated))
    written: list[Path] = []
    for name, count in zip(synthetic_file_names(spec), shard_row_counts(spec.rows, spec.shards), strict=True):
        path = directory / name
        _write_shard(path, spec.format, spec.compression, schema, batches.take(count), _dictionary_columns(spec))
        written.append(path)
    if progress is not None:
        progress.finish()
    return sorted(written)


def write_table(table: pa.Table, path: Path, file_format: FileFormat, compression: str | None = None) -> Path:
    """Write one small table as a single file, the way :func:`write_synthetic` writes a shard."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_shard(path, file_format, compression, table.schema, iter(table.to_batches()))
    return path


class GenerationProgress:
    """A line on a stream while a big table is generated: ``cursus: generating x: 400,000/1,000,000 rows``.

    Silent for the first ``after`` seconds (small tables print nothing), then at most one line
    every ``every`` seconds, and a last line with the total when anything was printed.

        >>> progress = GenerationProgress("generating transactions", total=1_000_000)
        >>> write_synthetic(spec, directory, progress=progress)  # doctest: +SKIP
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        after: float | None = None,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.after = PROGRESS_AFTER_S if after is None else after
        self.every = PROGRESS_EVERY_S if every is None else every
        self.clock = clock
        self.started = clock()
        self.last_line: float | None = None
        self.done = 0

    def track(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            # counted when generated: the consumer may never ask for the batch after the last
            self.update(self.done + batch.num_rows)
            yield batch

    def update(self, done: int) -> None:
        self.done = done
        now = self.clock()
        if now - self.started < self.after:
            return
        if self.last_line is not None and now - self.last_line < self.every:
            return
        self.last_line = now
        self._print()

    def finish(self) -> None:
        if self.last_line is not None:
            self._print(f" in {self.clock() - self.started:.1f}s")

    def _print(self, suffix: str = "") -> None:
        stream = self.stream or sys.stderr  # looked up late: pytest swaps sys.stderr per test
        stream.write(f"cursus: {self.label}: {self.done:,}/{self.total:,} rows{suffix}\n")
        stream.flush()


class _RowStream:
    """Re-cuts a stream of record batches at arbitrary row counts (shard boundaries)."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self._pending: pa.RecordBatch | None = None

    def take(self, count: int) -> Iterator[pa.RecordBatch]:
        while count > 0:
            batch = self._pending if self._pending is not None else next(self._batches)
            self._pending = None
            if batch.num_rows > count:
                self._pending = batch.slice(count)
                batch = batch.slice(0, count)
            count -= batch.num_rows
            yield batch


def _dictionary_columns(spec: SyntheticSpec) -> list[str]:
    """Columns worth Parquet dictionary encoding: those with few distinct values.

    Trying it on a column of a million distinct values, once per 100,000-row row group, more
    than doubled the time to write the table (benchmarks/bench_synthetic.py).
    """
    few = []
    for name, column in spec.columns.items():
        distinct = column.distinct_values()
        if distinct is not None and distinct <= _DICTIONARY_MAX_VALUES:
            few.append(name)
    return few


def _write_shard(
    path: Path,
    file_format: str,
    compression: str | None,
    schema: pa.Schema,
    batches: Iterator[pa.RecordBatch],
    dictionary_columns: list[str] | None = None,
) -> None:
    if file_format == "parquet":
        codec: dict[str, Any] = {"compression": "gzip", "compression_level": _GZIP_LEVEL} if compression else {}
        if dictionary_columns is not None:
            codec["use_dictionary"] = dictionary_columns
        with pq.ParquetWriter(path, schema, **codec) as writer:
            for batch in batches:
                writer.write_batch(batch)
        return
    with _shard_sink(path, compression) as sink:
        if file_format == "jsonl":
            for batch in batches:
                sink.write(_jsonl_bytes(batch))
            return
        options = pcsv.WriteOptions(delimiter="\t" if file_format == "tsv" else ",")
        with pcsv.CSVWriter(sink, schema, write_options=options) as writer:
            for batch in batches:
                writer.write_batch(batch)


@contextlib.contextmanager
def _shard_sink(path: Path, compression: str | None) -> Iterator[io.BufferedIOBase]:
    with open(path, "wb") as raw:
        if compression is None:
            yield raw
            return
        # Python's gzip rather than Arrow's stream: Arrow's is fixed at level 9 (5x slower), and
        # here the header is pinned (no file name, mtime 0) so the bytes depend on the data only.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=_GZIP_LEVEL, mtime=0) as packed:
            yield packed


# --- JSON lines -------------------------------------------------------------------------------
# Encoded with Arrow compute rather than pandas' to_json, which rounds floats to 10-15 digits:
# values must read back exactly as generated (unique floats stay unique).


def _jsonl_bytes(batch: pa.RecordBatch) -> pa.Buffer:
    parts: list[pa.Array | str] = []
    for position, (field, array) in enumerate(zip(batch.schema, batch.columns, strict=True)):
        parts.append(("{" if position == 0 else ",") + json.dumps(field.name) + ":")
        parts.append(pc.fill_null(_json_values(array), "null"))
    parts.append("}\n")
    lines = pc.binary_join_element_wise(*parts, "")
    if not isinstance(lines, pa.Array):  # a batch with no columns: nothing to write
        return pa.py_buffer(b"")
    # The joined lines' data buffer, between the first and last offsets, is the file content.
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _json_values(array: pa.Array) -> pa.Array:
    kind = array.type
    if pa.types.is_timestamp(kind):
        return _quoted(pc.strftime(array, format="%Y-%m-%dT%H:%M:%S"))
    if pa.types.is_string(kind):
        return _quoted(_json_escape(array))
    text = pc.cast(array, pa.string())
    if pa.types.is_floating(kind):
        # "2" would read back as an int: keep a float looking like one.
        whole = pc.match_substring_regex(text, r"^-?\d+$")
        text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    return text


def _quoted(text: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', text, '"', "")


def _json_escape(text: pa.Array) -> pa.Array:
    # Generated strings never need escaping; category values chosen by the user might.
    if not pc.any(pc.match_substring_regex(text, r'[\x00-\x1f"\\]')).as_py():
        return text
    text = pc.replace_substring(text, "\\", "\\\\")
    text = pc.replace_substring(text, '"', '\\"')
    for code in range(0x20):
        text = pc.replace_substring(text, chr(code), json.dumps(chr(code))[1:-1])
    return text


# --- columns ----------------------------------------------------------------------------------


class _ColumnGenerator:
    """Produces one column chunk by chunk; holds the whole-table state ``unique`` needs."""

    def __init__(self, name: str, column: ColumnSpec, seed: int, rows: int) -> None:
        self.name = name
        self.column = column
        self.seed = column_seed(seed, name)
        self.type = arrow_type(column)
        self.pool: pa.Array | None = None
        if column.unique and not column.is_sequential_id():
            needed = rows - null_count(rows, column.nulls)
            self.pool = self._distinct(np.random.default_rng([self.seed, 1]), needed)

    def chunk(self, index: int, start: int, stop: int) -> pa.Array:
        rng = np.random.default_rng([self.seed, 0, index])
        size = stop - start
        nulls = null_count(stop, self.column.nulls) - null_count(start, self.column.nulls)
        valid = np.ones(size, dtype=bool)
        if nulls:
            valid[rng.choice(size, size=nulls, replace=False)] = False
        first = start - null_count(start, self.column.nulls)  # non-null values before this chunk
        count = size - nulls
        if self.pool is not None:
            values = self.pool.slice(first, count)
        elif self.column.is_sequential_id():
            values = pa.array(np.arange(first + 1, first + 1 + count, dtype=np.int64))
        else:
            values = self._draw(rng, count)
        if nulls == 0:
            return values
        # Spread the values over the valid positions; a null index takes a null.
        positions = np.cumsum(valid) - 1
        return values.take(pa.array(positions, mask=~valid))

    def _draw(self, rng: np.random.Generator, size: int) -> pa.Array:
        column = self.column
        if column.type == "int":
            low, high = column.int_bounds()
            return pa.array(rng.integers(low, high, size=size, endpoint=True, dtype=np.int64))
        if column.type == "float":
            bottom, top = column.float_bounds()
            return pa.array(rng.uniform(bottom, top, size=size) if top > bottom else np.full(size, bottom))
        if column.type == "bool":
            return pa.array(rng.integers(0, 2, size=size).astype(bool))
        if column.type == "category":
            values, weights = self._category_domain()
            return values.take(pa.array(rng.choice(len(values), size=size, p=weights)))
        if column.type == "string":
            lengths = np.arange(column.min_length, column.max_length + 1)
            return _random_strings(rng, size, lengths)
        low, high = _epoch_seconds(column)
        seconds = rng.integers(low, high, size=size, endpoint=True, dtype=np.int64)
        return pa.array(seconds, type=pa.timestamp("s"))

    def _distinct(self, rng: np.random.Generator, size: int) -> pa.Array:
        """``size`` distinct values in random order (feasibility was checked by the caller)."""
        column = self.column
        if column.type == "int":
            return pa.array(_distinct_ints(rng, *column.int_bounds(), size, self.name))
        if column.type == "datetime":
            seconds = _distinct_ints(rng, *_epoch_seconds(column), size, self.name)
            return pa.array(seconds, type=pa.timestamp("s"))
        if column.type in ("bool", "category"):
            values, weights = self._category_domain()
            # Weighted draw without replacement: the likelier values come first.
            return values.take(pa.array(rng.choice(len(values), size=size, replace=False, p=weights)))
        if column.type == "float":
            return _distinct_sample(rng, self.name, size, lambda n: self._draw(rng, n), _few_repeats)
        space = column.distinct_values()
        if space is not None and space <= _CROWDED * size:
            # Random lengths would keep hitting the few short strings: draw distinct ranks over
            # the whole space instead (uniform, so it converges) and spell them out.
            ranks = _distinct_ints(rng, 0, space - 1, size, self.name)
            return _strings_of_rank(ranks, column.min_length, column.max_length)
        # Roomy: lengths with few possible strings get few rows, so repeats stay rare.
        lengths = np.arange(column.min_length, column.max_length + 1)
        capacity = np.array([min(_strings_of_length(int(length)) / 8, size) for length in lengths])
        weights = capacity / capacity.sum()
        return _distinct_sample(rng, self.name, size, lambda n: _random_strings(rng, n, lengths, weights), _few_repeats)

    def _category_domain(self) -> tuple[pa.Array, np.ndarray]:
        if self.column.type == "bool":
            return pa.array([False, True]), np.array([0.5, 0.5])
        values, weights = self.column.category_domain()
        probabilities = np.array(weights)
        return pa.array(values, type=self.type), probabilities / probabilities.sum()


def _epoch_seconds(column: ColumnSpec) -> tuple[int, int]:
    start, end = column.datetime_bounds()
    as_seconds = [int((np.datetime64(bound, "s") - _EPOCH) / np.timedelta64(1, "s")) for bound in (start, end)]
    return as_seconds[0], as_seconds[1]


def _distinct_ints(rng: np.random.Generator, low: int, high: int, size: int, name: str) -> np.ndarray:
    span = high - low + 1
    if span <= 2 * size:
        # Dense: a shuffle of the whole range costs at most twice the output.
        return rng.permutation(span)[:size].astype(np.int64) + np.int64(low)

    def draw(count: int) -> pa.Array:
        return pa.array(rng.integers(low, high, size=count, endpoint=True, dtype=np.int64))

    def draws_for(have: int, missing: int) -> int:
        # Coupon collector: draws expected to hit `missing` new values among the span - have
        # left, plus 5% so that one round nearly always suffices.
        return int(-span * math.log1p(-missing / (span - have)) * 1.05) + 16

    return np.asarray(_distinct_sample(rng, name, size, draw, draws_for).to_numpy(), dtype=np.int64)


def _few_repeats(have: int, missing: int) -> int:
    return missing + missing // 10 + 16


def _distinct_sample(
    rng: np.random.Generator,
    name: str,
    size: int,
    draw: Callable[[int], pa.Array],
    draws_for: Callable[[int, int], int],
) -> pa.Array:
    """``size`` distinct values from ``draw``, in random order.

    Over-draws (``draws_for(have, missing)`` values), keeps the distinct ones, repeats for any
    shortfall, then keeps a random ``size`` of them. Callers only come here when repeats are
    rare (the domain is at least twice ``size``), so one round nearly always suffices.
    """
    pool = draw(0)
    for _ in range(_MAX_DRAW_ROUNDS):
        missing = size - len(pool)
        if missing <= 0:
            break
        pool = _sorted_distinct(pa.concat_arrays([pool, draw(draws_for(len(pool), missing))]))
    else:
        raise ValueError(
            f"Expected {size} distinct values for unique column {name!r} but got only {len(pool)} "
            f"after {_MAX_DRAW_ROUNDS} rounds of drawing: its range is too narrow, widen it"
        )
    # The pool is sorted: a random subset of it, in random order.
    return pool.take(pa.array(rng.permutation(len(pool))[:size]))


def _sorted_distinct(values: pa.Array) -> pa.Array:
    # Sort-based: pc.unique's hash table peaked at ~250 MB for a million doubles.
    if pa.types.is_string(values.type):
        ordered = values.take(pc.sort_indices(values))
    else:
        ordered = pa.array(np.sort(values.to_numpy()))
    if len(ordered) < 2:
        return ordered
    first = pa.concat_arrays([pa.array([True]), pc.not_equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))])
    return ordered.filter(first)


def _random_strings(
    rng: np.random.Generator, size: int, lengths: np.ndarray, weights: np.ndarray | None = None
) -> pa.Array:
    """Random strings built straight into Arrow buffers: no per-row Python work, no padding."""
    row_lengths = rng.choice(lengths, size=size, p=weights).astype(np.int64)
    offsets = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(row_lengths, out=offsets[1:])
    data = _ALPHABET[rng.integers(0, len(_ALPHABET), size=int(offsets[-1]))]
    starts = offsets[:-1][row_lengths > 0]
    data[starts] = _FIRST_ALPHABET[rng.integers(0, len(_FIRST_ALPHABET), size=len(starts))]
    return _string_array(offsets, data)


def _strings_of_rank(ranks: np.ndarray, min_length: int, max_length: int) -> pa.Array:
    """The strings at ``ranks`` in the generator's string space, ordered by length then letters."""
    lengths = np.arange(min_length, max_length + 1, dtype=np.int64)
    counts = np.array([_strings_of_length(int(length)) for length in lengths], dtype=np.int64)
    ends = np.cumsum(counts)
    which = np.searchsorted(ends, ranks, side="right")
    row_lengths = lengths[which]
    rank = ranks - (ends - counts)[which]  # rank among the strings of that length
    offsets = np.zeros(len(ranks) + 1, dtype=np.int64)
    np.cumsum(row_lengths, out=offsets[1:])
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    # Spell the rank in base len(_ALPHABET), last character first; the first character has its
    # own alphabet, so it takes whatever is left of the rank.
    for position in range(max_length - 1, -1, -1):
        rows = row_lengths > position
        if position == 0:
            data[offsets[:-1][rows]] = _FIRST_ALPHABET[rank[rows]]
        else:
            rest, digit = np.divmod(rank[rows], len(_ALPHABET))
            rank[rows] = rest
            data[offsets[:-1][rows] + position] = _ALPHABET[digit]
    return _string_array(offsets, data)


def _string_array(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    # int64 offsets (large_string) so a big pool cannot overflow; columns are plain string.
    strings = pa.Array.from_buffers(
        pa.large_string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return strings.cast(pa.string())


def _strings_of_length(length: int) -> int:
    return 1 if length == 0 else len(_FIRST_ALPHABET) * len(_ALPHABET) ** (length - 1)
