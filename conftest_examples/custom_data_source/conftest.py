# Use this when a pipeline's data comes from a system pytest-cursus has no data source for (here: a SQL query against a
# database dump).
"""A custom data source kind, ``sql_query``: loads a SQL dump into an in-memory SQLite database,
runs the scenario's query and writes the rows as CSV, as the pipeline's loader step exports
them from the warehouse. A scenario below this directory uses it as::

    data:
      transactions:
        custom: {kind: sql_query, dump: transactions.sql, query: "select * from transactions"}
"""

from __future__ import annotations

import csv
import hashlib
import sqlite3
from pathlib import Path
from typing import Any


def pytest_cursus_data_source(kind: str, spec: dict[str, Any], target_dir: Path, scenario_dir: Path) -> Path | None:
    if kind != "sql_query":
        return None  # another plugin's kind
    database = sqlite3.connect(":memory:")
    try:
        database.executescript((scenario_dir / spec["dump"]).read_text(encoding="utf-8"))
        rows = database.execute(spec["query"])
        with open(target_dir / "part-00000.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(column[0] for column in rows.description)
            writer.writerows(rows)  # NULL becomes an empty field, as the warehouse export writes it
    finally:
        database.close()
    return target_dir


def pytest_cursus_data_source_key(kind: str, spec: dict[str, Any], scenario_dir: Path) -> str | None:
    """The dump and the query decide the rows: steps reading them stay cached until one changes."""
    if kind != "sql_query":
        return None
    dump = (scenario_dir / spec["dump"]).read_bytes()
    return hashlib.sha256(dump + spec["query"].encode()).hexdigest()
