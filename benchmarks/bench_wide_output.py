"""A step with a 100,000-file output: a cold run, a fully cached run, and the floors they stand on.

    python benchmarks/bench_wide_output.py            # 3 repetitions
    python benchmarks/bench_wide_output.py --quick    # 1 repetition
    python benchmarks/bench_wide_output.py --files 10000 --profile

Builds a throw-away project with two steps: ``make`` writes ``--files`` small CSV files (two
columns, one row each, 100 files per sub-directory, as a sharded Spark or pandas job would) and
``use`` reads that output (it lists the files and sums their sizes, writing a one-line CSV).
``use``'s input declares a ``data:`` schema, so the edge item ``compat[make.out-use.DATA]``
checks the 100,000 files against it. Each repetition runs, back to back:

    cold     pytest --cursus-scenarios scenarios --cache-clear: both steps run, the edge is checked
    cached   the same command again, nothing changed: both steps CACHED, the edge remembered
    floor    the same command with --collect-only: start-up and collection, no step, no cache

and, outside pytest, what the same files cost with no plugin at all:

    cp -r    ``cp -r`` of the step's output tree (what any run must at least do once to stage it)
    stat     ``os.walk`` of the cached output and an ``lstat`` of every file, in one Python
             process (what checking that an entry was not edited needs at the least)

Target (issue 16): the cached run <= 5 s. ``--profile`` adds a cProfile of one cached and one
cold run of the pytest process (the steps' own processes are not in it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    check_ok,
    child_env,
    fmt_s,
    machine_report,
    md_table,
    median,
    parse_args,
    profile_pytest,
    progress,
    project_dir,
    run_command,
    run_pytest,
    verdict,
    wait_until_idle,
)

FILES = 100_000
WARM_UP_FILES = 100  # the untimed first run only fills the .pyc cache
PER_DIRECTORY = 100
TARGET_SECONDS = 5.0
EDGE = "compat[make.out-use.DATA]"

MAKE = '''"""Write {files} one-row CSV files, {per_directory} per sub-directory."""
import os


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    out = output_paths["out"]
    for i in range({files}):
        directory = os.path.join(out, f"shard-{{i // {per_directory}:05d}}")
        if i % {per_directory} == 0:
            os.makedirs(directory)
        with open(os.path.join(directory, f"part-{{i:06d}}.csv"), "w") as handle:
            handle.write(f"id,amount\\n{{i}},{{i * 0.5}}\\n")
'''

USE = '''"""List the upstream files and sum their sizes (reading every file is the script's business)."""
import os


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    files = size = 0
    for directory, _, names in os.walk(input_paths["DATA"]):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(directory, name))
    out = output_paths["summary"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "summary.csv"), "w") as handle:
        handle.write(f"files,bytes\\n{files},{size}\\n")
