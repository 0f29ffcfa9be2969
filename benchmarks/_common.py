"""Shared helpers of the benchmark scripts: machine facts, timed pytest subprocesses, tables.

The benchmarks are plain scripts run by hand (``python benchmarks/bench_cache.py``), never
collected by pytest. Each builds a throw-away project under a temporary directory and times
``python -m pytest ...`` as a real subprocess with ``time.perf_counter``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:randomly"]

# Environment variables that would change how the inner pytest behaves.
_SCRUBBED_ENV = (
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_XDIST_AUTO_NUM_WORKERS",
    "PYTEST_CURRENT_TEST",
)


def parse_args(
    description: str,
    default_repeat: int,
    quick_repeat: int,
    extra: list[tuple[tuple[str, ...], dict]] | None = None,
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer repetitions ({quick_repeat} instead of {default_repeat})",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help=f"repetitions of every configuration (default {default_repeat})",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the generated project and print where it is",
    )
    parser.add_argument(
        "--no-pyc",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE as the environment has it (default: bytecode caching on, "
        "in a private PYTHONPYCACHEPREFIX, as on a normal developer machine)",
    )
    parser.add_argument(
        "--plugin-src",
        type=Path,
        default=None,
        metavar="DIR",
        help="put DIR (a checkout's src/) first on PYTHONPATH, to measure another version of pytest_cursus "
        "than the installed one",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=1.0,
        metavar="SHARE",
        help="before each repetition, wait until the machine's CPU is at most SHARE busy (e.g. 0.2); "
        "default 1 = never wait",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=600,
        metavar="S",
        help="longest wait for --wait-idle (default 600)",
    )
    for flags, kwargs in extra or []:
        parser.add_argument(*flags, **kwargs)
    args = parser.parse_args()
    if args.repeat is None:
        args.repeat = quick_repeat if args.quick else default_repeat
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


PYCACHE_PREFIX = Path(tempfile.gettempdir()) / "cursus-bench-pycache"


def child_env(plugin_src: Path | None, pyc: bool = True) -> dict[str, str]:
    """The environment of the timed pytest processes.

    With ``pyc`` (the default), bytecode caching is on even if the calling shell sets
    PYTHONDONTWRITEBYTECODE: without it every pytest process re-compiles and re-runs pytest's
    assertion rewriting over every plugin module it imports (seconds per process). The .pyc
    files go to a private PYTHONPYCACHEPREFIX, never next to the sources.
    """
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    if pyc:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE_PREFIX)
    if plugin_src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(plugin_src.resolve()), *filter(None, [env.get("PYTHONPATH")])])
    return env


@contextmanager
def project_dir(prefix: str, keep: bool) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    # `kill PID` should clean up too: turn SIGTERM into SystemExit so `finally` runs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        # an ini file of its own: rootdir is the project, no addopts/testpaths leak in
        (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        yield root
    finally:
        if keep:
            print(f"\n(project kept in {root})", file=sys.stderr)
        else:
            # step cache entries are stored read-only: their files cannot be removed before this
            subprocess.run(["chmod", "-R", "u+w", str(root)], check=False)
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class Run:
    label: str
    seconds: float
    returncode: int
    output: str
    load_before: float
    foreign_share: float  # share of the machine's CPU capacity used by other processes meanwhile
    own_cpu: float  # CPU-seconds (user + system) of the pytest process tree


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy since boot (all cores), from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICK


def _own_children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_until_idle(max_busy: float, max_wait: float) -> None:
    """Wait (up to ``max_wait`` s) until the machine's CPU is at most ``max_busy`` busy over 2 s."""
    if max_busy >= 1:
        return
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + max_wait
    told = 0.0
    while True:
        before = _cpu_busy_seconds()
        time.sleep(2)
        busy = (_cpu_busy_seconds() - before) / (2 * cores)
        if busy <= max_busy:
            return
        if time.monotonic() > deadline:
            progress(f"  machine still {busy:.0%} busy after waiting {max_wait:.0f}s; running anyway")
            return
        if time.monotonic() - told > 30:
            progress(f"  machine {busy:.0%} busy; waiting for it to settle below {max_busy:.0%} ...")
            told = time.monotonic()


