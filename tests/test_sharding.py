"""--cursus-shard I/N: N runners together run every item once, whole scenario files each, balanced by
the step durations of an earlier report; cursus-runtime merge-reports makes one report of theirs."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.run.sharding import (
    OTHER_ITEM_SECONDS,
    STEP_OVERHEAD_SECONDS,
    Shard,
    WorkItem,
    assign_units,
    shard_loads,
    unit_weights,
)

WRITER = """
import os, sys
def main(input_paths, output_paths, environ_vars, job_args):
    if environ_vars.get("FAIL"):
        sys.exit("failing on purpose")
    with open(os.path.join(output_paths["out"], "part.csv"), "w") as handle:
        handle.write("id\\n1\\n2\\n")
"""


@pytest.fixture
def six_scenarios(project: PipelineProject) -> PipelineProject:
    project.contract(
        "Writer",
        entry_point="writer.py",
        inputs={"upstream": {"path": "/opt/ml/processing/input/up", "required": False}},
        optional_env={"FAIL": ""},
    )
    project.script("writer.py", WRITER)
    for number in range(6):
        lines = ["  s0: {contract: Writer}"]
        lines += [f"  s{index}: {{contract: Writer, inputs: {{upstream: s{index - 1}.out}}}}" for index in (1, 2)]
        chain = "\n".join(lines[: number % 3 + 1])  # chains of 1, 2 and 3 steps
        project.scenario(f"pipeline_{number}", f"steps:\n{chain}\n")
    return project


def collected(project: PipelineProject, *args: str) -> list[str]:
    result = project.run("--collect-only", "-q", *args)
    assert result.ret == 0, result.stdout.str()
    return [line for line in result.stdout.lines if "::" in line]


def test_the_shards_together_select_every_item_once_in_whole_scenario_files(six_scenarios: PipelineProject) -> None:
    everything = collected(six_scenarios)

    shards = [collected(six_scenarios, "--cursus-shard", f"{index}/3") for index in range(3)]

    assert sorted(item for shard in shards for item in shard) == sorted(everything)
    files = [{item.split("::")[0] for item in shard} for shard in shards]
    assert all(files), "every shard gets work"
    assert set.intersection(*files) == set() and sum(map(len, files)) == 6  # a file is in one shard only


def test_each_shard_says_what_it_runs(six_scenarios: PipelineProject) -> None:
    result = six_scenarios.run("--collect-only", "-q", "--cursus-shard", "1/3")

    result.stdout.fnmatch_lines(
        ["cursus: shard 1/3: 2 of 6 files, * of * items (expected *s of *s; no --cursus-shard-durations*"]
    )


@pytest.mark.parametrize("value", ["3/3", "-1/3", "1/0", "one/three", "2"])
def test_a_bad_shard_is_a_usage_error_saying_what_is_expected(six_scenarios: PipelineProject, value: str) -> None:
    result = six_scenarios.run(f"--cursus-shard={value}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cursus-shard / cursus_shard: expected I/N*0 <= I < N*"])


def test_recorded_durations_put_a_long_scenario_alone_on_a_shard(six_scenarios: PipelineProject) -> None:
    earlier = six_scenarios.root / "earlier.json"
    six_scenarios.run("--cursus-json", str(earlier)).assert_outcomes(passed=18)
    document = json.loads(earlier.read_text())
    for step in document["steps"]:  # as if pipeline_0's only step took ten minutes
        step["metrics"]["wall_seconds"] = 600.0 if step["scenario"] == "pipeline_0" else 1.0
    earlier.write_text(json.dumps(document))

    shards = [
        collected(six_scenarios, "--cursus-shard", f"{index}/2", "--cursus-shard-durations", str(earlier))
        for index in range(2)
    ]

    alone = next(shard for shard in shards if any(item.startswith("scenarios/pipeline_0.yaml") for item in shard))
    assert {item.split("::")[0] for item in alone} == {"scenarios/pipeline_0.yaml"}


def test_an_unreadable_durations_file_is_a_usage_error_naming_it(six_scenarios: PipelineProject) -> None:
    bad = six_scenarios.root / "bad.json"
    bad.write_text("{}")

    result = six_scenarios.run("--cursus-shard", "0/2", "--cursus-shard-durations", str(bad))

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cursus-shard-durations / cursus_shard_durations: *bad.json*"])


def test_the_partition_does_not_depend_on_the_order_items_were_collected_in() -> None:
    rng = random.Random(7)
    weights = {f"scenarios/s{index:02}.yaml": rng.choice([1.0, 2.0, 5.0, 5.0, 30.0]) for index in range(40)}
    shuffled = list(weights.items())
    rng.shuffle(shuffled)

    assert assign_units(weights, 4) == assign_units(dict(shuffled), 4)


def test_forty_scenarios_of_uneven_lengths_make_shards_within_thirty_percent_of_the_mean() -> None:
    rng = random.Random(11)
    items = [
        WorkItem(f"scenarios/s{index:02}.yaml", (f"s{index:02}", f"step{step}"))
        for index in range(40)
        for step in range(rng.randint(1, 7))
    ]
    durations = {item.step: rng.uniform(0.5, 20.0) for item in items if item.step}
    weights = unit_weights(items, durations)

    loads = shard_loads(weights, assign_units(weights, 4), 4)

    assert max(loads) <= 1.3 * (sum(loads) / 4)


def test_a_step_the_durations_file_does_not_know_counts_as_the_median_known_step() -> None:
    items = [WorkItem("a.yaml", ("a", "x")), WorkItem("b.yaml", ("b", "new")), WorkItem("b.yaml")]

    weights = unit_weights(items, {("a", "x"): 8.0, ("z", "y"): 2.0})

    overhead = STEP_OVERHEAD_SECONDS
    assert weights == {"a.yaml": 8.0 + overhead, "b.yaml": pytest.approx(5.0 + overhead + OTHER_ITEM_SECONDS)}


def test_shard_values_read_as_index_of_count() -> None:
    assert Shard.parse(" 2 / 4 ") == Shard(2, 4)
    assert str(Shard.parse("0/1")) == "0/1"


# --- merge-reports -------------------------------------------------------------------------------------


def merge_reports(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_cursus.cli.main", "merge-reports", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_the_shards_reports_merge_into_the_report_of_a_whole_run(six_scenarios: PipelineProject) -> None:
    whole = six_scenarios.root / "whole.json"
    six_scenarios.run("--cursus-json", str(whole), "--cursus-no-cache").assert_outcomes(passed=18)
    parts = [six_scenarios.root / f"shard{index}.json" for index in range(3)]
    for index, part in enumerate(parts):
        six_scenarios.run("--cursus-shard", f"{index}/3", "--cursus-json", str(part))

    result = merge_reports(*map(str, parts), "-o", "merged.json", "--html", "merged.html", cwd=six_scenarios.root)

    assert result.returncode == 0, result.stderr
    assert "3 reports merged into merged.json: 12 steps, 0 failed or in error" in result.stdout
    merged = json.loads((six_scenarios.root / "merged.json").read_text())
    expected = json.loads(whole.read_text())
    key = ("scenario", "step", "outcome", "nodeid")
    assert sorted(tuple(s[k] for k in key) for s in merged["steps"]) == sorted(
        tuple(s[k] for k in key) for s in expected["steps"]
    )
    page = (six_scenarios.root / "merged.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "12 steps: 12 passed" in page
    assert all(f"Scenario pipeline_{number}" in page for number in range(6))
    assert not re.search(r"""(src|href)=["']?https?:|url\(\s*["']?https?:""", page)  # self-contained


def test_merging_exits_1_when_a_shard_failed_and_warns_about_overlapping_shards(
    six_scenarios: PipelineProject,
) -> None:
    six_scenarios.scenario("pipeline_5", "steps:\n  s0: {contract: Writer, env: {FAIL: '1'}}\n")
    run = six_scenarios.root / "run.json"
    six_scenarios.run("--cursus-json", str(run))

    result = merge_reports(str(run), str(run), "-o", "merged.json", cwd=six_scenarios.root)

    assert result.returncode == 1
    assert "1 failed or in error" in result.stdout
    assert "warning: pipeline_5::s0 is an item of both" in result.stderr and "did two shards overlap?" in result.stderr


def test_merging_an_unreadable_report_names_it(six_scenarios: PipelineProject) -> None:
    (six_scenarios.root / "bad.json").write_text('{"format": "something-else"}')

    result = merge_reports("bad.json", "-o", "merged.json", cwd=six_scenarios.root)

    assert result.returncode == 2
    assert "bad.json" in result.stderr
    assert not (six_scenarios.root / "merged.json").exists()
