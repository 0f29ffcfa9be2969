"""xdist: 8 independent CPU-bound scenarios, serial vs ``-n 2``.

    python benchmarks/bench_parallel.py            # 5 repetitions
    python benchmarks/bench_parallel.py --quick    # 2 repetitions
    python benchmarks/bench_parallel.py --workers 4

Builds a throw-away project: 8 scenario files, each with one step whose script burns about
1.5 s of one core in a pure-Python loop (no sleep, no I/O; iterations calibrated on this machine
at start). The 8 steps share a contract and a script but differ by an env value, so their cache
keys differ and none can stand in for another. Every run passes ``--cursus-no-cache`` and
``--cache-clear``, so all 8 steps really run each time. Configurations, run one after the other
within each repetition (interleaved, so a busy moment of the shared machine hits them alike):

    serial                 pytest --cursus-scenarios scenarios --cursus-no-cache --cache-clear
    -n 2                   ... -n 2              (xdist's default distribution)
    -n 2 --dist load       ... -n 2 --dist load
    -n 2 --dist loadfile   ... -n 2 --dist loadfile

Target (issue): speedup (serial / parallel wall time) >= 1.7 on 2 cores, taken within each
repetition.

The machine's own ceiling, measured at the start of each repetition without pytest: the step's
loop run alone, then ``--workers`` copies of it at once (each a new ``python -c`` process timing
its own loop); ceiling = workers x (time alone) / (longest time at once). On an idle machine
with as many free cores as workers it is the worker count; a virtual machine whose cores share
a physical core, or whose host is busy, gives less, and no pytest run can beat it. One untimed
warm-up run of each configuration comes first (fills the .pyc cache).
Every run also gets ``-q --basetemp <project>/.basetemp``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
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
    progress,
    project_dir,
    run_pytest,
    verdict,
    wait_until_idle,
)

SCENARIOS = 8
STEP_SECONDS = 1.5
TARGET = 1.7

SCRIPT = '''"""Benchmark step: pure-Python CPU work, then a one-line result file."""
import os
{burn}
ITERATIONS = {iterations}  # about {seconds} s of one core


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    checksum = burn(ITERATIONS + int(environ_vars["BENCH_INDEX"]))
    out = output_paths["result"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "result.csv"), "w") as handle:
        handle.write("index,checksum\\n{{}},{{}}\\n".format(environ_vars["BENCH_INDEX"], checksum))
'''

CONTRACT = """name: BenchBurn
entry_point: burn.py
inputs: {}
outputs:
  result: {path: /opt/ml/processing/output/result}
env_vars:
  required: [BENCH_INDEX]
