# Use this when you want a record of every step run in your own format (a log for a dashboard, to spot steps getting
# slower), beyond pytest's report.
"""Appends one JSON line per finished step to a log file: scenario, step, outcome, whether it
came from the step cache, wall time and peak memory. The file is ``$CURSUS_STEP_LOG``, or
``step-log.jsonl`` next to this conftest.py.

Under pytest-xdist each worker appends the steps it produced: lines are short, written with
one ``write`` call in append mode, so they do not interleave.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def pytest_cursus_step_finished(result: Any) -> None:
    line = {
        "scenario": result.scenario,
        "step": result.step,
        "outcome": result.outcome,
        "cached": result.cached,
        "failure": result.failure.kind if result.failure else None,
        "wall_seconds": round(result.metrics.wall_seconds, 3),
        "peak_rss_mb": round(result.metrics.peak_rss_mb, 1),
    }
    log = Path(os.environ.get("CURSUS_STEP_LOG") or Path(__file__).with_name("step-log.jsonl"))
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
