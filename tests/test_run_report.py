"""--cursus-json writes one versioned document; --cursus-baseline fails steps that regressed;
cursus-runtime compare / trend read the same files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.reporting.run_report import SCHEMA_VERSION, RunReport

SLEEPER = """
import os, time

def main(input_paths, output_paths, environ_vars, job_args):
    time.sleep(float(environ_vars["SLEEP"]))
    blob = bytearray(int(environ_vars["ALLOCATE_MB"]) * 2**20)
    for i in range(0, len(blob), 4096):
        blob[i] = 1
    time.sleep(0.2)
    with open(os.path.join(output_paths["out"], "rows.csv"), "w") as handle:
        handle.write("id\\n1\\n2\\n")
"""


@pytest.fixture
def sleeper(project: PipelineProject) -> PipelineProject:
    project.contract("Sleeper", entry_point="sleeper.py", required_env=["SLEEP", "ALLOCATE_MB"])
    project.script("sleeper.py", SLEEPER)
    _scenario(project, sleep=0.1, allocate=0)
    return project


def _scenario(project: PipelineProject, *, sleep: float, allocate: int) -> None:
    project.scenario(
        "timed",
        f"""
        steps:
          nap:
            contract: Sleeper
            env: {{SLEEP: "{sleep}", ALLOCATE_MB: "{allocate}"}}
        """,
    )


def test_json_report_holds_every_step_with_metrics_outcome_cache_status_and_versions(sleeper: PipelineProject) -> None:
    path = sleeper.root / "run.json"
    result = sleeper.run("--cursus-json", str(path))
    result.assert_outcomes(passed=1)
    document = json.loads(path.read_text())
    assert document["format"] == "pytest-cursus-run" and document["schema_version"] == SCHEMA_VERSION
    assert {"python", "pytest-cursus", "pandas", "pytest"} <= set(document["versions"])
    (step,) = document["steps"]
    assert (step["scenario"], step["step"], step["outcome"], step["cached"]) == ("timed", "nap", "passed", False)
    assert step["nodeid"] == "scenarios/timed.yaml::nap"
    assert step["metrics"]["wall_seconds"] >= 0.3 and step["metrics"]["peak_rss_bytes"] > 0
    assert step["outputs"]["out"]["rows"] == 2 and step["outputs"]["out"]["files"] == 1
    assert "stdout_excerpt" not in step, "log excerpts are for the HTML report, not the JSON"
    RunReport.model_validate(document)


def test_json_report_marks_a_step_taken_from_the_cache(sleeper: PipelineProject) -> None:
    sleeper.run()
    path = sleeper.root / "run.json"
    sleeper.run("--cursus-json", str(path))
    (step,) = json.loads(path.read_text())["steps"]
    assert step["cached"] is True and step["cache_key"]


def test_a_slower_step_than_the_baseline_fails_showing_old_new_and_ratio(sleeper: PipelineProject) -> None:
    baseline = sleeper.root / "baseline.json"
    sleeper.run("--cursus-json", str(baseline)).assert_outcomes(passed=1)
    _scenario(sleeper, sleep=1.6, allocate=0)
    result = sleeper.run("--cursus-baseline", str(baseline))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*step 'nap' of scenario 'timed' regressed against the baseline *baseline.json: wall time *s -> *s (x* > "
            "max x1.5)",
            "baseline regressions (against *baseline.json):",
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str()


def test_a_hungrier_step_than_the_baseline_fails_on_memory(sleeper: PipelineProject) -> None:
    baseline = sleeper.root / "baseline.json"
    sleeper.run("--cursus-json", str(baseline))
    _scenario(sleeper, sleep=0.1, allocate=150)
    result = sleeper.run("--cursus-baseline", str(baseline))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*regressed against the baseline*peak memory * MB -> * MB (x* > max x1.3)*"])


def test_small_absolute_increases_do_not_fail_even_at_a_large_ratio(sleeper: PipelineProject) -> None:
    baseline = sleeper.root / "baseline.json"
    sleeper.run("--cursus-json", str(baseline))
    document = json.loads(baseline.read_text())
    document["steps"][0]["metrics"]["wall_seconds"] /= 4  # now x4 slower, but by well under a second
    baseline.write_text(json.dumps(document))
    sleeper.run("--cursus-baseline", str(baseline), "--cursus-no-cache").assert_outcomes(passed=1)


def test_thresholds_come_from_ini_options(sleeper: PipelineProject) -> None:
    baseline = sleeper.root / "baseline.json"
    sleeper.run("--cursus-json", str(baseline))
    _scenario(sleeper, sleep=1.6, allocate=0)
    sleeper.pytester.makeini("[pytest]\ncursus_max_time_ratio = 100\n")
    sleeper.run("--cursus-baseline", str(baseline)).assert_outcomes(passed=1)


def test_a_baseline_comparison_runs_the_step_instead_of_taking_its_old_numbers_from_the_cache(
    sleeper: PipelineProject,
) -> None:
    """A plain rerun used to go green: the regressed step came from the step cache, uncompared."""
    _scenario(sleeper, sleep=1.6, allocate=0)
    baseline = sleeper.root / "baseline.json"
    sleeper.run("--cursus-json", str(baseline)).assert_outcomes(passed=1)  # now in the step cache
    document = json.loads(baseline.read_text())
    document["steps"][0]["metrics"]["wall_seconds"] = 0.1  # the baseline branch was fast
    baseline.write_text(json.dumps(document))
    path = sleeper.root / "again.json"

    result = sleeper.run("--cursus-baseline", str(baseline), "--cursus-json", str(path))

    result.assert_outcomes(failed=1)
    (step,) = json.loads(path.read_text())["steps"]
    assert step["cached"] is False and step["baseline"]["status"] == "regressed"


def test_steps_that_could_not_be_compared_are_listed_with_the_reason(sleeper: PipelineProject) -> None:
    baseline = sleeper.root / "baseline.json"
    sleeper.run("--cursus-json", str(baseline))
    document = json.loads(baseline.read_text())
    document["steps"][0]["step"] = "renamed"  # the step is not in the baseline
    baseline.write_text(json.dumps(document))

    result = sleeper.run("--cursus-baseline", str(baseline))

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["1 step(s) not compared with the baseline *baseline.json:", "  1 not in the baseline: timed::nap"]
    )


def test_the_strict_baseline_fails_a_step_that_could_not_be_compared(sleeper: PipelineProject) -> None:
    baseline = sleeper.root / "baseline.json"
    sleeper.run("--cursus-json", str(baseline))
    document = json.loads(baseline.read_text())
    document["steps"][0]["failure"] = {"kind": "exception", "message": "boom"}  # failed in the baseline run
    baseline.write_text(json.dumps(document))

    result = sleeper.run("--cursus-baseline", str(baseline), "--cursus-baseline-strict")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*step 'nap' of scenario 'timed' could not be compared with the baseline *baseline.json: "
            "failed in the baseline run (--cursus-baseline-strict fails such steps*"
        ]
    )


def test_an_unreadable_baseline_is_a_usage_error_naming_the_file(sleeper: PipelineProject) -> None:
    bad = sleeper.root / "bad.json"
    bad.write_text('{"format": "pytest-cursus-run", "schema_version": 99, "steps": []}')
    result = sleeper.run("--cursus-baseline", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--cursus-baseline*bad.json: schema_version 99 is not one this version reads (expected 1)*"]
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_cursus.cli.main", *args], capture_output=True, text=True, check=False
    )


def _report(tmp_path: Path, name: str, steps: dict[str, tuple[float, int]]) -> Path:
    report = RunReport(
        steps=[
            {
                "scenario": "s",
                "scenario_file": "s.yaml",
                "step": step,
                "outcome": "passed",
                "metrics": {"wall_seconds": wall, "peak_rss_bytes": mb * 2**20},
            }
            for step, (wall, mb) in steps.items()
        ]
    )
    path = tmp_path / f"{name}.json"
    path.write_text(report.model_dump_json())
    return path


def test_compare_command_prints_old_new_ratio_and_exits_1_on_regression(tmp_path: Path) -> None:
    old = _report(tmp_path, "old", {"prep": (2.0, 100), "train": (10.0, 500)})
    new = _report(tmp_path, "new", {"prep": (2.1, 100), "train": (30.0, 900)})
    done = _cli("compare", str(old), str(new))
    assert done.returncode == 1
    train = next(line for line in done.stdout.splitlines() if line.startswith("s::train"))
    assert "10.00s" in train and "30.00s" in train and "x3.00" in train and "REGRESSED (time, memory)" in train
    assert next(line for line in done.stdout.splitlines() if line.startswith("s::prep")).endswith("ok")


def test_compare_command_exits_0_without_regression_and_2_on_a_bad_file(tmp_path: Path) -> None:
    old = _report(tmp_path, "old", {"prep": (2.0, 100)})
    assert _cli("compare", str(old), str(old)).returncode == 0
    (tmp_path / "junk.json").write_text("[1, 2]")
    done = _cli("compare", str(old), str(tmp_path / "junk.json"))
    assert done.returncode == 2 and "junk.json: expected format 'pytest-cursus-run'" in done.stderr


def test_trend_command_prints_a_table_with_sparklines_and_writes_an_svg_chart(tmp_path: Path) -> None:
    runs = [_report(tmp_path, f"run{i}", {"prep": (1.0 + i, 100 + 10 * i)}) for i in range(4)]
    chart = tmp_path / "trend.svg"
    done = _cli("trend", *map(str, runs), "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    wall = next(line for line in done.stdout.splitlines() if line.startswith("s::prep"))
    assert wall.split()[3:7] == ["1.00", "2.00", "3.00", "4.00"] and wall.endswith("▁▃▆█")
    svg = chart.read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 2 and "prep" in svg
