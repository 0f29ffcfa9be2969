"""``record.json`` of a step cache entry (see ``cache/store.py`` for the layout)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from pytest_cursus.results import StepResult

RECORD_FORMAT: Literal[1] = 1


class CacheRecord(BaseModel):
    format: Literal[1] = RECORD_FORMAT
    key: str
    run_id: str
    created: float
    bytes: int
    parts: dict[str, Any]
    result: StepResult
