"""S3 downloads: the plugin's concurrent, cached download against a sequential boto3 loop.

    python benchmarks/bench_s3.py            # 3 repetitions
    python benchmarks/bench_s3.py --quick    # 1 repetition

A moto S3 server runs in a child process on 127.0.0.1 (its own interpreter, so it does not
share a GIL with the client being measured) and holds 200 objects of 1 MiB of random bytes
under one prefix. Each repetition measures, in this process:

    sequential  a new boto3 client, then ``client.download_file(bucket, key, path)`` for each
                key in turn (what a hand-written script does; boto3 makes a HEAD and a GET per
                object)
    plugin      what a pytest session does for an ``s3:`` source: a new ``S3Access`` (client),
                one LIST, then 16 GETs at a time into the empty download cache, hard-linked
                into the target
    cached      the same again with a new ``S3Access`` (a new session has a new client) and the
                cache the plugin run filled: one LIST, no GET

sequential and plugin alternate which runs first. Each timing includes creating the client;
the cached run is also split into client creation, the LIST and the local work. CPU seconds of
this process (all threads) and of the server process are recorded beside wall time: on a
shared machine the CPU figures move less with the load. Each run's files are checked against
the uploaded bytes. Targets (issue 5): plugin >= 2 x faster than sequential; cached <= 0.05 x
the cold run; both judged on the median of the per-repetition ratios.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    child_env,
    machine_report,
    md_table,
    median,
    parse_args,
    progress,
    verdict,
    wait_until_idle,
)

OBJECTS = 200
OBJECT_BYTES = 2**20
BUCKET = "cursus-bench"
PREFIX = "exec-1/preprocess/processed_data/"
SPEEDUP_TARGET = 2.0
CACHED_TARGET = 0.05

SERVER = """
import logging, sys, time
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # runs until the benchmark closes our stdin
"""


def start_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port:
        raise SystemExit("the moto server did not start")
    return process, f"http://127.0.0.1:{port}"


def upload(endpoint: str) -> dict[str, str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    digests = {}
    for index in range(OBJECTS):
        body = os.urandom(OBJECT_BYTES)
        key = f"{PREFIX}part-{index:05d}.bin"
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
        digests[key.removeprefix(PREFIX)] = hashlib.sha256(body).hexdigest()
    return digests


def check(target: Path, digests: dict[str, str]) -> None:
    found = {str(p.relative_to(target)): hashlib.sha256(p.read_bytes()).hexdigest() for p in target.rglob("*") if p.is_file()}
    if found != digests:
        raise SystemExit(f"downloaded files differ from the uploaded ones in {target}")


@dataclass
class Timing:
    wall: float
    client_cpu: float  # this process, every thread
    server_cpu: float  # the moto server process

    @property
    def cpu(self) -> float:
        return self.client_cpu + self.server_cpu


def timed(server: psutil.Process, run: Callable[[], object]) -> Timing:
    before_server = sum(server.cpu_times()[:2])
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    client = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Timing(wall, client, sum(server.cpu_times()[:2]) - before_server)


def sequential(endpoint: str, target: Path) -> None:
    import boto3

    client = boto3.session.Session().client("s3", endpoint_url=endpoint)
    for index in range(OBJECTS):
        name = f"part-{index:05d}.bin"
        client.download_file(BUCKET, PREFIX + name, str(target / name))


def plugin(endpoint: str, cache: Path, target: Path, split: dict[str, float] | None = None) -> tuple[int, int]:
    """One download as a pytest session makes it; ``split`` gets the seconds of its phases."""
    from pytest_cursus.data.s3_source import S3Access, S3Limits, S3Settings, S3Uri

    uri = S3Uri.parse(f"s3://{BUCKET}/{PREFIX}")
    start = time.perf_counter()
    access = S3Access(S3Settings(endpoint_url=endpoint, cache_dir=cache))
    access.client  # noqa: B018 - created here to time it apart
    created = time.perf_counter()
    access.listing(uri)
    listed = time.perf_counter()
    summary = access.download(uri, S3Limits(), target)
    if split is not None:
        split["client"] = created - start
        split["list"] = listed - created
        split["local"] = time.perf_counter() - listed
    return summary.fetched, summary.from_cache


def main() -> None:
    args = parse_args("S3 download benchmark", default_repeat=5, quick_repeat=1)
    env = child_env(args.plugin_src)
    header = machine_report(env)
    server, endpoint = start_server()
    server_process = psutil.Process(server.pid)
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    work = Path(tempfile.mkdtemp(prefix="cursus-bench-s3-"))
    rows: list[tuple[Timing, Timing, Timing, dict[str, float], dict[str, float], float]] = []
    try:
        progress(f"uploading {OBJECTS} x {OBJECT_BYTES // 2**20} MiB to {endpoint}")
        digests = upload(endpoint)
        import pytest_cursus.data.tabular  # noqa: F401  (imported once per pytest session, not per download)

        for repetition in range(args.repeat):
            wait_until_idle(args.wait_idle, args.max_wait)
            load = os.getloadavg()[0]
            base = work / str(repetition)
            for name in ("sequential", "plugin", "cached", "cache"):
                (base / name).mkdir(parents=True)
            counts: list[tuple[int, int]] = []
            cold_split: dict[str, float] = {}
            split: dict[str, float] = {}
            runs = {
                "sequential": lambda base=base: sequential(endpoint, base / "sequential"),
                "plugin": lambda base=base, counts=counts, cold_split=cold_split: counts.append(
                    plugin(endpoint, base / "cache", base / "plugin", cold_split)
                ),
            }
            # alternate which goes first, so a change of machine load does not favour one side
            order = ["plugin", "sequential"] if repetition % 2 else ["sequential", "plugin"]
            timings = {name: timed(server_process, runs[name]) for name in order}
            seq, cold = timings["sequential"], timings["plugin"]
            cached = timed(server_process, lambda base=base, counts=counts, split=split: counts.append(plugin(endpoint, base / "cache", base / "cached", split)))
            for name in ("sequential", "plugin", "cached"):
                check(base / name, digests)
            if counts != [(OBJECTS, 0), (0, OBJECTS)]:
                raise SystemExit(f"unexpected (fetched, from cache) counts: {counts}")
            rows.append((seq, cold, cached, cold_split, split, load))
            progress(f"repetition {repetition + 1}: sequential {seq.wall:.2f}s, plugin {cold.wall:.2f}s, cached {cached.wall:.3f}s (load {load:.1f})")
            shutil.rmtree(base)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    speedups = [seq.wall / cold.wall for seq, cold, *_ in rows]
    cpu_speedups = [seq.cpu / cold.cpu for seq, cold, *_ in rows]
    cached_ratios = [cached.wall / cold.wall for _, cold, cached, *_ in rows]
    # without the client's creation, a fixed cost of every pytest session that reads S3
    without_client = [(c["list"] + c["local"]) / (w["list"] + w["local"]) for *_, w, c, _ in rows]
    # the work the cache saves: fetching the objects against finding and linking them
    transfer = [c["local"] / w["local"] for *_, w, c, _ in rows]
    table = [
        (
            index + 1,
            f"{load:.1f}",
            f"{seq.wall:.2f} ({seq.client_cpu:.2f} + {seq.server_cpu:.2f})",
            f"{cold.wall:.2f} = {w['client']:.2f} + {w['list']:.2f} + {w['local']:.2f} ({cold.client_cpu:.2f} + {cold.server_cpu:.2f})",
            f"{cached.wall:.3f} = {c['client']:.3f} + {c['list']:.3f} + {c['local']:.3f}",
            f"{seq.wall / cold.wall:.2f}",
            f"{seq.cpu / cold.cpu:.2f}",
            f"{cached.wall / cold.wall:.3f}",
            f"{without_client[index]:.3f}",
            f"{transfer[index]:.3f}",
        )
        for index, (seq, cold, cached, w, c, load) in enumerate(rows)
    ]
    print(f"### S3 downloads (bench_s3.py, {args.repeat} repetitions)\n")
    print(header + "\n")
    print(
        md_table(
            [
                "rep",
                "load at start",
                "sequential download_file: wall s (client CPU + server CPU)",
                "plugin, cold cache: wall s = client + LIST + fetch (client CPU + server CPU)",
                "plugin, cached: wall s = client + LIST + local",
                "speed-up (wall)",
                "speed-up (CPU)",
                "cached / cold",
                "same, without creating the client",
                "local / fetch",
            ],
            table,
        )
    )
    print()
    print(f"- **Speed-up: median {median(speedups):.2f} x** wall (target >= {SPEEDUP_TARGET:g} x): {verdict(median(speedups) >= SPEEDUP_TARGET)}; CPU used, client and server together: median {median(cpu_speedups):.2f} x less")
    print(f"- **Cached run: median {median(cached_ratios):.3f} x the cold run** (target <= {CACHED_TARGET:g}): {verdict(median(cached_ratios) <= CACHED_TARGET)}")
    print(f"  - without creating the boto3 client (a fixed cost of each pytest session): median {median(without_client):.3f} x")
    print(f"  - the part the cache replaces (fetching 200 objects, against finding and hard-linking them): median {median(transfer):.3f} x")


if __name__ == "__main__":
    main()
