"""Reading what pipeline steps write: CSV/TSV/Parquet/JSON lines, each optionally gzipped.

Cheap questions get cheap answers: :func:`count_rows` reads Parquet's footer only and streams
text files; :func:`read_columns` reads Parquet's schema only and a sample of a text file.
Counting the rows of a small CSV/TSV or of JSON lines needs no pyarrow (0.25 CPU-s to import):
most steps write small text files, and a session that only lists them never imports it.

    >>> tabular_format("out/part-00000.csv.gz")
    TabularFormat(kind='csv', gzip=True)

Caveats:
    * ``.json`` is not tabular: it is as often one document (hyperparameters, metrics) as JSON
      lines, and telling them apart needs a read. Name JSON lines ``.jsonl`` or ``.ndjson``.
    * Files and directories whose name starts with ``.`` or ``_`` (``_SUCCESS``, ``.crc``,
      ``_temporary/``) are skipped by :func:`list_tabular_files`, as Spark and pyarrow do.
    * Column types of text files are inferred by pyarrow from a sample (the first 1 MiB block
      of a CSV/TSV, the first 1000 lines of JSON lines); a column with no value in the sample,
      e.g. any column of a header-only CSV, has type ``"null"``: nothing says what it holds,
      and :mod:`.compatibility` accepts it for any declared type.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd  # imported by read_frame alone: most processes never need pandas
    import pyarrow as pa
    import pyarrow.csv as pcsv

TabularKind = Literal["csv", "tsv", "parquet", "jsonl"]
LogicalType = Literal["int", "float", "bool", "string", "datetime", "null"]

JSONL_SAMPLE_LINES = 1000
CSV_SAMPLE_BYTES = 1 << 20
# Up to this size on disk (a gzipped file a quarter of it) a CSV's rows are counted by the
# standard library's parser (about 75 MB/s); larger files go to pyarrow's multi-threaded one,
# whose import (about 0.2 s) is then the smaller cost.
CSV_COUNT_WITHOUT_ARROW_BYTES = 4 << 20

_KIND_BY_SUFFIX: dict[str, TabularKind] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_KIND_NAMES = {"csv": "CSV", "tsv": "TSV", "parquet": "Parquet", "jsonl": "JSON lines"}


@dataclass(frozen=True)
class TabularFormat:
    kind: TabularKind
    gzip: bool

    @property
    def delimiter(self) -> str:
        return "\t" if self.kind == "tsv" else ","


_FORMATS = {(kind, gzipped): TabularFormat(kind, gzipped) for kind in _KIND_NAMES for gzipped in (False, True)}


class UnreadableTableError(Exception):
    """A file named like a table that its format's reader rejects (corrupt, empty, not that format)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def tabular_format(path: str | Path) -> TabularFormat | None:
    """The format a file name announces, or ``None`` when it is not a table file name."""
    # string operations, not Path objects: an edge check asks this of every file of an output
    name = os.path.basename(path).lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[: -len(".gz")]
    dot = name.rfind(".")
    suffix = name[dot:] if 0 < dot < len(name) - 1 else ""  # as Path.suffix: ".csv" alone has none
    kind = _KIND_BY_SUFFIX.get(suffix)
    return None if kind is None else _FORMATS[kind, gzipped]


def list_tabular_files(root: Path) -> list[Path]:
    """Table files under ``root`` (recursively, sorted); ``root`` may be a single file.

    A missing ``root`` gives ``[]``: whether it should exist is the caller's question.
    """
    root = Path(root)
    if root.is_file():
        return [root] if tabular_format(root) else []
    return [Path(entry.path) for relative, entry in files_under(root) if is_table_name(relative)]


def is_table_name(relative: str) -> bool:
    """A table file name (by its suffix) whose path below the output has no hidden part."""
    hidden = relative.startswith((".", "_")) or "/." in relative or "/_" in relative  # a part starting so
    return not hidden and tabular_format(relative) is not None


