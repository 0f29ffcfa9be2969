"""Four shards of forty scenarios: is the slowest shard within 1.3x of the mean shard?

Forty scenario files of 1 to 6 steps, each step sleeping a fixed, seeded time (0.05 to 0.8 s):
uneven on purpose. A full run writes the --cursus-json report whose durations balance the shards;
then the four shards run one after another (step cache off, so every shard really runs its steps),
once balanced by that report and once without it (every step counted the same), and each shard's
wall time is measured. Target: slowest shard <= 1.3 x the mean.

    python benchmarks/bench_sharding.py            # about 4 minutes on 2 cores
"""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

from _common import (
    check_ok,
    child_env,
    fmt_s,
    machine_report,
    md_table,
    parse_args,
    progress,
    project_dir,
    run_pytest,
    verdict,
)

SCENARIOS = 40
SHARDS = 4
TARGET = 1.3

SLEEPER = """
import os, time
def main(input_paths, output_paths, environ_vars, job_args):
    time.sleep(float(environ_vars["SECONDS"]))
    with open(os.path.join(output_paths["out"], "part.csv"), "w") as handle:
        handle.write("id\\n1\\n")
"""


def build(root: Path) -> float:
    """The project; returns the seconds all steps sleep in total."""
    for folder in ("contracts", "scripts", "scenarios"):
        (root / folder).mkdir()
    (root / "scripts" / "sleeper.py").write_text(SLEEPER)
    (root / "contracts" / "sleeper.step.yaml").write_text(
        "step_type: Sleeper\ncontract:\n  entry_point: sleeper.py\n"
        "  inputs: {up: {path: /opt/ml/processing/input/up, required: false}}\n"
        "  outputs: {out: {path: /opt/ml/processing/output}}\n"
        "  env_vars: {required: [SECONDS], optional: {}}\n"
    )
    rng = random.Random(40)
    total = 0.0
    for number in range(SCENARIOS):
        lines = ["contracts: [../contracts]", "scripts: [../scripts]", "steps:"]
        for index in range(rng.randint(1, 6)):
            seconds = round(rng.uniform(0.05, 0.8), 2)
            total += seconds
            upstream = f", inputs: {{up: s{index - 1}.out}}" if index else ""
            lines.append(f'  s{index}: {{contract: Sleeper, env: {{SECONDS: "{seconds}"}}{upstream}}}')
        (root / "scenarios" / f"pipeline_{number:02}.yaml").write_text("\n".join(lines) + "\n")
    return total


def shards(root: Path, env: dict[str, str], extra: list[str], label: str) -> list[float]:
    walls = []
    for index in range(SHARDS):
        run = run_pytest(
            f"{label} {index}/{SHARDS}",
            [
                "--cursus-scenarios",
                "scenarios",
                "-q",
                "--cursus-no-cache",
                "--cursus-shard",
                f"{index}/{SHARDS}",
                *extra,
            ],
            root,
            env,
        )
        check_ok(run)
        walls.append(run.seconds)
        progress(f"  {label} shard {index}/{SHARDS}: {run.seconds:.1f}s")
    return walls


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_repeat=1, quick_repeat=1)
    env = child_env(getattr(args, "plugin_src", None))
    with project_dir("cursus-bench-shards-", args.keep) as root:
        asleep = build(root)
        progress(f"{SCENARIOS} scenarios, {asleep:.1f}s of sleeping in all")
        full = run_pytest(
            "full run",
            ["--cursus-scenarios", "scenarios", "-q", "--cursus-no-cache", "--cursus-json", "full.json"],
            root,
            env,
        )
        check_ok(full)
        steps = len(json.loads((root / "full.json").read_text())["steps"])
        progress(f"  full run: {full.seconds:.1f}s, {steps} steps")
        balanced = shards(root, env, ["--cursus-shard-durations", "full.json"], "by durations")
        counted = shards(root, env, [], "by step count")
    rows = []
    for label, walls in (("balanced by --cursus-shard-durations", balanced), ("every step counted the same", counted)):
        mean = statistics.mean(walls)
        ratio = max(walls) / mean
        rows.append([label, " / ".join(fmt_s(w) for w in walls), fmt_s(mean), f"{ratio:.2f}", verdict(ratio <= TARGET)])
    print(machine_report(env))
    print(f"\n{SCENARIOS} scenarios, {steps} steps, {asleep:.1f}s of sleep; full run {full.seconds:.1f}s\n")
    print(md_table(["shards", "wall per shard (s)", "mean (s)", "slowest / mean", f"<= {TARGET}"], rows))


if __name__ == "__main__":
    main()