def run_command(
    label: str,
    command: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float = 1800,
    check: bool = False,
) -> Run:
    """Run ``command`` to completion; wall time, output, and the CPU used by it and by others."""
    load = os.getloadavg()[0]
    busy_before, own_before = _cpu_busy_seconds(), _own_children_cpu()
    start = time.perf_counter()
    completed = subprocess.run(
        list(command),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - start
    # CPU the machine spent on others' work while this run lasted: a measure of the noise
    own = _own_children_cpu() - own_before
    foreign = (_cpu_busy_seconds() - busy_before) - own
    share = max(0.0, foreign) / (seconds * (os.cpu_count() or 1))
    run = Run(label, seconds, completed.returncode, completed.stdout, load, share, own)
    if check:
        check_ok(run)
    return run


def run_pytest(
    label: str,
    args: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float = 1800,
) -> Run:
    return run_command(label, [*PYTEST, *args], cwd, env, timeout)


def check_ok(run: Run, expect_rc: int = 0) -> None:
    if run.returncode != expect_rc:
        tail = "\n".join(run.output.splitlines()[-40:])
        raise SystemExit(f"benchmark run {run.label!r} exited {run.returncode} (expected {expect_rc}):\n{tail}")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**MISS**"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _free_g() -> str:
    try:
        out = subprocess.run(["free", "-g"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "?"
    for line in out.splitlines():
        if line.startswith("Mem:"):
            return " ".join(line.split()[1:])
    return "?"


def _mem_total_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "?"


def plugin_location(env: dict[str, str]) -> str:
    code = "import pytest_cursus, os; print(os.path.dirname(pytest_cursus.__file__))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


def _measured_tree(env: dict[str, str], dirty: str) -> str:
    location = Path(plugin_location(env))
    if location == REPO_ROOT / "src" / "pytest_cursus":
        return " (measured as is; src/ has uncommitted changes)" if dirty.strip() else " (measured as is, clean)"
    stamp = location.parent.parent / "COMMIT"
    if stamp.is_file():
        return f"; measured pytest_cursus is a copy of commit {stamp.read_text().strip()}"
    return "; measured pytest_cursus is another copy (see the pytest-cursus row)"


def machine_report(env: dict[str, str]) -> str:
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip() or str(os.cpu_count())
    dirty = _git("status", "--porcelain", "--", "src")
    facts = [
        ("date", _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("CPU", _cpu_model()),
        ("nproc", nproc),
        ("memory (MemTotal)", _mem_total_gib()),
        ("`free -g` (Mem: total used free shared buff/cache available)", _free_g()),
        (
            "load average at start (1/5/15 min)",
            " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        ),
        ("Python", platform.python_version()),
        ("pytest", _version("pytest")),
        ("pytest-xdist", _version("pytest-xdist")),
        ("pytest-cursus", f"{_version('pytest-cursus')} from {plugin_location(env)}"),
        (
            "bytecode (.pyc) caching",
            "off (PYTHONDONTWRITEBYTECODE=1)"
            if env.get("PYTHONDONTWRITEBYTECODE")
            else f"on, PYTHONPYCACHEPREFIX={env.get('PYTHONPYCACHEPREFIX', '(default)')}",
        ),
        (
            "git HEAD of this checkout",
            _git("rev-parse", "--short", "HEAD") + _measured_tree(env, dirty),
        ),
    ]
    return md_table(["", ""], facts)


# The CPU work of a step: a pure-Python loop (no sleep, no I/O), the same code in every script.
BURN_SOURCE = '''
def burn(iterations):
    """Pure-Python CPU work: about BURN_SECONDS of one core on the machine that was calibrated."""
    x = 0
    for i in range(iterations):
        x = (x * 31 + i) % 1000003
    return x
'''


def calibrate_burn(seconds: float) -> int:
    """Iterations of ``burn`` that take ``seconds`` of one core here.

    Measured in CPU time (``time.process_time``, best of 5 samples of ~0.1 s), not wall time:
    on a shared machine a wall-clock sample also counts the time the process waited for a core,
    which would make every step shorter than intended.
    """
    namespace: dict[str, object] = {}
    exec(BURN_SOURCE, namespace)  # noqa: S102 - our own constant source
    burn = namespace["burn"]
    sample = 1_000_000
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        burn(sample)  # type: ignore[operator]
        best = min(best, time.process_time() - start)
    return int(sample * seconds / best)


def profile_pytest(args: Sequence[str], cwd: Path, env: dict[str, str], out: Path, top: int = 25) -> str:
    """cProfile one pytest process (not its step children); Markdown tables of the top
    ``top`` functions by cumulative time inside pytest_cursus, and of the whole process."""
    import io
    import pstats

    subprocess.run(
        [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(out),
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            *args,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    stats = pstats.Stats(str(out), stream=io.StringIO())
    total = max(value[3] for value in stats.stats.values())  # type: ignore[attr-defined]
    entries = []
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        entries.append((cumtime, tottime, ncalls, filename, line, name))
    entries.sort(reverse=True)

    def where(filename: str, line: int, name: str) -> str:
        short = filename
        for marker in ("site-packages/", "/src/", "lib/python3"):
            if marker in filename:
                short = filename.split(marker, 1)[1]
                break
        return f"`{short}:{line}({name})`"

    ours = [e for e in entries if "pytest_cursus" in e[3]][:top]
    rows = [
        [where(f, lineno, n), c, f"{t:.3f}", f"{cum:.3f}", f"{100 * cum / total:.0f}%"]
        for cum, t, c, f, lineno, n in ours
    ]
    text = (
        f"Whole process under cProfile: {total:.2f} s.\n\nTop {top} functions in pytest_cursus by cumulative time:\n\n"
    )
    text += md_table(["function", "calls", "own s", "cumulative s", "of total"], rows)
    theirs = [e for e in entries if e[5] not in ("<module>",) and "{built-in method builtins.exec}" not in e[5]][
        : top + 15
    ]
    rows = [
        [where(f, lineno, n), c, f"{t:.3f}", f"{cum:.3f}", f"{100 * cum / total:.0f}%"]
        for cum, t, c, f, lineno, n in theirs
    ]
    text += f"\n\nTop {top + 15} functions of the whole process by cumulative time:\n\n"
    text += md_table(["function", "calls", "own s", "cumulative s", "of total"], rows)
    by_own = sorted(entries, key=lambda e: e[1], reverse=True)[:15]
    rows = [[where(f, lineno, n), c, f"{t:.3f}", f"{cum:.3f}"] for cum, t, c, f, lineno, n in by_own]
    text += "\n\nTop 15 functions by own time:\n\n" + md_table(["function", "calls", "own s", "cumulative s"], rows)
    return text