def files_under(root: Path) -> list[tuple[str, os.DirEntry[str]]]:
    """Every file under the directory ``root`` (hidden ones too) as (path relative to ``root`` with
    ``/``, its directory entry), in path order; ``[]`` when ``root`` is not a directory.

    One ``scandir`` per directory and no system call per file (the entry caches its ``stat``):
    an output may hold 100,000 files. Symlinked directories are not walked into; a symlink to a
    file counts as that file.
    """
    found: list[tuple[str, os.DirEntry[str]]] = []
    pending = [(str(root), "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, prefix + entry.name + "/"))
            elif entry.is_file():
                found.append((prefix + entry.name, entry))
    found.sort(key=lambda item: item[0].split("/"))  # as Path objects sort: part by part
    return found


def count_rows(path: Path) -> int:
    """Data rows in a table file (a CSV header is not a row)."""
    path = Path(path)
    fmt = _format_of(path)
    with _reading(path, fmt):
        if fmt.kind == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(_parquet_source(path, fmt)).metadata.num_rows)
        if fmt.kind == "jsonl":
            with _open_binary(path, fmt) as stream:
                return sum(1 for line in stream if line.strip())
        if path.stat().st_size <= CSV_COUNT_WITHOUT_ARROW_BYTES // (4 if fmt.gzip else 1):
            counted = _count_csv_rows_plainly(path, fmt)
            if counted is not None:
                return counted
        import pyarrow as pa
        import pyarrow.csv as pcsv

        with _csv_reader(path, fmt) as reader:
            first = reader.schema.names[0]
        # Only the first column is converted, as text: later blocks can then never fail a type
        # guessed from the first block, and the parse (quoted newlines included) still counts.
        convert = pcsv.ConvertOptions(include_columns=[first], column_types={first: pa.string()})
        with _csv_reader(path, fmt, convert) as reader:
            return sum(batch.num_rows for batch in reader)


def _count_csv_rows_plainly(path: Path, fmt: TabularFormat) -> int | None:
    """Rows as pyarrow would count them, or ``None`` for any file pyarrow might judge otherwise
    (a row of another width, bad quoting, invalid UTF-8, a blank header): pyarrow then decides,
    with its own error message."""
    try:
        with (
            gzip.open(path, "rt", encoding="utf-8", newline="")
            if fmt.gzip
            else open(path, encoding="utf-8", newline="") as text
        ):
            reader = csv.reader(text, delimiter=fmt.delimiter, strict=True)
            header = next(reader, None)
            if not header:
                return None
            rows = 0
            for row in reader:
                if not row:
                    continue  # a blank line, which pyarrow skips too
                if len(row) != len(header):
                    return None
                rows += 1
            return rows
    except (csv.Error, UnicodeDecodeError, OSError, EOFError, zlib.error):
        return None


def read_columns(path: Path) -> dict[str, str]:
    """Column name -> logical type (a :data:`LogicalType`); Parquet from its schema, text formats from a sample."""
    path = Path(path)
    fmt = _format_of(path)
    with _reading(path, fmt):
        if fmt.kind == "parquet":
            import pyarrow.parquet as pq

            schema = pq.read_schema(_parquet_source(path, fmt))
        elif fmt.kind == "jsonl":
            schema = _jsonl_sample(path, fmt, JSONL_SAMPLE_LINES).schema
        else:
            with _csv_reader(path, fmt) as reader:
                schema = reader.schema
    return {field.name: logical_type(field.type) for field in schema}


def read_head(path: Path, rows: int) -> pa.Table:
    """The first ``rows`` rows as Arrow reads them (the types :func:`read_columns` reports;
    empty CSV fields are nulls).

    Text files are read block by block until there are enough rows; a later block whose values
    do not fit the types inferred from the first block ends the read (the rows before it are
    returned). Parquet reads the footer and as many row groups as needed.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    fmt = _format_of(path)
    with _reading(path, fmt):
        if fmt.kind == "jsonl":
            return _jsonl_sample(path, fmt, rows)
        batches: list[pa.RecordBatch] = []
        taken = 0
        if fmt.kind == "parquet":
            parquet = pq.ParquetFile(_parquet_source(path, fmt))
            schema = parquet.schema_arrow
            for batch in parquet.iter_batches(batch_size=max(min(rows, 1 << 16), 1)):
                if taken >= rows:
                    break
                batches.append(batch)
                taken += batch.num_rows
        else:
            # an empty field is a null, as pandas (and so most scripts) read it
            with _csv_reader(path, fmt, pcsv.ConvertOptions(strings_can_be_null=True)) as reader:
                schema = reader.schema
                while taken < rows:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    except pa.ArrowInvalid:
                        if not batches:
                            raise
                        break
                    batches.append(batch)
                    taken += batch.num_rows
        return pa.Table.from_batches(batches, schema=schema).slice(0, rows)


def read_frame(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """The table (or its first ``nrows`` rows) as pandas reads it, as a step's script would."""
    import pandas as pd

    path = Path(path)
    fmt = _format_of(path)
    compression: Literal["gzip"] | None = "gzip" if fmt.gzip else None
    with _reading(path, fmt):
        if fmt.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(_parquet_source(path, fmt))
            if nrows is None:
                table = parquet.read()
            else:
                first = next(parquet.iter_batches(batch_size=max(nrows, 1)), None)
                table = parquet.schema_arrow.empty_table() if first is None else pa.Table.from_batches([first])
            frame: pd.DataFrame = table.slice(0, nrows).to_pandas()
            return frame
        if fmt.kind == "jsonl":
            if nrows == 0 or _is_empty(path, fmt):
                return pd.DataFrame()
            return pd.read_json(path, lines=True, nrows=nrows, compression=compression)
        return pd.read_csv(path, sep=fmt.delimiter, nrows=nrows, compression=compression)


def logical_type(arrow_type: pa.DataType) -> LogicalType:
    """Map an Arrow type to the column grammar's types (``"null"``: no values to tell).

    Dates count as datetimes; decimals as floats; anything else (times of day, binary, nested
    JSON values) as strings.
    """
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_null(arrow_type):
        return "null"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "datetime"
    return "string"


# --- readers ----------------------------------------------------------------------------------


def _format_of(path: Path) -> TabularFormat:
    fmt = tabular_format(path)
    if fmt is None:
        raise ValueError(
            f"Expected a .csv, .tsv, .parquet, .pq, .jsonl or .ndjson file (optionally .gz) but got path={str(path)!r}"
        )
    return fmt


def _open_binary(path: Path, fmt: TabularFormat) -> io.BufferedIOBase:
    return gzip.GzipFile(path, "rb") if fmt.gzip else open(path, "rb")


def _parquet_source(path: Path, fmt: TabularFormat) -> str | pa.BufferReader:
    import pyarrow as pa

    if not fmt.gzip:
        return str(path)
    # Parquet needs random access to its footer: a gzipped file is inflated in memory first.
    with _open_binary(path, fmt) as stream:
        return pa.BufferReader(stream.read())


@contextlib.contextmanager
def _csv_reader(
    path: Path, fmt: TabularFormat, convert: pcsv.ConvertOptions | None = None
) -> Iterator[pcsv.CSVStreamingReader]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with pa.input_stream(str(path), compression="gzip" if fmt.gzip else None) as stream:
        yield pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(block_size=CSV_SAMPLE_BYTES),
            parse_options=pcsv.ParseOptions(delimiter=fmt.delimiter, newlines_in_values=True),
            convert_options=convert,
        )


