"""Early cutoff: an upstream step edited without changing what it writes reruns alone.

    pip install -e '.[bench]'                    # the 7-step chain's libraries (as bench_warm.py)
    python benchmarks/bench_cutoff.py            # 3 repetitions on the 7-step chain
    python benchmarks/bench_cutoff.py --chain csv --quick   # bench_cache.py's 6-step CSV chain, no extras

The chain is built by ``bench_warm.py`` (``churn``: ingest -> clean -> {impute_scale, stats};
impute_scale -> train -> evaluate -> report, stats -> report) or ``bench_cache.py`` (``csv``:
extract -> clean -> ... -> publish, each step ~1 s of CPU). Each repetition runs, back to back:

    cold    pytest --cursus-scenarios scenarios -m cursus_step --cache-clear --cursus-json cold.json
    edited  a comment appended to scripts/clean.py (its key changes, its outputs do not), then the
            same command without --cache-clear, with --cursus-json edited.json

The steps that ran are counted from each JSON report (``cached`` false) with the reason it gives.
Target (issue 18): after the edit only ``clean`` runs; every step downstream of it is cached.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
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

EDITED = "clean"  # the second step of both chains: everything but the first step is downstream of it


def build(chain: str, root: Path) -> None:
    if chain == "churn":
        from bench_warm import build_chain_project

        build_chain_project(root)
    else:
        from bench_cache import STEP_SECONDS, build_project

        build_project(root, calibrate_burn(STEP_SECONDS))


def steps_run(report: Path) -> dict[str, str | None]:
    """Step -> why it ran, for each step the --cursus-json report says was not cached."""
    steps = json.loads(report.read_text(encoding="utf-8"))["steps"]
    return {step["step"]: step.get("run_reason") for step in steps if not step["cached"]}


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        default_repeat=3,
        quick_repeat=1,
        extra=[(("--chain",), {"choices": ["churn", "csv"], "default": "churn", "help": "which chain (see above)"})],
    )
    if args.chain == "churn":
        try:
            import matplotlib  # noqa: F401
            import sklearn  # noqa: F401
            import xgboost  # noqa: F401
        except ImportError as exc:
            raise SystemExit(
                f"the 7-step chain needs the bench extras ({exc.name} is missing): pip install -e '.[bench]', "
                "or run --chain csv"
            ) from None
    env = child_env(args.plugin_src, pyc=not args.no_pyc)
    header = machine_report(env)
    rows, all_ok = [], True
    with project_dir("cursus-bench-cutoff-", args.keep) as root:
        build(args.chain, root)
        script = root / "scripts" / f"{EDITED}.py"
        command = ["--cursus-scenarios", "scenarios", "-m", "cursus_step", "-q", "--basetemp", str(root / ".basetemp")]
        times: dict[str, list[float]] = {"cold": [], "edited": []}
        for rep in range(1, args.repeat + 1):
            wait_until_idle(args.wait_idle, args.max_wait)
            cold = run_pytest("cold", [*command, "--cache-clear", "--cursus-json", "cold.json"], root, env)
            check_ok(cold)
            with script.open("a", encoding="utf-8") as handle:
                handle.write(f"# edited for repetition {rep} ({uuid.uuid4().hex[:8]}): no change to what it writes\n")
            edited = run_pytest("edited", [*command, "--cursus-json", "edited.json"], root, env)
            check_ok(edited)
            cold_ran, edited_ran = steps_run(root / "cold.json"), steps_run(root / "edited.json")
            ok = list(edited_ran) == [EDITED]
            all_ok &= ok
            times["cold"].append(cold.seconds)
            times["edited"].append(edited.seconds)
            reasons = ", ".join(f"{step}: {reason}" for step, reason in edited_ran.items())
            rows.append([rep, len(cold_ran), fmt_s(cold.seconds), len(edited_ran), reasons, fmt_s(edited.seconds)])
            progress(f"rep {rep}/{args.repeat}: cold ran {len(cold_ran)}, after the edit ran {list(edited_ran)}")
    print(f"### Early cutoff (bench_cutoff.py --chain {args.chain}, {args.repeat} repetitions)\n")
    print(header + "\n")
    print(
        md_table(
            [
                "repetition",
                "cold: steps run",
                "cold s",
                "after the edit: steps run",
                "why each ran",
                "after the edit s",
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
                    f"a comment in scripts/{EDITED}.py reruns {EDITED} only",
                    f"median {fmt_s(median(times['edited']))} s after the edit, {fmt_s(median(times['cold']))} s cold",
                    verdict(all_ok),
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
