"""Checks on a DAG edge: is the upstream output something the downstream input can read?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_cursus.data.schema import DataSchema

_LISTED = 5


def check_edge(output: Path, schema: DataSchema | None) -> list[str]:
    """Problems with ``output`` as input data: missing, empty, unreadable, or off-schema."""
    # pandas and pyarrow load only when an edge is checked, not when pytest starts
    from pytest_cursus.data.compatibility import compare_to_schema
    from pytest_cursus.data.tabular import UnreadableTableError, list_tabular_files, read_columns

    if not output.exists():
        return [f"the output was not written: {output} does not exist"]
    files = [output] if output.is_file() else sorted(p for p in output.rglob("*") if p.is_file())
    if not files:
        return [f"the output is empty: no file under {output}"]
    if all(file.stat().st_size == 0 for file in files):
        return [f"the output is empty: {len(files)} file(s) under {output}, all of 0 bytes"]
    problems = []
    tables = list_tabular_files(output)
    schemas: dict[Path, dict[str, str]] = {}
    for table in tables:
        try:
            schemas[table] = read_columns(table)
        except UnreadableTableError as exc:
            problems.append(f"unreadable: {exc}")
    if schema is None:
        return problems
    if not tables:
        return [
            *problems,
            f"the downstream input declares a data schema, but {output} holds no tabular file "
            "(csv, tsv, parquet, jsonl)",
        ]
    by_difference: dict[tuple[str, ...], list[Path]] = {}
    for table, found in schemas.items():
        differences = tuple(compare_to_schema(schema, found))
        if differences:
            by_difference.setdefault(differences, []).append(table)
    for differences, tables_with_it in by_difference.items():
        names = [str(t.relative_to(output)) if output.is_dir() else t.name for t in tables_with_it]
        shown = ", ".join(names[:_LISTED]) + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")
        problems.append(f"{shown} does not match the downstream input's schema: " + "; ".join(differences))
    return problems