def _jsonl_sample(path: Path, fmt: TabularFormat, lines: int) -> pa.Table:
    import pyarrow as pa
    import pyarrow.json as pjson

    sample = io.BytesIO()
    kept = 0
    with _open_binary(path, fmt) as stream:
        for line in stream:
            if line.strip():
                sample.write(line if line.endswith(b"\n") else line + b"\n")
                kept += 1
                if kept == lines:
                    break
    if kept == 0:  # pyarrow rejects an empty input; an empty JSON lines file is a table of nothing
        return pa.table({})
    sample.seek(0)
    return pjson.read_json(sample)


def _is_empty(path: Path, fmt: TabularFormat) -> bool:
    with _open_binary(path, fmt) as stream:
        return not any(line.strip() for line in stream)


# Parser messages sometimes lead with where they read from ("<Buffer>"): the path says it better.
_SOURCE_PREFIX = re.compile(r"^Could not open Parquet input source '[^']*': ")


@contextlib.contextmanager
def _reading(path: Path, fmt: TabularFormat) -> Iterator[None]:
    """Turn any reader failure into an UnreadableTableError naming the file and the parser's words."""
    what = ("gzipped " if fmt.gzip else "") + _KIND_NAMES[fmt.kind]
    try:
        if path.is_file() and path.stat().st_size == 0 and fmt.kind != "jsonl":
            raise UnreadableTableError(path, f"not a readable {what} file (the file is empty)")
        yield
    except (FileNotFoundError, IsADirectoryError, UnreadableTableError):
        raise
    except _read_errors() as exc:
        message = _SOURCE_PREFIX.sub("", str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise UnreadableTableError(path, f"not a readable {what} file ({message})") from exc


def _read_errors() -> tuple[type[Exception], ...]:
    """What a reader raises for a bad file; pyarrow's base only when loaded, as only then can a
    reader have raised it. pandas' ParserError is a ValueError."""
    errors: tuple[type[Exception], ...] = (OSError, EOFError, zlib.error, ValueError)
    arrow = sys.modules.get("pyarrow")
    return errors if arrow is None else (arrow.ArrowException, *errors)
