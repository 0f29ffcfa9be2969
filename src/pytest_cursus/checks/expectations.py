"""The ``expect:`` checks on a step's outputs: each problem says what was found instead."""

from __future__ import annotations

import glob
from collections.abc import Mapping
from pathlib import Path

from pytest_cursus.formats.scenario_file import OutputExpectation

_LISTED = 8


def check_expectations(expect: Mapping[str, OutputExpectation], outputs: Mapping[str, Path]) -> list[str]:
    problems: list[str] = []
    for name, expectation in expect.items():
        problems.extend(f"output {name!r}: {problem}" for problem in _check_output(expectation, outputs[name]))
    return problems


def _check_output(expectation: OutputExpectation, root: Path) -> list[str]:
    # pandas and pyarrow load only when outputs are checked, not when pytest starts
    from pytest_cursus.data.tabular import (
        UnreadableTableError,
        count_rows,
        read_columns,
        tabular_format,
    )

    present = _relative_files(root)
    if not present:
        return [f"is empty: the step wrote no file under {root}"]
    base = root.parent if root.is_file() else root
    problems = []
    matched: set[str] = set()
    for pattern in expectation.files:
        hits = _glob(root, pattern)
        if not hits:
            problems.append(f"no file matches {pattern!r}; found {_listing(present)}")
        matched.update(hits)
    if expectation.min_rows is None and expectation.max_rows is None and not expectation.columns:
        return problems
    candidates = sorted(matched) if expectation.files else present
    tables = [name for name in candidates if tabular_format(base / name) is not None]
    if not tables:
        return [
            *problems,
            "has no tabular file (csv, tsv, parquet, jsonl, optionally .gz) to check rows or columns in; "
            f"found {_listing(present)}",
        ]
    rows: dict[str, int | None] = {}  # None: unreadable, so it counts no row
    for name in tables:
        try:
            rows[name] = None
            rows[name] = count_rows(base / name)
            if expectation.columns:
                columns = read_columns(base / name)
                missing = [column for column in expectation.columns if column not in columns]
                if missing:
                    problems.append(
                        f"{name} lacks column(s) {', '.join(missing)}; it has {', '.join(columns) or 'no columns'}"
                    )
        except UnreadableTableError as exc:
            problems.append(f"cannot read {name}: {exc.reason}")
    total = sum(count or 0 for count in rows.values())
    counted = ", ".join(
        f"{name}: {'unreadable' if count is None else count}" for name, count in list(rows.items())[:_LISTED]
    )
    if expectation.min_rows is not None and total < expectation.min_rows:
        problems.append(f"expected at least {expectation.min_rows} rows, found {total} ({counted})")
    if expectation.max_rows is not None and total > expectation.max_rows:
        problems.append(f"expected at most {expectation.max_rows} rows, found {total} ({counted})")
    return problems


def _relative_files(root: Path) -> list[str]:
    if root.is_file():
        return [root.name]
    if not root.is_dir():
        return []
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def _glob(root: Path, pattern: str) -> list[str]:
    if root.is_file():
        return [root.name] if Path(root.name).match(pattern) else []
    return sorted(
        str(Path(hit).relative_to(root))
        for hit in glob.glob(str(root / pattern), recursive=True)
        if Path(hit).is_file()
    )


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return f"{shown} and {len(names) - _LISTED} more" if len(names) > _LISTED else shown
