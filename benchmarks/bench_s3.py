"""S3 downloads: the plugin's concurrent, cached download against a sequential boto3 loop.

    python benchmarks/bench_s3.py            # 5 repetitions
    python benchmarks/bench_s3.py --quick    # 1 repetition

A moto S3 server runs in a child process on 127.0.0.1 (its own interpreter, so it does not
share a GIL with the client being measured) and holds 200 objects of 1 MiB of random bytes
under one prefix. Each repetition measures:

    sequential  in this process: a new boto3 client, then ``client.download_file(bucket, key,
                path)`` for each key in turn (what a hand-written script does; boto3 makes a
                HEAD and a GET per object)
    plugin      in a new Python process, what a pytest session does for an ``s3:`` source: a
                new ``S3Access`` (client), one LIST, then 16 GETs at a time into the empty
                download cache, hard-linked into the target
    cached      the same in another new process, with the cache the plugin run filled: one
                LIST, no GET; three such processes per repetition, the median one (by wall
                time) kept, as these short runs are the ones a busy machine disturbs most

Each plugin run has a process of its own because that is what a new pytest session has: the
client it creates parses botocore's service models afresh, and nothing a previous run of the
same process kept (the plugin shares parsed models between the clients of one process) can
help it. In that process the plugin's own modules are imported before timing (a pytest session
imports them with the plugin); botocore, which the plugin imports on first S3 use, is imported
inside the timing but reported apart (``import``), so each run is split into import, client
creation, the LIST and the local work (fetching into the cache and linking, or finding and
linking). sequential and plugin alternate which runs first. CPU seconds of the measured process
(all threads) and of the server process are recorded beside wall time: on a shared machine the
CPU figures move less with the load. Each run's files are checked against the uploaded bytes.
Targets (issue 5): plugin >= 2 x faster than sequential; cached <= 0.05 x the cold run; both
judged on the median of the per-repetition ratios, the second with and without the import.
"""

from __future__ import annotations

import hashlib
import json
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
CACHED_RUNS = 3  # per repetition; the median is kept
PHASES = ("import", "client", "list", "local")

SERVER = """
import logging, sys, time
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # runs until the benchmark closes our stdin
"""