"""


def build_project(root: Path, iterations: int) -> None:
    for directory in ("contracts", "scripts", "scenarios"):
        (root / directory).mkdir()
    (root / "contracts" / "burn.contract.yaml").write_text(CONTRACT)
    (root / "scripts" / "burn.py").write_text(
        SCRIPT.format(burn=BURN_SOURCE, iterations=iterations, seconds=STEP_SECONDS)
    )
    for index in range(SCENARIOS):
        (root / "scenarios" / f"cpu_{index}.yaml").write_text(
            f"scenario: cpu_{index}\n"
            "contracts: [../contracts]\n"
            "scripts: [../scripts]\n"
            "defaults: {timeout: 300}\n"
            "steps:\n"
            "  burn:\n"
            "    contract: BenchBurn\n"
            f"    env: {{BENCH_INDEX: '{index}'}}\n"
            "    expect: {result: {files: [result.csv]}}\n"
        )


def summary(output: str) -> str:
    found = re.findall(r"^=*\s*(\d+ (?:passed|failed|error).*?) in [\d.]+s", output, re.MULTILINE)
    return found[-1] if found else "?"


def hardware_ceiling(iterations: int, workers: int) -> float:
    """workers x (the loop's time alone) / (its longest time with ``workers`` copies at once)."""
    code = (
        BURN_SOURCE
        + f"import time\nstart = time.perf_counter()\nburn({iterations})\nprint(time.perf_counter() - start)\n"
    )

    def at_once(copies: int) -> float:
        children = [
            subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(copies)
        ]
        return max(float(child.communicate()[0]) for child in children)

    return workers * at_once(1) / at_once(workers)


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        default_repeat=5,
        quick_repeat=2,
        extra=[
            (
                ("--workers",),
                {
                    "type": int,
                    "default": 2,
                    "help": "xdist workers of the parallel runs (default 2)",
                },
            )
        ],
    )
    env = child_env(args.plugin_src, pyc=not args.no_pyc)
    n = str(args.workers)
    progress("calibrating the CPU loop ...")
    iterations = calibrate_burn(STEP_SECONDS)
    header = machine_report(env)
    configs = {
        "serial": [],
        f"-n {n}": ["-n", n],
        f"-n {n} --dist load": ["-n", n, "--dist", "load"],
        f"-n {n} --dist loadfile": ["-n", n, "--dist", "loadfile"],
    }
    times: dict[str, list[float]] = {label: [] for label in configs}
    noise: dict[str, list[float]] = {label: [] for label in configs}
    cpu: dict[str, list[float]] = {label: [] for label in configs}
    outcomes: dict[str, set[str]] = {label: set() for label in configs}
    speedups: dict[str, list[float]] = {label: [] for label in configs if label != "serial"}
    ceilings: list[float] = []
    with project_dir("cursus-bench-parallel-", args.keep) as root:
        build_project(root, iterations)
        common = [
            "--cursus-scenarios",
            "scenarios",
            "--cursus-no-cache",
            "--cache-clear",
            "-q",
            "--basetemp",
            str(root / ".basetemp"),
        ]
        progress("warm-up runs (not timed) ...")
        for label, extra in configs.items():
            check_ok(run_pytest(label, [*common, *extra], root, env))
        for rep in range(1, args.repeat + 1):
            wait_until_idle(args.wait_idle, args.max_wait)
            ceilings.append(hardware_ceiling(iterations, args.workers))
            this_rep = {}
            for label, extra in configs.items():
                run = run_pytest(label, [*common, *extra], root, env)
                check_ok(run)
                this_rep[label] = run.seconds
                times[label].append(run.seconds)
                noise[label].append(run.foreign_share)
                cpu[label].append(run.own_cpu)
                outcomes[label].add(summary(run.output))
            for label, values in speedups.items():
                values.append(this_rep["serial"] / this_rep[label])
            progress(
                f"rep {rep}/{args.repeat}: "
                + "  ".join(f"{label} {seconds:.2f}s" for label, seconds in this_rep.items())
                + f"  (others' CPU use {median([noise[label][-1] for label in configs]):.0%};"
                + f" machine ceiling {ceilings[-1]:.2f})"
            )

    rows = []
    for label in configs:
        speed = (
            "1 (reference)"
            if label == "serial"
            else f"{median(speedups[label]):.2f} (" + ", ".join(f"{s:.2f}" for s in speedups[label]) + ")"
        )
        result = "" if label == "serial" else verdict(median(speedups[label]) >= TARGET)
        of_ceiling = (
            ""
            if label == "serial"
            else f"{median([s / c for s, c in zip(speedups[label], ceilings, strict=True)]):.2f}"
        )
        busy = median([c / t for c, t in zip(cpu[label], times[label], strict=True)])
        workers = 1 if label == "serial" else args.workers
        bound = median(cpu["serial"]) / max(median(cpu[label]) / workers, median(cpu["serial"]) / SCENARIOS)
        rows.append(
            [
                label,
                fmt_s(median(times[label])),
                fmt_s(min(times[label])),
                speed,
                result,
                of_ceiling,
                fmt_s(median(cpu[label])),
                f"{busy:.2f}",
                f"{bound:.2f}",
                f"{median(noise[label]):.0%}",
                "; ".join(sorted(outcomes[label])),
            ]
        )
    print(f"### Parallel steps with pytest-xdist (bench_parallel.py, {args.repeat} repetitions)\n")
    print(header + "\n")
    print(
        f"{SCENARIOS} scenarios x 1 step; each step {iterations:,} iterations of a pure-Python loop "
        f"(~{STEP_SECONDS:g} s of one core, calibrated at start): {SCENARIOS * STEP_SECONDS:g} s of CPU work per run. "
        f"os.cpu_count() = {os.cpu_count()}.\n"
    )
    print("Command (in the generated project):")
    print(
        "`python -m pytest -p no:randomly --cursus-scenarios scenarios --cursus-no-cache --cache-clear -q --basetemp "
        ".basetemp [-n 2 [--dist load|loadfile]]`\n"
    )
    print(
        "CPU-cost bound = serial CPU s / (this configuration's CPU s / workers): the speedup this configuration would "
        "reach with its workers perfectly balanced on otherwise idle cores; it shows what xdist's extra processes "
        "cost, "
        "independently of the other load on the machine.\n"
    )
    print(
        f"Machine ceiling ({args.workers} copies of the step's loop at once, no pytest; see the module docstring), "
        f"per repetition: {', '.join(f'{c:.2f}' for c in ceilings)}; median {median(ceilings):.2f}.\n"
    )
    print(
        md_table(
            [
                "configuration",
                "median s",
                "min s",
                f"speedup: median of per-repetition serial/parallel (each); target >= {TARGET}",
                "result",
                "speedup / machine ceiling (median of per-repetition ratios)",
                "CPU s of the pytest process tree (median)",
                "cores kept busy (CPU s / wall s)",
                "CPU-cost bound on the speedup",
                "others' CPU use during the run (median)",
                "pytest summary",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
