"""Synthetic data at volume: pytest-cursus' generator against a hand-written numpy + pyarrow baseline.

    python benchmarks/bench_synthetic.py            # 1,000,000 rows x 10 columns, 3 repetitions
    python benchmarks/bench_synthetic.py --quick    # 1 repetition

Every measurement runs in its own child process (``--worker NAME``), which reports its wall time
and its peak RSS (``ru_maxrss``), so the two sides never share a heap. Both sides generate the
same ten columns (types, ranges, nulls, weights, uniqueness) for 1,000,000 rows; the baseline
builds each column whole with numpy and writes one table with ``pyarrow.parquet.write_table``,
the plugin generates and writes in 100,000-row chunks. The gzipped CSV shards of the plugin are
measured too (the baseline has no equivalent). Target: plugin Parquet time <= 1.5 x baseline.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    child_env,
    fmt_s,
    machine_report,
    md_table,
    median,
    parse_args,
    progress,
    verdict,
)

ROWS = 1_000_000
COLUMNS = {
    "id": {"type": "int", "unique": True},
    "ref": {"type": "int", "unique": True, "min": 0, "max": 50_000_000},
    "amount": {"type": "float", "min": 0, "max": 5000, "nulls": 0.02},
    "score": {"type": "float"},
    "qty": {"type": "int", "min": 1, "max": 100},
    "flag": {"type": "bool", "nulls": 0.1},
    "country": {"type": "category", "values": ["US", "GB", "DE", "FR"]},
    "label": {"type": "category", "values": [0, 1], "weights": [0.9, 0.1]},
    "created": {"type": "datetime", "start": "2024-01-01", "end": "2024-12-31"},
    "note": {"type": "string", "max_length": 40},
}
# cursus-parquet-3x: three times the rows, to show that memory does not grow with them (but for the
# up-front values of the two unique columns, 16 bytes a row)
WORKERS = ("cursus-parquet", "baseline-parquet", "cursus-csv-gz-shards", "cursus-parquet-3x", "imports-only")


def worker(name: str, target: Path) -> dict[str, float]:
    import numpy as np  # noqa: F401  (both sides pay the same imports before the clock starts)
    import pyarrow
    import pyarrow.parquet  # noqa: F401

    from pytest_cursus.data.schema import SyntheticSpec
    from pytest_cursus.data.synthetic import write_synthetic

    start = time.perf_counter()
    if name in ("cursus-parquet", "cursus-parquet-3x"):
        rows = ROWS * (3 if name.endswith("3x") else 1)
        write_synthetic(
            SyntheticSpec.model_validate({"rows": rows, "seed": 7, "format": "parquet", "columns": COLUMNS}), target
        )
    elif name == "cursus-csv-gz-shards":
        spec = {"rows": ROWS, "seed": 7, "format": "csv", "compression": "gzip", "shards": 4, "columns": COLUMNS}
        write_synthetic(SyntheticSpec.model_validate(spec), target)
    elif name == "baseline-parquet":
        baseline(target / "baseline.parquet")
    seconds = time.perf_counter() - start
    size = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "bytes": size}


def baseline(path: Path) -> None:
    """The same ten columns as a person would write them with numpy and pyarrow, whole-table."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    n = ROWS

    def with_nulls(values: np.ndarray, share: float, kind: pa.DataType) -> pa.Array:
        mask = np.zeros(n, dtype=bool)
        mask[rng.choice(n, size=round(n * share), replace=False)] = True
        return pa.array(values, type=kind, mask=mask)

    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)
    lengths = rng.integers(1, 41, size=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = alphabet[rng.integers(0, len(alphabet), size=int(offsets[-1]))]
    notes = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]).cast(
        pa.string()
    )
    start, end = np.datetime64("2024-01-01", "s").astype(np.int64), np.datetime64("2024-12-31", "s").astype(np.int64)
    table = pa.table(
        {
            "id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "ref": pa.array(rng.choice(50_000_001, size=n, replace=False).astype(np.int64)),
            "amount": with_nulls(rng.uniform(0, 5000, n), 0.02, pa.float64()),
            "score": pa.array(rng.uniform(0, 1, n)),
            "qty": pa.array(rng.integers(1, 101, n, dtype=np.int64)),
            "flag": with_nulls(rng.integers(0, 2, n).astype(bool), 0.1, pa.bool_()),
            "country": pa.array(
                np.array(["US", "GB", "DE", "FR"], dtype=object)[rng.integers(0, 4, n)], type=pa.string()
            ),
            "label": pa.array(rng.choice(2, size=n, p=[0.9, 0.1]).astype(np.int64)),
            "created": pa.array(rng.integers(start, end, n, endpoint=True), type=pa.timestamp("s")),
            "note": notes,
        }
    )
    pq.write_table(table, path)


def measure(name: str, env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cursus-bench-synthetic-") as directory:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--target", directory],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"worker {name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if "--worker" in sys.argv:
        name = sys.argv[sys.argv.index("--worker") + 1]
        target = Path(sys.argv[sys.argv.index("--target") + 1])
        print(json.dumps(worker(name, target)))
        return
    args = parse_args(__doc__.splitlines()[0], default_repeat=3, quick_repeat=1)
    env = child_env(args.plugin_src)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in WORKERS}
    for round_ in range(args.repeat):
        for name in WORKERS:  # interleaved, so a busy moment of the machine hits both sides
            progress(f"round {round_ + 1}/{args.repeat}: {name}")
            results[name].append(measure(name, env))
    rows = []
    for name in WORKERS:
        runs = results[name]
        rows.append(
            [
                name,
                fmt_s(median([r["seconds"] for r in runs])),
                f"{max(r['peak_rss_mb'] for r in runs):.0f}",
                f"{median([r['bytes'] for r in runs]) / 2**20:.1f}",
            ]
        )
    ratio = median([r["seconds"] for r in results["cursus-parquet"]]) / median(
        [r["seconds"] for r in results["baseline-parquet"]]
    )
    print(machine_report(env))
    print()
    print(f"{ROWS:,} rows x {len(COLUMNS)} columns, {args.repeat} repetition(s), median time, max peak RSS:\n")
    print(md_table(["worker", "seconds", "peak RSS (MB)", "output (MB)"], rows))
    print()
    print(f"plugin Parquet / baseline Parquet time: {ratio:.2f} (target <= 1.5) {verdict(ratio <= 1.5)}")


if __name__ == "__main__":
    main()
