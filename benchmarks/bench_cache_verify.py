"""Step cache: what checking a 1 GB, 1,000-file entry before serving it adds to a cached run.

    python benchmarks/bench_cache_verify.py            # 7 repetitions
    python benchmarks/bench_cache_verify.py --quick    # 3 repetitions

Builds a throw-away project with one step, ``big``, that writes 1,000 files of 1 MiB of random
bytes (``.bin``: no table, so nothing else reads them), and a step cache of its own
(``--cursus-cache-dir cache``). One cold run fills the cache (timed, once). Each repetition then
runs, in alternating order:

    verified      pytest --cursus-scenarios scenarios --cursus-cache-dir cache: ``big`` CACHED, its
                  entry checked against files.json first (a stat per file; cache/entry_files.py)
    unverified    the same with ``-p no_entry_check``, a module of the project that replaces that
                  check with one that finds nothing: the cached run without verification

and, once per repetition, in a fresh Python process, the check alone on the entry (``changed_files``)
with the files' times as stored. Then the worst case, once: the cache is copied (``cp -a``: contents and
mtimes kept, every ctime new, as a CI cache restored from an archive), and the copy is used twice:

    copied, 1st   every file's times moved: each is read and hashed again (1 GB of SHA-256)
    copied, 2nd   the first run recorded the new times: a stat per file again

Target (issue 16): verification adds <= 10 % to a cached run of that entry (median of the
per-repetition ratios verified / unverified - 1).
"""

from __future__ import annotations

import json
import subprocess
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
    progress,
    project_dir,
    run_pytest,
    verdict,
    wait_until_idle,
)

FILES = 1000
FILE_BYTES = 2**20
TARGET = 0.10

SCRIPT = '''"""Write {files} files of {size} random bytes."""
import os


def main(input_paths, output_paths, environ_vars, job_args, logger=None):
    out = output_paths["out"]
    for i in range({files}):
        with open(os.path.join(out, f"part-{{i:05d}}.bin"), "wb") as handle:
            handle.write(os.urandom({size}))
'''

CONTRACT = """name: Big
entry_point: big.py
outputs:
  out: {path: /opt/ml/processing/output/out}
"""

SCENARIO = """scenario: verify
contracts: [../contracts]
scripts: [../scripts]
defaults: {timeout: 3600}
steps:
  big: {contract: Big}
"""

# loaded with -p: the cached run without verification (benchmark only)
NO_ENTRY_CHECK = '''"""Serve step cache entries without checking their files (benchmark only)."""
import pytest_cursus.cache.store


def _nothing_changed(entry, outputs_dir):
    return None


pytest_cursus.cache.store.changed_files = _nothing_changed
'''

CHECK_ALONE = """
import json, sys, time
from pathlib import Path
from pytest_cursus.cache.entry_files import changed_files
entry = next(Path(sys.argv[1], "entries").iterdir())
start = time.perf_counter()
changed = changed_files(entry, entry / "outputs")
print(json.dumps({"seconds": time.perf_counter() - start, "changed": changed}))
"""


def build_project(root: Path) -> None:
    for name in ("contracts", "scripts", "scenarios"):
        (root / name).mkdir()
    (root / "contracts" / "big.contract.yaml").write_text(CONTRACT, encoding="utf-8")
    (root / "scripts" / "big.py").write_text(SCRIPT.format(files=FILES, size=FILE_BYTES), encoding="utf-8")
    (root / "scenarios" / "verify.yaml").write_text(SCENARIO, encoding="utf-8")
    (root / "no_entry_check.py").write_text(NO_ENTRY_CHECK, encoding="utf-8")


def status(output: str) -> str:
    return "big CACHED" if "verify.yaml::big CACHED" in output else "big NOT CACHED"


