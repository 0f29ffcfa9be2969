"""Fixed cost of a pytest run with pytest-cursus: where the floor under every run goes.

    python benchmarks/bench_startup.py            # 7 repetitions
    python benchmarks/bench_startup.py --quick    # 3 repetitions

Not one of the issue's targets: it explains them. Every pytest process (the one of a serial run,
and the controller and every worker under xdist) pays a fixed start-up cost before any step
runs; a warm cache run (bench_cache.py) cannot be cheaper than it, and xdist pays it once more
per worker (bench_parallel.py). This script times the pieces, each in a fresh process, and
reports wall time and CPU time (user + system of the process tree; CPU time hardly depends on
other load on a shared machine, wall time does):

    python -c pass                               the interpreter
    python -c "import pandas"                    pandas alone
    python -c "import pytest_cursus.plugin.scenario_items"       what the plugin imports once a scenario is collected
    pytest --collect-only -q -p no:cursus -p no:xdist ...
                                                 pytest alone, the third-party plugins installed here disabled
    pytest --collect-only -q -p no:cursus ...    pytest and the other installed plugins, one trivial test
    pytest --collect-only -q ...                 the same with pytest-cursus loaded (no scenario)
    pytest --collect-only -q --cursus-scenarios  one scenario with one no-op step (collection floor)
    pytest --cursus-scenarios ... --cursus-no-cache
                                                 the same step run (child process, staging, checks)
"""

from __future__ import annotations

import sys
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
    project_dir,
    run_command,
)

SCRIPT = """def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    import os

    os.makedirs(output_paths["out"], exist_ok=True)
    with open(os.path.join(output_paths["out"], "done.csv"), "w") as handle:
        handle.write("a\\n1\\n")
"""

CONTRACT = """name: Noop
entry_point: noop.py
outputs:
  out: {path: /opt/ml/processing/output}
"""

SCENARIO = """scenario: noop
contracts: [../contracts]
scripts: [../scripts]
steps:
  only:
    contract: Noop
"""


# pytest alone: every third-party plugin installed here disabled (naming one that is not
# installed is harmless)
BARE = [
    "-p",
    "no:cursus",
    "-p",
    "no:xdist",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:html",
    "-p",
    "no:metadata",
    "-p",
    "no:benchmark",
]


def build_project(root: Path) -> None:
    for directory in ("contracts", "scripts", "scenarios", "tests"):
        (root / directory).mkdir()
    (root / "contracts" / "noop.contract.yaml").write_text(CONTRACT)
    (root / "scripts" / "noop.py").write_text(SCRIPT)
    (root / "scenarios" / "noop.yaml").write_text(SCENARIO)
    (root / "tests" / "test_one.py").write_text("def test_one():\n    assert True\n")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_repeat=7, quick_repeat=3)
    env = child_env(args.plugin_src, pyc=not args.no_pyc)
    header = machine_report(env)
    py = [sys.executable]
    pytest = [sys.executable, "-m", "pytest", "-p", "no:randomly"]
    configs: dict[str, list[str]] = {
        "python -c pass": [*py, "-c", "pass"],
        'python -c "import pandas"': [*py, "-c", "import pandas"],
        'python -c "import pytest_cursus.plugin.scenario_items"': [
            *py,
            "-c",
            "import pytest_cursus.plugin.scenario_items",
        ],
        "pytest --collect-only -q -p no:cursus -p no:xdist -p no:hypothesispytest -p no:html -p no:metadata "
        "-p no:benchmark tests": [
            *pytest,
            "--collect-only",
            "-q",
            *BARE,
            "tests",
        ],
        "pytest --collect-only -q -p no:cursus tests (1 test)": [
            *pytest,
            "--collect-only",
            "-q",
            "-p",
            "no:cursus",
            "tests",
        ],
        "pytest --collect-only -q tests (1 test)": [
            *pytest,
            "--collect-only",
            "-q",
            "tests",
        ],
        "pytest --collect-only -q --cursus-scenarios scenarios (1 no-op step)": [
            *pytest,
            "--collect-only",
            "-q",
            "--cursus-scenarios",
            "scenarios",
        ],
        "pytest -q --cursus-scenarios scenarios --cursus-no-cache (runs the no-op step)": [
            *pytest,
            "-q",
            "--cursus-scenarios",
            "scenarios",
            "--cursus-no-cache",
        ],
    }
    wall: dict[str, list[float]] = {label: [] for label in configs}
    cpu: dict[str, list[float]] = {label: [] for label in configs}
    with project_dir("cursus-bench-startup-", args.keep) as root:
        build_project(root)
        progress("warm-up runs (not timed) ...")
        for label, command in configs.items():
            run_command(label, command, root, env, check=True)
        for rep in range(1, args.repeat + 1):
            for label, command in configs.items():
                run = run_command(label, command, root, env, check=True)
                wall[label].append(run.seconds)
                cpu[label].append(run.own_cpu)
            progress(f"rep {rep}/{args.repeat} done")
    rows = [
        [
            f"`{label}`",
            fmt_s(median(wall[label])),
            fmt_s(min(wall[label])),
            fmt_s(median(cpu[label])),
            fmt_s(min(cpu[label])),
        ]
        for label in configs
    ]
    print(f"### Start-up floor (bench_startup.py, {args.repeat} repetitions)\n")
    print(header + "\n")
    print(
        md_table(
            ["process", "median wall s", "min wall s", "median CPU s", "min CPU s"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
