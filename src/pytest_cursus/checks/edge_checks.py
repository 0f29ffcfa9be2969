"""Checks on a DAG edge: is the upstream output something the downstream input can read?

What an edge check reads is bounded, whatever the size of the output (docs/contracts.md,
"Compatibility rules on an edge"):

* every file is listed and its size taken from the directory listing (a ``stat`` at most): an
  output that is missing, has no file, or only files of 0 bytes is reported as such, and every
  table file of 0 bytes is read (which costs nothing: it is rejected before any parse);
* the schema is read from at most ``sample`` table files (default :data:`EDGE_SAMPLE_FILES`):
  all of them when there are no more, else the first of each format, the first in each top-level
  sub-directory (up to half the sample) and the rest spread evenly over the sorted list, the
  first and the last file included. ``sample=0`` reads every table file.

A file outside the sample that cannot be read, or has other columns, is not noticed: that is
the price of a check that takes the same time for 100,000 files as for 100. A failing check
says how many files it read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_cursus.data.schema import DataSchema

EDGE_SAMPLE_FILES = 32
# Part of the key of a remembered verdict (run/pipeline.py): raise it when what a check finds changes.
EDGE_CHECK_VERSION = 2
_LISTED = 5


@dataclass(frozen=True)
class EdgeVerdict:
    """The problems found on an edge (none: compatible), and whether the files were read for it or the
    verdict of an earlier check of the same cache entry against the same schema was reused."""

    problems: list[str]
    remembered: bool = False


def check_edge(output: Path, schema: DataSchema | None, sample: int = EDGE_SAMPLE_FILES) -> list[str]:
    """Problems with ``output`` as input data: missing, empty, unreadable, or off-schema."""
    # pandas and pyarrow load only when an edge is checked, not when pytest starts
    from pytest_cursus.data.tabular import files_under, is_table_name

    if not output.exists():
        return [f"the output was not written: {output} does not exist"]
    if output.is_file():
        sizes = {output.name: output.stat().st_size}
        tables = [output.name] if is_table_name(output.name) else []
    else:
        listed = files_under(output)
        sizes = {relative: entry.stat().st_size for relative, entry in listed}
        tables = [relative for relative, _ in listed if is_table_name(relative)]
    if not sizes:
        return [f"the output is empty: no file under {output}"]
    if not any(sizes.values()):
        return [f"the output is empty: {len(sizes)} file(s) under {output}, all of 0 bytes"]
    chosen = set(sampled(tables, sample)) | {relative for relative in tables if sizes[relative] == 0}
    read = [relative for relative in tables if relative in chosen]  # in path order
    problems, schemas = _read_schemas(output, read)
    if schema is not None and not tables:
        problems.append(
            f"the downstream input declares a data schema, but {output} holds no tabular file "
            "(csv, tsv, parquet, jsonl)"
        )
    elif schema is not None:
        problems += _schema_differences(schema, schemas)
    if problems and len(read) < len(tables):
        problems.append(
            f"(read {len(read)} of the {len(tables):,} table files, a sample: a file outside it is not checked; "
            "--cursus-edge-sample 0 reads every file)"
        )
    return problems


def sampled(tables: list[str], sample: int) -> list[str]:
    """The table files (relative paths, sorted) whose schema an edge check reads: see the module's docstring."""
    if sample <= 0 or len(tables) <= sample:
        return list(tables)
    from pytest_cursus.data.tabular import tabular_format

    chosen: dict[int, None] = {}  # an ordered set of indices
    formats = set()
    for index, relative in enumerate(tables):
        fmt = tabular_format(relative)
        if fmt not in formats:
            formats.add(fmt)
            chosen[index] = None
    tops = set()
    for index, relative in enumerate(tables):
        if len(chosen) >= max(sample // 2, len(formats)):
            break
        top = relative.split("/", 1)[0] if "/" in relative else ""
        if top not in tops:
            tops.add(top)
            chosen[index] = None
    last = len(tables) - 1
    spread = max(sample - len(chosen), 2)  # evenly spaced, the first and the last file included
    for step in range(spread):
        chosen[round(step * last / (spread - 1))] = None
    return [tables[index] for index in sorted(chosen)]


def _read_schemas(output: Path, read: list[str]) -> tuple[list[str], dict[str, dict[str, str]]]:
    from pytest_cursus.data.tabular import UnreadableTableError, read_columns

    problems = []
    schemas: dict[str, dict[str, str]] = {}
    for relative in read:
        path = output if output.is_file() else output / relative
        try:
            schemas[relative] = read_columns(path)
        except UnreadableTableError as exc:
            problems.append(f"unreadable: {exc}")
    return problems, schemas


def _schema_differences(schema: DataSchema, schemas: dict[str, dict[str, str]]) -> list[str]:
    from pytest_cursus.data.compatibility import compare_to_schema

    by_difference: dict[tuple[str, ...], list[str]] = {}
    for relative, found in schemas.items():
        differences = tuple(compare_to_schema(schema, found))
        if differences:
            by_difference.setdefault(differences, []).append(relative)
    problems = []
    for differences, names in by_difference.items():
        shown = ", ".join(names[:_LISTED]) + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")
        problems.append(f"{shown} does not match the downstream input's schema: " + "; ".join(differences))
    return problems
