"""Each recommendation fires on its stated threshold and not below it."""

from __future__ import annotations

from pytest_cursus.reporting.recommendations import recommend
from pytest_cursus.results import StepMetrics

MB = 2**20


def _kinds(**kwargs: object) -> list[str]:
    metrics = StepMetrics(**{k: v for k, v in kwargs.items() if k in StepMetrics.model_fields})  # type: ignore[arg-type]
    options = {k: v for k, v in kwargs.items() if k not in StepMetrics.model_fields}
    return [hint.kind for hint in recommend(metrics, **options)]  # type: ignore[arg-type]


def test_memory_above_80_percent_of_the_limit_is_flagged() -> None:
    assert _kinds(peak_rss_bytes=850 * MB, max_memory_mb=1000) == ["memory_near_limit"]
    assert _kinds(peak_rss_bytes=750 * MB, max_memory_mb=1000) == []
    assert _kinds(peak_rss_bytes=5000 * MB) == [], "no limit, nothing to be near"


def test_one_busy_core_on_a_multicore_machine_for_a_long_step_is_flagged() -> None:
    assert _kinds(wall_seconds=10, cpu_seconds=9.9, cpu_count=4) == ["cpu_bound_one_core"]
    assert _kinds(wall_seconds=10, cpu_seconds=9.9, cpu_count=1) == [], "one core is all there is"
    assert _kinds(wall_seconds=10, cpu_seconds=30, cpu_count=4) == [], "already parallel"
    assert _kinds(wall_seconds=1, cpu_seconds=1, cpu_count=4) == [], "too short to matter"


def test_low_cpu_with_many_bytes_moved_is_io_bound() -> None:
    assert _kinds(wall_seconds=5, cpu_seconds=1, read_bytes=200 * MB) == ["io_bound"]
    assert _kinds(wall_seconds=5, cpu_seconds=1, read_bytes=10 * MB) == [], "waiting, but not on I/O"


def test_outputs_much_larger_than_inputs_are_flagged() -> None:
    assert _kinds(input_bytes=2 * MB, output_bytes=50 * MB) == ["output_larger_than_input"]
    assert _kinds(input_bytes=10 * MB, output_bytes=50 * MB) == []
    assert _kinds(input_bytes=0, output_bytes=5 * MB) == [], "small outputs never"


def test_a_step_using_more_than_half_its_timeout_is_flagged() -> None:
    assert _kinds(wall_seconds=70, cpu_seconds=7, timeout_seconds=120) == ["near_timeout"]
    assert _kinds(wall_seconds=50, cpu_seconds=5, timeout_seconds=120) == []
