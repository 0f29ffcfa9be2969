"""Fuzzing cost: N=50 examples of a small step, examples per second and where the time goes.

    python benchmarks/bench_fuzz.py            # 3 repetitions of each script
    python benchmarks/bench_fuzz.py --quick    # 1 repetition

Two small scripts that pass on every example (so no shrinking: the cost of N examples alone):
``stdlib`` reads the CSV with the ``csv`` module, ``pandas`` reads it with ``pandas.read_csv``
(most real steps import pandas). Each example is a real child process started by the plugin's
``StepRunner``, once with a fresh interpreter per example (``FreshInterpreterLauncher``, as
``--cursus-no-preload``) and once forked from the warm parent (``WarmForkLauncher``, the
default: docs/execution.md, "The warm executor"). Per example the time is split into:

* process start: interpreter start-up, the runner's own imports, writing the report, reaping
  (the child's wall time less the script's import and main) - what a warm fork-server saves;
* script imports: importing the script (pandas for the second script);
* main: the script's work;
* parent: writing the example's files, staging them read-only, fingerprints, judging.

The end-to-end row times ``pytest -k fuzz --cursus-fuzz 50`` as a subprocess (collection,
hypothesis and all).
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import time
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
    progress,
    run_pytest,
)

EXAMPLES = 50
SCRIPTS = {
    "stdlib": """
        import csv, glob, os

        def main(input_paths, output_paths, environ_vars, job_args):
            rows = []
            for path in glob.glob(os.path.join(input_paths["DATA"], "*.csv")):
                with open(path, newline="", encoding="utf-8") as handle:
                    rows += list(csv.DictReader(handle))
            with open(os.path.join(output_paths["out"], "n.txt"), "w") as handle:
                handle.write(str(len(rows)))
        """,
    "pandas": """
        import glob, os
        import pandas as pd

        def main(input_paths, output_paths, environ_vars, job_args):
            frames = [pd.read_csv(path) for path in glob.glob(os.path.join(input_paths["DATA"], "*.csv"))]
            frame = pd.concat(frames) if frames else pd.DataFrame()
            frame.describe(include="all").to_csv(os.path.join(output_paths["out"], "describe.csv"))
        """,
}
CONTRACT = """
step_type: Summary
contract:
  entry_point: summary.py
  inputs:
    DATA:
      path: /opt/ml/processing/input/data
      data:
        columns:
          id: {type: int, unique: true}
          amount: {type: float, nulls: 0.1}
          label: {type: category, values: [a, b]}
          note: {type: string, min_length: 0, max_length: 10}
  outputs:
    out: {path: /opt/ml/processing/output}
"""
SCENARIO = """
contracts: [../contracts]
scripts: [../scripts]
data:
  rows: {synthetic: {rows: 10, columns: {id: {type: int}}}}
steps:
  summary:
    contract: Summary
    inputs: {DATA: rows}
    fuzz: {examples: 50, max_rows: 20}
"""


def write_project(root: Path, script: str) -> Path:
    for folder in ("contracts", "scripts", "scenarios"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "contracts/summary.step.yaml").write_text(CONTRACT)
    (root / "scripts/summary.py").write_text(textwrap.dedent(SCRIPTS[script]))
    (root / "scenarios/fuzz.yaml").write_text(SCENARIO)
    (root / "pytest.ini").write_text("[pytest]\n")
    return root / "scenarios/fuzz.yaml"


def measure_engine(script: str, executor: str) -> dict[str, float]:
    """One fuzz run of N examples through the plain API, in this process."""
    from pytest_cursus.execution.launcher import FreshInterpreterLauncher
    from pytest_cursus.execution.step_runner import StepRunner, child_environment
    from pytest_cursus.execution.warm_executor import WarmForkLauncher
    from pytest_cursus.plan.input_schemas import input_schema
    from pytest_cursus.plan.scenario_plan import load_scenario
    from pytest_cursus.run.fuzzing import StepFuzzer

    with tempfile.TemporaryDirectory(prefix="cursus-bench-fuzz-") as directory:
        root = Path(directory)
        plan = load_scenario(write_project(root, script))
        schema = input_schema(plan, "summary", "DATA")
        assert schema is not None
        launcher = (
            WarmForkLauncher(base_env=child_environment({}), workdir=root / "warm")
            if executor == "warm"
            else FreshInterpreterLauncher()
        )
        fuzzer = StepFuzzer(StepRunner(root / "workspace", launcher=launcher), database=None)
        started = time.perf_counter()  # the warm parent's start and imports included
        try:
            report = fuzzer.run(
                plan.steps["summary"], {"DATA": schema}, {}, examples=EXAMPLES, max_rows=20, key=f"bench-{script}"
            )
        finally:
            if isinstance(launcher, WarmForkLauncher):
                launcher.close()
        seconds = time.perf_counter() - started
    if report.failure is not None:
        raise SystemExit(f"the {script} script failed on an example: {report.failure.result.failure}")
    total = sum(t.total for t in report.timings)
    return {
        "examples": report.examples,
        "runs": report.runs,
        "seconds": seconds,
        "per_run": total / report.runs,
        "process_start": sum(t.process_start for t in report.timings) / total,
        "script_import": sum(t.script_import for t in report.timings) / total,
        "main": sum(t.script_main for t in report.timings) / total,
        "parent": sum(t.total - t.child for t in report.timings) / total,
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_repeat=3, quick_repeat=1)
    env = child_env(args.plugin_src)
    rows = []
    for script, executor in [(script, executor) for script in SCRIPTS for executor in ("fresh", "warm")]:
        runs = []
        for round_ in range(args.repeat):
            progress(f"{script} ({executor}): round {round_ + 1}/{args.repeat}")
            runs.append(measure_engine(script, executor))
        pick = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]  # the median run, whole
        rows.append(
            [
                script,
                executor,
                int(pick["examples"]),
                int(pick["runs"]),
                fmt_s(pick["seconds"]),
                f"{pick['examples'] / pick['seconds']:.1f}",
                f"{pick['per_run'] * 1000:.0f}",
                f"{pick['process_start']:.0%}",
                f"{pick['script_import']:.0%}",
                f"{pick['main']:.0%}",
                f"{pick['parent']:.0%}",
            ]
        )
    end_to_end = []
    with tempfile.TemporaryDirectory(prefix="cursus-bench-fuzz-e2e-") as directory:
        root = Path(directory)
        write_project(root, "stdlib")
        for round_ in range(args.repeat):
            progress(f"end to end: round {round_ + 1}/{args.repeat}")
            run = run_pytest(
                "pytest",
                [
                    "-p",
                    "no:cacheprovider",
                    "--cursus-scenarios",
                    "scenarios",
                    "--cursus-fuzz",
                    str(EXAMPLES),
                    "-k",
                    "fuzz",
                    "-q",
                    "-n",
                    "0",
                ],
                root,
                env,
            )
            check_ok(run)
            end_to_end.append(run.seconds)
    print(machine_report(env))
    print()
    print(f"N={EXAMPLES} examples (max_rows 20, 4 columns), {args.repeat} repetition(s), median run:\n")
    print(
        md_table(
            [
                "script",
                "executor",
                "examples",
                "script runs",
                "seconds",
                "examples/s",
                "ms per run",
                "process start",
                "script imports",
                "main",
                "parent",
            ],
            rows,
        )
    )
    print()
    print(
        f"end to end, `pytest --cursus-fuzz {EXAMPLES} -k fuzz` on the stdlib script: {fmt_s(median(end_to_end))} s "
        "(median)"
    )


if __name__ == "__main__":
    main()
