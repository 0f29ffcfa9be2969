"""Step cache: how much of a 6-step chain is saved when only the leaf changed.

    python benchmarks/bench_cache.py            # 5 repetitions
    python benchmarks/bench_cache.py --quick    # 2 repetitions

Builds a throw-away project: six steps in a chain (extract -> clean -> enrich -> aggregate ->
score -> publish), each a script whose ``main`` reads the upstream CSV, burns about 1 s of one
core in a pure-Python loop (real CPU work, no sleep; iterations calibrated on this machine at
start) and writes a 200-row CSV. Each repetition runs, back to back:

    cold        pytest --cursus-scenarios scenarios -k "publish and not compat" --cache-clear
    warm        the leaf's script gets a new comment (its cache key changes), then the same
                command without --cache-clear: the 5 upstream steps come from the cache, the
                leaf runs
    fully warm  the same command again, nothing changed: all 6 steps come from the cache
    floor       the same command with --collect-only: pytest start-up, plugin imports and
                collection, no step and no cache access; the least any run can cost

Target (issue): warm <= 0.25 x cold, with the ratio taken within each repetition.
Every run also gets ``-v -rP --basetemp <project>/.basetemp`` (to check from the output which
steps came from the cache, and to keep workspaces inside the throw-away project). One untimed
warm-up run comes first (fills the .pyc cache). ``--profile`` adds a cProfile of one warm run
of the pytest process (the leaf's own child process is not in it).
"""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BURN_SOURCE,
    calibrate_burn,
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
    run_pytest,
    verdict,
    wait_until_idle,
)

STEPS = ["extract", "clean", "enrich", "aggregate", "score", "publish"]
LEAF = STEPS[-1]
STEP_SECONDS = 1.0
TARGET = 0.25
SELECT = f"{LEAF} and not compat"

SCRIPT = '''"""Benchmark step {name}: read the upstream CSV, burn CPU, write a small CSV."""
import csv
import glob
import os
{burn}
ITERATIONS = {iterations}  # about {seconds} s of one core


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    source = input_paths["data"]
    if os.path.isfile(source):
        files = [source]
    else:
        files = sorted(glob.glob(os.path.join(source, "**", "*.csv"), recursive=True))
    upstream_rows = 0
    for path in files:
        with open(path, newline="") as handle:
            upstream_rows += sum(1 for _ in csv.DictReader(handle))
    checksum = burn(ITERATIONS)
    out = output_paths["table"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "table.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "value", "step", "upstream_rows", "checksum"])
        for i in range(200):
            writer.writerow([i, (i * 7919) % 1000 / 10, "{name}", upstream_rows, checksum])
    return {{"upstream_rows": upstream_rows}}
'''

CONTRACT = """name: Bench{title}
entry_point: {name}.py
inputs:
  data: {{path: /opt/ml/processing/input/data, required: true}}
outputs:
  table: {{path: /opt/ml/processing/output/table}}
job_arguments:
  - {{flag: --job_type, source: job_type}}
env_vars:
  optional: {{LOG_LEVEL: INFO}}
"""


def build_project(root: Path, iterations: int) -> None:
    (root / "contracts").mkdir()
    (root / "scripts").mkdir()
    (root / "scenarios").mkdir()
    for name in STEPS:
        (root / "contracts" / f"{name}.contract.yaml").write_text(CONTRACT.format(name=name, title=name.title()))
        script = SCRIPT.format(name=name, burn=BURN_SOURCE, iterations=iterations, seconds=STEP_SECONDS)
        (root / "scripts" / f"{name}.py").write_text(script)
    lines = [
        "scenario: chain",
        "contracts: [../contracts]",
        "scripts: [../scripts]",
        "defaults: {timeout: 300}",
        "data:",
        '  seed_table: {text: "id,value\\n1,0.5\\n2,1.5\\n3,2.5\\n", filename: seed.csv}',
        "steps:",
    ]
    upstream = "seed_table"
    for name in STEPS:
        lines += [
            f"  {name}:",
            f"    contract: Bench{name.title()}",
            "    job_args: {job_type: training}",
            f"    inputs: {{data: {upstream}}}",
            "    expect: {table: {files: [table.csv], min_rows: 200}}",
        ]
        upstream = f"{name}.table"
    (root / "scenarios" / "chain.yaml").write_text("\n".join(lines) + "\n")


