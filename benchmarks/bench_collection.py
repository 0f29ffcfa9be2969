"""Collection: 500 scenario files x 10 steps vs 5,000 plain parametrized tests.

    python benchmarks/bench_collection.py            # 5 repetitions
    python benchmarks/bench_collection.py --quick    # 2 repetitions
    python benchmarks/bench_collection.py --profile  # also cProfile the scenario collection

Builds a throw-away project:

    contracts/   10 contracts (stage_0 .. stage_9, *.contract.yaml; stage_0's input has a
                 data: schema), shared by every scenario
    scripts/     10 entry-point scripts
    scenarios/   500 scenario files, each a chain of 10 steps s0 -> s1 -> ... -> s9 (one
                 contract each), a synthetic data source, defaults, env, job_args, and an
                 expect: on the leaf. Each file yields 10 step items + 9 edge items (compat[...]),
                 so the run collects 9,500 items
    tests/test_equivalent.py
                 the equivalent plain tests: 500 test functions (one per scenario) each
                 parametrized over the 10 step names = 5,000 items, one per step
    tests/test_items.py
                 (for reference) 500 functions x 19 parameters = 9,500 items, as many items as
                 the scenarios give

and times, interleaved within each repetition:

    scenarios      pytest --collect-only -q --cursus-scenarios scenarios
    equivalent     pytest --collect-only -q tests/test_equivalent.py
    same items     pytest --collect-only -q tests/test_items.py      (reference only)

Target (issue): scenarios <= 2 x equivalent, the ratio taken within each repetition. One
untimed warm-up run of each comes first (fills the .pyc cache; pytest's assertion rewriting of
the test files is cached there too). When the target is missed (or with --profile), the
scenario collection is run once more under cProfile and its hotspots are printed.
"""

from __future__ import annotations

import re
import sys
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
    run_pytest,
    verdict,
    wait_until_idle,
)

SCENARIOS = 500
STEPS = 10
TARGET = 2.0

CONTRACT = """name: Stage{k}
description: Stage {k} of the benchmark chain.
entry_point: stage_{k}.py
inputs:
  data:
    path: /opt/ml/processing/input/data
    required: true{schema}
outputs:
  table:
    path: /opt/ml/processing/output/table
job_arguments:
  - {{flag: --job_type, source: job_type, required: true}}
env_vars:
  required: [LABEL_FIELD]
  optional: {{LOG_LEVEL: INFO, ROWS: "200"}}
framework_requirements: {{pandas: ">=2.0"}}
"""

SCHEMA = """
    data:
      format: csv
      columns:
        id: {type: int, unique: true}
        amount: {type: float, min: 0, max: 100}
        label: {type: category, values: [0, 1]}"""

SCRIPT = '''"""Benchmark stage {k}: never run by this benchmark (collection only)."""
import os


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    os.makedirs(output_paths["table"], exist_ok=True)
    with open(os.path.join(output_paths["table"], "table.csv"), "w") as handle:
        handle.write("id,amount,label\\n1,2.5,0\\n")
'''


def scenario_text(index: int) -> str:
    lines = [
        f"scenario: sc_{index:03d}",
        f"description: Benchmark chain number {index}.",
        "contracts: [../contracts]",
        "scripts: [../scripts]",
        "defaults:",
        "  timeout: 120",
        "  env: {LOG_LEVEL: INFO}",
        "data:",
        "  raw:",
        "    synthetic:",
        "      rows: 1000",
        f"      seed: {index}",
        "      format: csv",
        "      columns:",
        "        id: {type: int, unique: true}",
        "        amount: {type: float, min: 0, max: 100}",
        "        label: {type: category, values: [0, 1]}",
        "steps:",
    ]
    upstream = "raw"
    for k in range(STEPS):
        lines += [
            f"  s{k}:",
            f"    contract: Stage{k}",
            "    job_args: {job_type: training}",
            "    env: {LABEL_FIELD: label}",
            f"    inputs: {{data: {upstream}}}",
        ]
        upstream = f"s{k}.table"
    lines.append("    expect: {table: {files: [table.csv], min_rows: 1, columns: [id, label]}}")
    return "\n".join(lines) + "\n"


def tests_text(params: int) -> str:
    names = ", ".join(repr(f"s{k}") for k in range(params))
    parts = ["import pytest\n", f"STEPS = [{names}]\n"]
    for index in range(SCENARIOS):
        parts.append(f'\n\n@pytest.mark.parametrize("step", STEPS)\ndef test_sc_{index:03d}(step):\n    assert step\n')
    return "".join(parts)


