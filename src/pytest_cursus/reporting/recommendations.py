"""Optimisation hints from measured numbers, each rule with its threshold stated.

    >>> from pytest_cursus.results import StepMetrics
    >>> hints = recommend(StepMetrics(wall_seconds=10, cpu_seconds=9.8, cpu_count=8), timeout_seconds=600)
    >>> [hint.kind for hint in hints]
    ['cpu_bound_one_core']

Caveats:
    * The numbers come from one run on this machine; a hint is a lead to look at, not a verdict.
    * Cached steps carry the numbers of the run that produced them.
"""

from __future__ import annotations

from pytest_cursus.reporting.run_report import Recommendation
from pytest_cursus.results import StepMetrics

MEMORY_NEAR_LIMIT = 0.80  # peak RSS above this fraction of max_memory_mb
ONE_CORE_LOW, ONE_CORE_HIGH = 0.85, 1.15  # average cores busy counted as "one core, fully"
CPU_BOUND_MIN_SECONDS = 2.0  # shorter steps are not worth parallelising
IO_BOUND_MAX_UTILISATION = 0.5  # CPU busy below half a core ...
IO_BOUND_MIN_BYTES = 64 * 2**20  # ... while moving at least this many bytes (read + written)
IO_BOUND_MIN_SECONDS = 1.0
OUTPUT_GROWTH_RATIO = 10.0  # outputs more than 10x the size of the inputs ...
OUTPUT_GROWTH_MIN_BYTES = 10 * 2**20  # ... and at least 10 MiB
NEAR_TIMEOUT = 0.50  # wall time above half the timeout leaves little room for growth


def recommend(
    metrics: StepMetrics,
    *,
    timeout_seconds: float | None = None,
    max_memory_mb: float | None = None,
    output_bytes: int = 0,
) -> list[Recommendation]:
    hints = []
    peak_mb = metrics.peak_rss_mb
    if max_memory_mb and peak_mb > MEMORY_NEAR_LIMIT * max_memory_mb:
        hints.append(
            Recommendation(
                kind="memory_near_limit",
                message=f"peak memory {peak_mb:.0f} MB is {peak_mb / max_memory_mb:.0%} "
                f"of the {max_memory_mb:g} MB limit "
                f"(> {MEMORY_NEAR_LIMIT:.0%}): read in chunks, select columns, use smaller dtypes, "
                "or raise max_memory_mb before the data grows",
            )
        )
    utilisation = metrics.cpu_utilisation
    if (
        metrics.wall_seconds >= CPU_BOUND_MIN_SECONDS
        and metrics.cpu_count >= 2
        and ONE_CORE_LOW <= utilisation <= ONE_CORE_HIGH
    ):
        hints.append(
            Recommendation(
                kind="cpu_bound_one_core",
                message=f"CPU-bound on one core ({utilisation:.0%} of a core for {metrics.wall_seconds:.1f}s) on a "
                f"{metrics.cpu_count}-core machine: parallelise (multiprocessing, n_jobs=-1, vectorised pandas/numpy)",
            )
        )
    moved = metrics.read_bytes + metrics.write_bytes
    if (
        metrics.wall_seconds >= IO_BOUND_MIN_SECONDS
        and utilisation < IO_BOUND_MAX_UTILISATION
        and moved >= IO_BOUND_MIN_BYTES
    ):
        hints.append(
            Recommendation(
                kind="io_bound",
                message=f"I/O-bound: {_mb(moved)} read+written with the CPU {utilisation:.0%} busy: use a columnar "
                "format (Parquet), read only needed columns, avoid re-reading the same files",
            )
        )
    if output_bytes >= OUTPUT_GROWTH_MIN_BYTES and output_bytes > OUTPUT_GROWTH_RATIO * max(metrics.input_bytes, 1):
        ratio = output_bytes / max(metrics.input_bytes, 1)
        hints.append(
            Recommendation(
                kind="output_larger_than_input",
                message=f"outputs ({_mb(output_bytes)}) are {ratio:.0f}x the inputs ({_mb(metrics.input_bytes)}): "
                "check for uncompressed text where Parquet/gzip would do, duplicated rows or an exploding join",
            )
        )
    if timeout_seconds and metrics.wall_seconds > NEAR_TIMEOUT * timeout_seconds:
        hints.append(
            Recommendation(
                kind="near_timeout",
                message=f"took {metrics.wall_seconds:.1f}s, {metrics.wall_seconds / timeout_seconds:.0%} of its "
                f"{timeout_seconds:g}s timeout (> {NEAR_TIMEOUT:.0%}): little room for more data; "
                "speed it up or raise timeout",
            )
        )
    return hints


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
