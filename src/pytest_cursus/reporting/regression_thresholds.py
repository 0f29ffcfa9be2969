"""When a step counts as regressed against a ``--cursus-baseline``: the ratios and absolute floors.

Apart from ``baseline.py`` (which needs the report models) so that the option table can state
its defaults without importing pydantic in every pytest session.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_TIME_RATIO = 1.5
DEFAULT_MAX_MEMORY_RATIO = 1.3
DEFAULT_MIN_TIME_INCREASE_S = 1.0
DEFAULT_MIN_MEMORY_INCREASE_MB = 50.0


@dataclass(frozen=True)
class Thresholds:
    max_time_ratio: float = DEFAULT_MAX_TIME_RATIO
    max_memory_ratio: float = DEFAULT_MAX_MEMORY_RATIO
    min_time_increase_s: float = DEFAULT_MIN_TIME_INCREASE_S
    min_memory_increase_mb: float = DEFAULT_MIN_MEMORY_INCREASE_MB