def build_project(root: Path) -> None:
    for directory in ("contracts", "scripts", "scenarios", "tests"):
        (root / directory).mkdir()
    for k in range(STEPS):
        (root / "contracts" / f"stage_{k}.contract.yaml").write_text(
            CONTRACT.format(k=k, schema=SCHEMA if k == 0 else "")
        )
        (root / "scripts" / f"stage_{k}.py").write_text(SCRIPT.format(k=k))
    for index in range(SCENARIOS):
        (root / "scenarios" / f"sc_{index:03d}.yaml").write_text(scenario_text(index))
    (root / "tests" / "test_equivalent.py").write_text(tests_text(STEPS))
    (root / "tests" / "test_items.py").write_text(tests_text(2 * STEPS - 1))


def collected(output: str) -> str:
    found = re.findall(r"(\d+) tests? collected", output)
    return found[-1] if found else "?"


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
                    "help": "cProfile the scenario collection even if the target is met",
                },
            )
        ],
    )
    env = child_env(args.plugin_src, pyc=not args.no_pyc)
    header = machine_report(env)
    configs = {
        "scenarios": ["--collect-only", "-q", "--cursus-scenarios", "scenarios"],
        "equivalent": ["--collect-only", "-q", "tests/test_equivalent.py"],
        "same items (reference)": ["--collect-only", "-q", "tests/test_items.py"],
    }
    times: dict[str, list[float]] = {label: [] for label in configs}
    noise: dict[str, list[float]] = {label: [] for label in configs}
    cpu: dict[str, list[float]] = {label: [] for label in configs}
    cpu_ratios: list[float] = []
    counts: dict[str, set[str]] = {label: set() for label in configs}
    ratios: list[float] = []
    ratios_items: list[float] = []
    profile = None
    with project_dir("cursus-bench-collection-", args.keep) as root:
        build_project(root)
        progress("warm-up runs (not timed) ...")
        for label, command in configs.items():
            check_ok(run_pytest(label, command, root, env))
        for rep in range(1, args.repeat + 1):
            wait_until_idle(args.wait_idle, args.max_wait)
            this_rep = {}
            for label, command in configs.items():
                run = run_pytest(label, command, root, env)
                check_ok(run)
                this_rep[label] = run.seconds
                times[label].append(run.seconds)
                noise[label].append(run.foreign_share)
                cpu[label].append(run.own_cpu)
                counts[label].add(collected(run.output))
            ratios.append(this_rep["scenarios"] / this_rep["equivalent"])
            cpu_ratios.append(cpu["scenarios"][-1] / cpu["equivalent"][-1])
            ratios_items.append(this_rep["scenarios"] / this_rep["same items (reference)"])
            progress(
                f"rep {rep}/{args.repeat}: "
                + "  ".join(f"{label} {seconds:.2f}s" for label, seconds in this_rep.items())
                + f"  ratio {ratios[-1]:.2f}  (others' CPU use {noise['scenarios'][-1]:.0%})"
            )
        if args.profile or median(ratios) > TARGET:
            progress("profiling the scenario collection ...")
            profile = profile_pytest(configs["scenarios"], root, env, root / "collect.prof")

    rows = []
    for label, command in configs.items():
        if label == "scenarios":
            ratio = "—"
        elif label == "equivalent":
            ratio = f"{median(ratios):.2f} (" + ", ".join(f"{r:.2f}" for r in ratios) + ")"
        else:
            ratio = f"{median(ratios_items):.2f} (" + ", ".join(f"{r:.2f}" for r in ratios_items) + ")"
        rows.append(
            [
                label,
                " ".join(command),
                "/".join(sorted(counts[label])),
                fmt_s(median(times[label])),
                fmt_s(min(times[label])),
                ratio,
                fmt_s(median(cpu[label])),
                f"{median(noise[label]):.0%}",
            ]
        )
    print(f"### Collection (bench_collection.py, {args.repeat} repetitions)\n")
    print(header + "\n")
    print(f"{SCENARIOS} scenario files x {STEPS} chained steps, 10 shared contracts, 10 shared scripts.\n")
    print(
        md_table(
            [
                "run",
                "pytest arguments (after `python -m pytest -p no:randomly`)",
                "items",
                "median s",
                "min s",
                "scenarios / this (median of per-repetition ratios, each)",
                "CPU s (median)",
                "others' CPU use during the run (median)",
            ],
            rows,
        )
    )
    print()
    print(
        md_table(
            ["target", "measured", "result"],
            [
                [
                    f"scenarios <= {TARGET:g} x equivalent (5,000 parametrized tests)",
                    f"{median(ratios):.2f} x",
                    verdict(median(ratios) <= TARGET),
                ]
            ],
        )
    )
    print(
        "\nScenarios / equivalent in CPU-seconds (less sensitive to other load on the machine): "
        f"{median(cpu_ratios):.2f} (" + ", ".join(f"{r:.2f}" for r in cpu_ratios) + ")."
    )
    if profile:
        print("\n#### cProfile of `pytest --collect-only -q --cursus-scenarios scenarios`\n")
        print(profile)


if __name__ == "__main__":
    main()