'''

CONTRACTS = {
    "maker": """name: Maker
entry_point: make.py
outputs:
  out: {path: /opt/ml/processing/output/out}
""",
    "user": """name: User
entry_point: use.py
inputs:
  DATA:
    path: /opt/ml/processing/input/data
    data:
      columns:
        id: {type: int}
        amount: {type: float}
outputs:
  summary: {path: /opt/ml/processing/output/summary}
""",
}

SCENARIO = """scenario: wide
contracts: [../contracts]
scripts: [../scripts]
defaults: {timeout: 3600}
steps:
  make: {contract: Maker}
  use: {contract: User, inputs: {DATA: make.out}, expect: {summary: {files: [summary.csv], min_rows: 1}}}
"""

STAT_FLOOR = """
import os, sys, time
start = time.perf_counter()
count = 0
for directory, _, names in os.walk(sys.argv[1]):
    for name in names:
        os.lstat(os.path.join(directory, name))
        count += 1
print(count, time.perf_counter() - start)
"""


def build_project(root: Path, files: int) -> None:
    for name in ("contracts", "scripts", "scenarios"):
        (root / name).mkdir(exist_ok=True)
    for name, text in CONTRACTS.items():
        (root / "contracts" / f"{name}.contract.yaml").write_text(text, encoding="utf-8")
    (root / "scripts" / "make.py").write_text(MAKE.format(files=files, per_directory=PER_DIRECTORY))
    (root / "scripts" / "use.py").write_text(USE)
    (root / "scenarios" / "wide.yaml").write_text(SCENARIO, encoding="utf-8")


def fresh_basetemp(root: Path) -> list[str]:
    """A new, empty --basetemp for the next run, the earlier ones removed first (untimed): pytest clears
    a reused --basetemp at start, and removing the 200,000 files of a cold run's workspaces is not
    the cost of the run that follows it."""
    for earlier in root.glob(".basetemp-*"):
        subprocess.run(["chmod", "-R", "u+w", str(earlier)], check=False)
        shutil.rmtree(earlier, ignore_errors=True)
    return ["--basetemp", str(root / f".basetemp-{uuid.uuid4().hex[:8]}")]


def outcomes(output: str) -> str:
    """What pytest said of each item, e.g. ``make CACHED, compat PASSED, use CACHED``."""
    said = []
    for item, word in (("make", "make"), ("compat", re.escape(EDGE)), ("use", "use")):
        match = re.search(rf"wide\.yaml::{word} (PASSED|CACHED|FAILED|ERROR)", output)
        said.append(f"{item} {match.group(1) if match else '?'}")
    return ", ".join(said)


def entry_outputs(root: Path) -> Path:
    """The cached output directory of ``make`` (the entry holding the most files)."""
    entries = root / ".pytest_cache" / "d" / "cursus-steps" / "entries"
    return max(entries.glob("*/outputs/out"), key=lambda path: sum(1 for _ in path.rglob("*")))


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        default_repeat=3,
        quick_repeat=1,
        extra=[
            (("--files",), {"type": int, "default": FILES, "help": f"files in the output (default {FILES:,})"}),
            (("--profile",), {"action": "store_true", "help": "also cProfile one cached and one cold run"}),
        ],
    )
    env = child_env(args.plugin_src, pyc=not args.no_pyc)
    header = machine_report(env)
    labels = ("cold", "cached", "floor (--collect-only)", "cp -r of the output", "walk + lstat of the output")
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in labels}
    said: dict[str, set[str]] = {label: set() for label in labels}
    with project_dir("cursus-bench-wide-", args.keep) as root:
        build_project(root, WARM_UP_FILES)
        command = ["--cursus-scenarios", "scenarios", "-v"]
        progress(f"warm-up run with {WARM_UP_FILES} files (not timed) ...")
        check_ok(run_pytest("warm-up", [*command, *fresh_basetemp(root), "--cache-clear"], root, env))
        build_project(root, args.files)
        for rep in range(1, args.repeat + 1):
            wait_until_idle(args.wait_idle, args.max_wait)
            cold = run_pytest("cold", [*command, *fresh_basetemp(root), "--cache-clear"], root, env, timeout=7200)
            check_ok(cold)
            cached = run_pytest("cached", [*command, *fresh_basetemp(root)], root, env)
            check_ok(cached)
            floor = run_pytest(
                "floor (--collect-only)", [*command, *fresh_basetemp(root), "--collect-only", "-q"], root, env
            )
            check_ok(floor)
            tree = entry_outputs(root)
            copy_target = root / "copied"
            shutil.rmtree(copy_target, ignore_errors=True)
            copied = run_command(
                "cp -r of the output",
                ["cp", "-r", "--no-preserve=mode", str(tree), str(copy_target)],
                root,
                env,
                check=True,
            )
            shutil.rmtree(copy_target, ignore_errors=True)
            walked = run_command(
                "walk + lstat of the output", [sys.executable, "-c", STAT_FLOOR, str(tree)], root, env, check=True
            )
            for run in (cold, cached, floor, copied, walked):
                seconds[run.label].append(run.seconds)
                cpu[run.label].append(run.own_cpu)
            said["cold"].add(outcomes(cold.output))
            said["cached"].add(outcomes(cached.output))
            said["walk + lstat of the output"].add(f"{walked.output.split()[0]} files")
            progress(
                f"rep {rep}/{args.repeat}: cold {cold.seconds:.2f}s  cached {cached.seconds:.2f}s  "
                f"floor {floor.seconds:.2f}s  cp -r {copied.seconds:.2f}s  walk+lstat {walked.seconds:.2f}s  "
                f"(others' CPU use {cold.foreign_share:.0%} / {cached.foreign_share:.0%})"
            )
        profiles = []
        if args.profile:
            progress("profiling one cached run ...")
            profiles.append(
                ("cached", profile_pytest([*command, *fresh_basetemp(root)], root, env, root / "cached.prof"))
            )
            progress("profiling one cold run ...")
            started = time.perf_counter()
            cold_command = [*command, *fresh_basetemp(root), "--cache-clear"]
            profiles.append(("cold", profile_pytest(cold_command, root, env, root / "cold.prof")))
            progress(f"  ({time.perf_counter() - started:.1f} s)")

    print(f"### A {args.files:,}-file output (bench_wide_output.py, {args.repeat} repetitions)\n")
    print(header + "\n")
    print(
        "Command (in the generated project): `python -m pytest -p no:randomly --cursus-scenarios scenarios -v "
        "--basetemp <a new directory> [--cache-clear | --collect-only -q]`\n"
    )
    rows = [
        [
            label,
            fmt_s(median(seconds[label])),
            fmt_s(min(seconds[label])),
            fmt_s(median(cpu[label])),
            "; ".join(sorted(said[label])),
        ]
        for label in labels
    ]
    print(md_table(["run", "median s", "min s", "CPU s (median)", "what it reported"], rows))
    cached_median = median(seconds["cached"])
    print()
    print(
        md_table(
            ["target", "measured", "per repetition", "result"],
            [
                [
                    f"cached run <= {TARGET_SECONDS:g} s",
                    f"{cached_median:.2f} s",
                    ", ".join(f"{value:.2f}" for value in seconds["cached"]),
                    verdict(cached_median <= TARGET_SECONDS),
                ]
            ],
        )
    )
    floor = median(seconds["floor (--collect-only)"])
    print(
        f"\nCached run above the floor: {cached_median - floor:.2f} s; cold run / cp -r of the output: "
        f"{median(seconds['cold']) / median(seconds['cp -r of the output']):.1f} x."
    )
    for label, text in profiles:
        print(f"\n#### cProfile of one {label} run (pytest process only)\n")
        print(text)


if __name__ == "__main__":
    main()