# One plugin download in a new process, as a new pytest session makes it; prints its phases.
PLUGIN_RUN = """
import json, resource, sys, time
from pathlib import Path

from pytest_cursus.data import s3_source, tabular  # the plugin's modules: loaded with the plugin
from pytest_cursus.data.s3_source import S3Access, S3Limits, S3Settings, S3Uri

endpoint, cache, target, uri = sys.argv[1:5]

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

marks = [time.perf_counter()]
s3_source.load_s3_libraries()  # what the first S3 use of a session imports
marks.append(time.perf_counter())
cpu_start = cpu()  # CPU from here on: as for the sequential run, which imports nothing
access = S3Access(S3Settings(endpoint_url=endpoint, cache_dir=Path(cache)))
access.client  # created here to time it apart
marks.append(time.perf_counter())
access.listing(S3Uri.parse(uri))
marks.append(time.perf_counter())
summary = access.download(S3Uri.parse(uri), S3Limits(), Path(target))
marks.append(time.perf_counter())
phases = dict(zip(("import", "client", "list", "local"), (b - a for a, b in zip(marks, marks[1:]))))
print(json.dumps(
    {"phases": phases, "cpu": cpu() - cpu_start, "fetched": summary.fetched, "from_cache": summary.from_cache}
))
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
    found = {
        str(p.relative_to(target)): hashlib.sha256(p.read_bytes()).hexdigest() for p in target.rglob("*") if p.is_file()
    }
    if found != digests:
        raise SystemExit(f"downloaded files differ from the uploaded ones in {target}")


@dataclass
class Timing:
    wall: float  # without the import of botocore (see `phases`)
    client_cpu: float  # the measured process, every thread
    server_cpu: float  # the moto server process
    phases: dict[str, float]

    @property
    def cpu(self) -> float:
        return self.client_cpu + self.server_cpu

    @property
    def with_import(self) -> float:
        return self.wall + self.phases.get("import", 0.0)


def timed_here(server: psutil.Process, run: Callable[[], object]) -> Timing:
    before_server = sum(server.cpu_times()[:2])
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    client = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Timing(wall, client, sum(server.cpu_times()[:2]) - before_server, {})


def sequential(endpoint: str, target: Path) -> None:
    import boto3

    client = boto3.session.Session().client("s3", endpoint_url=endpoint)
    for index in range(OBJECTS):
        name = f"part-{index:05d}.bin"
        client.download_file(BUCKET, PREFIX + name, str(target / name))


def plugin(
    server: psutil.Process, env: dict[str, str], endpoint: str, cache: Path, target: Path, expect: tuple[int, int]
) -> Timing:
    """One download in a new process; its own clock and CPU counters time it from inside."""
    before_server = sum(server.cpu_times()[:2])
    done = subprocess.run(
        [sys.executable, "-c", PLUGIN_RUN, endpoint, str(cache), str(target), f"s3://{BUCKET}/{PREFIX}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    server_cpu = sum(server.cpu_times()[:2]) - before_server  # its idle start-up is ~0 for the server
    if done.returncode != 0:
        raise SystemExit(f"the plugin run failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if (result["fetched"], result["from_cache"]) != expect:
        raise SystemExit(
            f"unexpected (fetched, from cache) counts: {(result['fetched'], result['from_cache'])}, expected {expect}"
        )
    phases = result["phases"]
    return Timing(sum(phases[name] for name in PHASES if name != "import"), result["cpu"], server_cpu, phases)


def main() -> None:
    args = parse_args("S3 download benchmark", default_repeat=5, quick_repeat=1)
    env = child_env(args.plugin_src)
    header = machine_report(env)
    server, endpoint = start_server()
    server_process = psutil.Process(server.pid)
    credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(credentials)
    env.update(credentials)
    work = Path(tempfile.mkdtemp(prefix="cursus-bench-s3-"))
    rows: list[tuple[Timing, Timing, Timing, float]] = []
    try:
        progress(f"uploading {OBJECTS} x {OBJECT_BYTES // 2**20} MiB to {endpoint}")
        digests = upload(endpoint)
        for repetition in range(args.repeat):
            wait_until_idle(args.wait_idle, args.max_wait)
            load = os.getloadavg()[0]
            base = work / str(repetition)
            for name in ("sequential", "plugin", "cache"):
                (base / name).mkdir(parents=True)
            runs: dict[str, Callable[[], Timing]] = {
                "sequential": lambda base=base: timed_here(
                    server_process, lambda: sequential(endpoint, base / "sequential")
                ),
                "plugin": lambda base=base: plugin(
                    server_process, env, endpoint, base / "cache", base / "plugin", (OBJECTS, 0)
                ),
            }
            # alternate which goes first, so a change of machine load does not favour one side
            order = ["plugin", "sequential"] if repetition % 2 else ["sequential", "plugin"]
            timings = {name: runs[name]() for name in order}
            seq, cold = timings["sequential"], timings["plugin"]
            tries = [
                plugin(server_process, env, endpoint, base / "cache", base / f"cached-{index}", (0, OBJECTS))
                for index in range(CACHED_RUNS)
            ]
            cached = sorted(tries, key=lambda timing: timing.wall)[CACHED_RUNS // 2]
            for name in ("sequential", "plugin", *(f"cached-{index}" for index in range(CACHED_RUNS))):
                check(base / name, digests)
            rows.append((seq, cold, cached, load))
            progress(
                f"repetition {repetition + 1}: sequential {seq.wall:.2f}s, plugin {cold.wall:.2f}s, cached "
                f"{cached.wall:.3f}s (load {load:.1f})"
            )
            shutil.rmtree(base)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    speedups = [seq.wall / cold.wall for seq, cold, *_ in rows]
    cpu_speedups = [seq.cpu / cold.cpu for seq, cold, *_ in rows]
    cached_ratios = [cached.wall / cold.wall for _, cold, cached, _ in rows]
    cached_cpu = [cached.cpu / cold.cpu for _, cold, cached, _ in rows]
    with_import = [cached.with_import / cold.with_import for _, cold, cached, _ in rows]
    # the work the cache replaces: fetching the objects against finding and linking them
    local = [cached.phases["local"] / cold.phases["local"] for _, cold, cached, _ in rows]

    def split(timing: Timing) -> str:
        return " + ".join(f"{timing.phases[name]:.3f}" for name in ("client", "list", "local"))

    table = [
        (
            index + 1,
            f"{load:.1f}",
            f"{seq.wall:.2f} ({seq.client_cpu:.2f} + {seq.server_cpu:.2f})",
            f"{cold.wall:.2f} = {split(cold)} ({cold.client_cpu:.2f} + {cold.server_cpu:.2f})",
            f"{cached.wall:.3f} = {split(cached)} ({cached.client_cpu:.3f} + {cached.server_cpu:.3f})",
            f"{cold.phases['import']:.3f} / {cached.phases['import']:.3f}",
            f"{seq.wall / cold.wall:.2f}",
            f"{seq.cpu / cold.cpu:.2f}",
            f"{cached_ratios[index]:.3f}",
            f"{cached_cpu[index]:.3f}",
            f"{with_import[index]:.3f}",
            f"{local[index]:.3f}",
        )
        for index, (seq, cold, cached, load) in enumerate(rows)
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
                f"plugin, cached (median of {CACHED_RUNS}): wall s = client + LIST + local (client CPU + server CPU)",
                "import of botocore, cold / cached",
                "speed-up (wall)",
                "speed-up (CPU)",
                "cached / cold",
                "same, CPU",
                "same, wall with the import",
                "local / fetch",
            ],
            table,
        )
    )
    print()
    print(
        f"- **Speed-up: median {median(speedups):.2f} x** wall (target >= {SPEEDUP_TARGET:g} x): "
        f"{verdict(median(speedups) >= SPEEDUP_TARGET)}; CPU used, client and server together: median "
        f"{median(cpu_speedups):.2f} x less"
    )
    print(
        f"- **Cached run: median {median(cached_ratios):.3f} x the cold run** (target <= {CACHED_TARGET:g}): "
        f"{verdict(median(cached_ratios) <= CACHED_TARGET)}"
    )
    print(
        "  - in CPU seconds, client and server together (less disturbed by other load): median "
        f"{median(cached_cpu):.3f} x"
    )
    print(
        "  - counting the import of botocore in both runs (a fixed cost of a session's first S3 use): median "
        f"{median(with_import):.3f} x: {verdict(median(with_import) <= CACHED_TARGET)}"
    )
    print(
        "  - the part the cache replaces (fetching 200 objects, against finding and hard-linking them): median "
        f"{median(local):.3f} x"
    )
    fixed = [cached.phases["client"] + cached.phases["list"] for _, _, cached, _ in rows]
    print(
        f"  - fixed cost of the cached run, client + LIST: median {median(fixed):.3f} s (client "
        f"{median([c.phases['client'] for _, _, c, _ in rows]):.3f} s, LIST "
        f"{median([c.phases['list'] for _, _, c, _ in rows]):.3f} s)"
    )


if __name__ == "__main__":
    main()