def setup_outcomes(output: str) -> tuple[int, int, str]:
    """(upstream steps from cache, upstream steps run, leaf status) as reported by pytest."""
    match = re.search(r"upstream steps produced as setup of this item: (.*)", output)
    listed = match.group(1) if match else ""
    cached = listed.count("(cached)")
    ran = listed.count("(passed)")
    leaf = re.search(rf"chain\.yaml::{LEAF} (PASSED|CACHED|FAILED|ERROR)", output)
    return cached, ran, leaf.group(1) if leaf else "?"


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        default_repeat=5,
        quick_repeat=2,
        extra=[
            (
                ("--profile",),
                {
                    "action": "store_true",
                    "help": "also cProfile one warm run and print the hotspots",
                },
            )
        ],
    )
    env = child_env(args.plugin_src, pyc=not args.no_pyc)
    progress("calibrating the CPU loop ...")
    iterations = calibrate_burn(STEP_SECONDS)
    header = machine_report(env)
    runs: dict[str, list[float]] = {
        "cold": [],
        "warm": [],
        "fully warm": [],
        "floor (--collect-only)": [],
    }
    ratios: list[float] = []
    checks: dict[str, set[str]] = {name: set() for name in runs}
    noise: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    cpu_ratios: list[float] = []
    with project_dir("cursus-bench-cache-", args.keep) as root:
        build_project(root, iterations)
        leaf_script = root / "scripts" / f"{LEAF}.py"
        command = [
            "--cursus-scenarios",
            "scenarios",
            "-k",
            SELECT,
            "-v",
            "-rP",
            "--basetemp",
            str(root / ".basetemp"),
        ]
        progress("warm-up run (not timed) ...")
        check_ok(run_pytest("warm-up", [*command, "--cache-clear"], root, env))
        for rep in range(1, args.repeat + 1):
            wait_until_idle(args.wait_idle, args.max_wait)
            cold = run_pytest("cold", [*command, "--cache-clear"], root, env)
            check_ok(cold)
            with leaf_script.open("a") as handle:
                handle.write(f"# edited for warm run {rep} ({uuid.uuid4().hex[:8]})\n")
            warm = run_pytest("warm", command, root, env)
            check_ok(warm)
            full = run_pytest("fully warm", command, root, env)
            check_ok(full)
            floor = run_pytest("floor (--collect-only)", [*command, "--collect-only", "-q"], root, env)
            check_ok(floor)
            for run in (cold, warm, full, floor):
                runs[run.label].append(run.seconds)
                noise[run.label].append(run.foreign_share)
                cpu[run.label].append(run.own_cpu)
                if run is floor:
                    checks[run.label].add(
                        re.findall(
                            r"\d+/\d+ tests? collected[^\n]*?(?= in )|\d+ tests? collected",
                            run.output,
                        )[-1]
                        if "collected" in run.output
                        else "?"
                    )
                    continue
                cached, ran, leaf = setup_outcomes(run.output)
                checks[run.label].add(f"upstream {cached} cached / {ran} run; leaf {leaf}")
            ratios.append(warm.seconds / cold.seconds)
            cpu_ratios.append(warm.own_cpu / cold.own_cpu)
            progress(
                f"rep {rep}/{args.repeat}: cold {cold.seconds:.2f}s  warm {warm.seconds:.2f}s  "
                f"fully warm {full.seconds:.2f}s  floor {floor.seconds:.2f}s  warm/cold {ratios[-1]:.3f}  (others' CPU "
                f"use {cold.foreign_share:.0%} / {warm.foreign_share:.0%})"
            )

        profile = None
        if args.profile:
            progress("profiling one warm run ...")
            with leaf_script.open("a") as handle:
                handle.write(f"# edited for the profiled run ({uuid.uuid4().hex[:8]})\n")
            profile = profile_pytest(command, root, env, root / "warm.prof")

    cold_median = median(runs["cold"])
    rows = []
    for label, times in runs.items():
        ratio = median(times) / cold_median
        rows.append(
            [
                label,
                fmt_s(median(times)),
                fmt_s(min(times)),
                f"{ratio:.3f}",
                fmt_s(median(cpu[label])),
                f"{median(noise[label]):.0%}",
                "; ".join(sorted(checks[label])),
            ]
        )
    warm_ratio = median(ratios)
    print(f"### Step cache (bench_cache.py, {args.repeat} repetitions)\n")
    print(header + "\n")
    print(
        f"Each step: {iterations:,} iterations of a pure-Python loop (~{STEP_SECONDS:g} s of one core, calibrated at "
        "start), then a 200-row CSV.\n"
    )
    print("Command (in the generated project):")
    print(
        f'`python -m pytest -p no:randomly --cursus-scenarios scenarios -k "{SELECT}" -v -rP --basetemp .basetemp '
        "[--cache-clear]`\n"
    )
    print(
        md_table(
            [
                "run",
                "median s",
                "min s",
                "median / cold median",
                "CPU s of the pytest process tree (median)",
                "others' CPU use during the run (median)",
                "what pytest reported (all repetitions)",
            ],
            rows,
        )
    )
    print()
    print(
        md_table(
            [
                "target",
                "measured (median of per-repetition ratios)",
                "per repetition",
                "result",
            ],
            [
                [
                    f"warm <= {TARGET} x cold",
                    f"{warm_ratio:.3f} x cold",
                    ", ".join(f"{r:.3f}" for r in ratios),
                    verdict(warm_ratio <= TARGET),
                ]
            ],
        )
    )
    floor_ratios = [f / c for f, c in zip(runs["floor (--collect-only)"], runs["cold"], strict=True)]
    print(
        f"\nFloor / cold (median of per-repetition ratios): {median(floor_ratios):.3f}: no warm run can be cheaper "
        "than that."
    )
    print(
        f"Warm / cold in CPU-seconds of the pytest process tree (less sensitive to other load on the machine): "
        f"{median(cpu_ratios):.3f} (" + ", ".join(f"{r:.3f}" for r in cpu_ratios) + ")."
    )
    if profile:
        print("\n#### cProfile of one warm run (pytest process only)\n")
        print(profile)


if __name__ == "__main__":
    main()
