# Use this when a rule about outputs holds for every step of your pipelines (no id in two splits, no empty file) and
# should not be repeated in each scenario's expect:.
"""Two checks on every step's outputs, run after the step's own ``expect:``:

* no output file is empty (a script that opens a file and crashes before writing leaves one);
* an output split into ``train/``, ``val/`` and ``test/`` never has the same ``id`` in two
  splits (leakage between training and evaluation data).

Each problem fails the step with the message returned here.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

SPLITS = ("train", "val", "test")


def pytest_cursus_check_outputs(step: Any, outputs: dict[str, Path]) -> list[str]:
    problems = []
    for name, root in outputs.items():
        files = [root] if root.is_file() else sorted(path for path in root.rglob("*") if path.is_file())
        problems += [
            f"{step.name}.{name}: {path.relative_to(root)} is empty" for path in files if path.stat().st_size == 0
        ]
        if root.is_dir() and all((root / split).is_dir() for split in SPLITS):
            problems += _leaks(f"{step.name}.{name}", root)
    return problems


def _leaks(output: str, root: Path) -> list[str]:
    ids = {split: _ids(root / split) for split in SPLITS}
    problems = []
    for index, first in enumerate(SPLITS):
        for second in SPLITS[index + 1 :]:
            shared = ids[first] & ids[second]
            if shared:
                shown = ", ".join(sorted(shared)[:5])
                problems.append(f"{output}: {len(shared)} id(s) are in both {first}/ and {second}/ (e.g. {shown})")
    return problems


def _ids(directory: Path) -> set[str]:
    found: set[str] = set()
    for path in directory.glob("*.csv*"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="", encoding="utf-8") as handle:
            found.update(row["id"] for row in csv.DictReader(handle) if "id" in row)
    return found