def check_alone(root: Path, cache: Path, env: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHECK_ALONE, str(cache)], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    measured = json.loads(done.stdout)
    if measured["changed"] is not None:
        raise SystemExit(f"the entry was changed: {measured['changed']}")
    return float(measured["seconds"])


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_repeat=7, quick_repeat=3)
    env = child_env(args.plugin_src, pyc=not args.no_pyc)
    header = machine_report(env)
    labels = ("verified", "unverified", "copied, 1st", "copied, 2nd")
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in labels}
    said: dict[str, set[str]] = {label: set() for label in labels}
    ratios: list[float] = []
    cpu_ratios: list[float] = []  # the same in CPU-seconds of the pytest process tree: less moved by others' load
    alone: list[float] = []
    with project_dir("cursus-bench-verify-", args.keep) as root:
        build_project(root)
        base = ["--cursus-scenarios", "scenarios", "-v", "--basetemp", str(root / ".basetemp")]
        progress("cold run: writes 1 GB and stores it in the cache ...")
        cold = run_pytest("cold", [*base, "--cursus-cache-dir", "cache"], root, env)
        check_ok(cold)
        progress(f"  {cold.seconds:.2f} s")
        for rep in range(1, args.repeat + 1):
            wait_until_idle(args.wait_idle, args.max_wait)
            order = ("verified", "unverified") if rep % 2 else ("unverified", "verified")
            runs = {}
            for label in order:
                extra = ["-p", "no_entry_check"] if label == "unverified" else []
                runs[label] = run_pytest(label, [*base, "--cursus-cache-dir", "cache", *extra], root, env)
                check_ok(runs[label])
            alone.append(check_alone(root, root / "cache", env))
            for label, run in runs.items():
                seconds[label].append(run.seconds)
                cpu[label].append(run.own_cpu)
                said[label].add(status(run.output))
            ratios.append(runs["verified"].seconds / runs["unverified"].seconds - 1)
            cpu_ratios.append(runs["verified"].own_cpu / runs["unverified"].own_cpu - 1)
            progress(
                f"rep {rep}/{args.repeat}: verified {runs['verified'].seconds:.2f}s  "
                f"unverified {runs['unverified'].seconds:.2f}s  (+{ratios[-1]:.1%})  "
                f"check alone {alone[-1] * 1000:.1f} ms  (others' CPU use {runs['verified'].foreign_share:.0%})"
            )
        progress("copying the cache (cp -a) and using the copy twice ...")
        subprocess.run(["cp", "-a", str(root / "cache"), str(root / "copy")], check=True)
        for label in ("copied, 1st", "copied, 2nd"):
            run = run_pytest(label, [*base, "--cursus-cache-dir", "copy"], root, env)
            check_ok(run)
            seconds[label].append(run.seconds)
            cpu[label].append(run.own_cpu)
            said[label].add(status(run.output))
            progress(f"  {label}: {run.seconds:.2f} s")

    print(f"### Verifying a 1 GB, 1,000-file entry (bench_cache_verify.py, {args.repeat} repetitions)\n")
    print(header + "\n")
    print(
        "Command (in the generated project): `python -m pytest -p no:randomly --cursus-scenarios scenarios -v "
        "--basetemp .basetemp --cursus-cache-dir cache [-p no_entry_check]`\n"
    )
    print(f"Cold run (writes and stores the entry, once): {fmt_s(cold.seconds)} s.\n")
    rows = [
        [
            label,
            len(seconds[label]),
            fmt_s(median(seconds[label])),
            fmt_s(min(seconds[label])),
            fmt_s(median(cpu[label])),
            "; ".join(sorted(said[label])),
        ]
        for label in labels
    ]
    print(md_table(["run", "runs", "median s", "min s", "CPU s (median)", "what pytest reported"], rows))
    added = median(ratios)
    print()
    print(
        md_table(
            ["target", "measured (median of per-repetition ratios)", "per repetition", "result"],
            [
                [
                    f"verification adds <= {TARGET:.0%}",
                    f"+{added:.1%}",
                    ", ".join(f"{ratio:+.1%}" for ratio in ratios),
                    verdict(added <= TARGET),
                ]
            ],
        )
    )
    print(
        f"\nIn CPU-seconds of the pytest process tree, verification adds {median(cpu_ratios):+.1%} "
        f"({', '.join(f'{ratio:+.1%}' for ratio in cpu_ratios)})."
    )
    print(
        f"\nThe check alone (`changed_files`, a fresh process, times as stored): median {median(alone) * 1000:.1f} ms "
        f"({', '.join(f'{value * 1000:.1f}' for value in alone)}), "
        f"{median(alone) / median(seconds['unverified']):.1%} of the unverified cached run."
    )


if __name__ == "__main__":
    main()
