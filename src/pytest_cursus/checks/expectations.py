"""The ``expect:`` checks on a step's outputs: each problem says what was found instead."""

from __future__ import annotations

import glob
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_cursus.formats.scenario_file import OutputExpectation, ValueCheck

if TYPE_CHECKING:
    import pandas as pd

_LISTED = 8
_FAILING_ROWS_SHOWN = 3
_COLUMNS_SHOWN = 8


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
        read_frame,
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
    for file, keys in expectation.values.items():
        problems.extend(_check_values(base, file, keys, present))
    if (
        expectation.min_rows is None
        and expectation.max_rows is None
        and not expectation.columns
        and not expectation.rows
    ):
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
            if expectation.rows:
                problems.extend(_check_rows(name, read_frame(base / name), expectation.rows))
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


def _check_values(base: Path, file: str, keys: Mapping[str, ValueCheck], present: list[str]) -> list[str]:
    """``values:``: each dotted key of one JSON file against its min/max/equals."""
    path = base / file
    if not path.is_file():
        return [f"values: no file {file}; found {_listing(present)}"]
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return [f"values: cannot read {file}: {exc}"]
    except json.JSONDecodeError as exc:
        return [f"values: {file} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
    problems = []
    for key, check in keys.items():
        found, missing = _lookup(document, key)
        if missing is not None:
            problems.append(f"{file}: key {key!r} {missing}")
            continue
        problems.extend(f"{file}: key {key!r}: {problem}" for problem in _value_problems(check, found))
    return problems


def _lookup(document: Any, key: str) -> tuple[Any, str | None]:
    """The value at a dotted path (a part that is a number indexes a list), or why there is none."""
    value = document
    walked: list[str] = []
    for part in key.split("."):
        where = ".".join(walked) or "the top level"
        if isinstance(value, dict):
            if part not in value:
                keys = ", ".join(map(str, list(value)[:_LISTED])) or "none"
                return None, f"not found: {where} has keys {keys}"
            value = value[part]
        elif isinstance(value, list) and part.isdigit():
            if int(part) >= len(value):
                return None, f"not found: {where} is a list of {len(value)} item(s)"
            value = value[int(part)]
        else:
            return None, f"not found: {where} is {_shown(value)}, not a mapping"
        walked.append(part)
    return value, None


def _value_problems(check: ValueCheck, found: Any) -> list[str]:
    problems = []
    if check.min is not None or check.max is not None:
        bounds = " and ".join(
            f"{word} {bound}" for word, bound in (("at least", check.min), ("at most", check.max)) if bound is not None
        )
        is_number = isinstance(found, (int, float)) and not isinstance(found, bool)
        if not is_number or math.isnan(found):
            problems.append(f"expected a number {bounds}, found {_shown(found)}")
        elif (check.min is not None and found < check.min) or (check.max is not None and found > check.max):
            problems.append(f"expected {bounds}, found {found}")
    if check.checks_equality and not _equal(found, check.equals):
        problems.append(f"expected {json.dumps(check.equals)}, found {_shown(found)}")
    return problems


def _equal(found: Any, expected: Any) -> bool:
    # JSON's true is no 1: a bool equals only a bool (Python's True == 1 would say otherwise)
    if isinstance(found, bool) or isinstance(expected, bool):
        return type(found) is type(expected) and found == expected
    if isinstance(found, dict) and isinstance(expected, dict):
        return found.keys() == expected.keys() and all(_equal(found[k], expected[k]) for k in found)
    if isinstance(found, list) and isinstance(expected, list):
        return len(found) == len(expected) and all(_equal(a, b) for a, b in zip(found, expected, strict=True))
    return bool(found == expected)


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{text} (a {'null' if value is None else type(value).__name__})"


def _check_rows(name: str, frame: pd.DataFrame, expressions: list[str]) -> list[str]:
    """``rows:``: each expression through pandas' own evaluator (DataFrame.eval), never Python's eval:
    it names columns only (the model rejects '@' variables, assignments and dunders)."""
    import pandas as pd

    problems = []
    for expression in expressions:
        try:
            verdict = frame.eval(expression, local_dict={}, global_dict={})
        except Exception as exc:  # pandas raises many kinds (syntax, undefined column, unsupported call)
            problems.append(
                f"{name}: rows expression {expression!r} cannot be evaluated: {type(exc).__name__}: {exc}; "
                f"its columns are {', '.join(map(str, frame.columns)) or 'none'}"
            )
            continue
        if not isinstance(verdict, pd.Series) or len(verdict) != len(frame) or verdict.dtype.kind not in "bO":
            problems.append(
                f"{name}: rows expression {expression!r} must give one true/false per row, "
                f"gave {type(verdict).__name__}{f' of {verdict.dtype}' if hasattr(verdict, 'dtype') else ''}"
            )
            continue
        failing = frame[~verdict.fillna(False).astype(bool)]
        if len(failing):
            head = failing.head(_FAILING_ROWS_SHOWN)
            # to_dict keeps each column's own type (iterrows would make every number of a row a float)
            shown = "; ".join(
                f"row {index}: "
                + ", ".join(f"{column}={value!r}" for column, value in list(row.items())[:_COLUMNS_SHOWN])
                for index, row in zip(head.index, head.to_dict("records"), strict=True)
            )
            problems.append(
                f"{name}: {len(failing)} of {len(frame)} rows fail {expression!r}; "
                f"first {min(len(failing), _FAILING_ROWS_SHOWN)}: {shown}"
            )
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
