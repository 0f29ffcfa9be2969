"""The end-of-session summary: one aligned table per scenario, cached steps marked, hints with -v,
the same rows under xdist as in a serial run."""

from __future__ import annotations

import re

import pytest

from pipeline_project import PipelineProject

CHAIN_SCRIPT = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    rows = int(environ_vars.get("ROWS", "3"))
    with open(os.path.join(output_paths["out"], "part.csv"), "w") as handle:
        handle.write("id\\n" + "".join(f"{i}\\n" for i in range(rows)))
"""


@pytest.fixture
def two_scenarios(project: PipelineProject) -> PipelineProject:
    """`alpha`: first -> second_step_with_a_name_that_is_much_longer_than_the_table_allows; `beta`: one step failing."""
    project.contract(
        "Writer",
        entry_point="writer.py",
        inputs={"upstream": {"path": "/opt/ml/processing/input/up", "required": False}},
    )
    project.script("writer.py", CHAIN_SCRIPT)
    project.contract("Crasher", entry_point="crasher.py")
    project.script(
        "crasher.py", "def main(input_paths, output_paths, environ_vars, job_args):\n    raise ValueError('boom')\n"
    )
    project.scenario(
        "alpha",
        """
        steps:
          first:
            contract: Writer
            env: {ROWS: "1500"}
          second_step_with_a_name_that_is_much_longer_than_the_table_allows:
            contract: Writer
            env: {ROWS: "20"}
            inputs: {upstream: first.out}
        """,
    )
    project.scenario("beta", "steps:\n  crash:\n    contract: Crasher\n")
    return project


def _summary(result: pytest.RunResult) -> list[str]:
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "cursus: pipeline steps" in line)
    end = next(
        i for i in range(start + 1, len(lines)) if lines[i].startswith("=") or lines[i].startswith("cursus JSON")
    )
    return lines[start + 1 : end]


def _row(summary: list[str], step: str) -> list[str]:
    """The cells of a step's row (a long name is cut with an ellipsis to fit the table)."""
    line = next(
        line
        for line in summary
        if line.startswith(step + " ")
        or (step.startswith(line.split(" ")[0].rstrip("…")) and line.split(" ")[0].endswith("…"))
    )
    return line.split()


def test_summary_has_one_table_per_scenario_with_outcome_wall_cpu_memory_and_rows(
    two_scenarios: PipelineProject,
) -> None:
    result = two_scenarios.run("--cursus-no-cache")
    result.assert_outcomes(passed=3, failed=1)
    summary = _summary(result)
    assert any(line.startswith("scenario alpha (scenarios/alpha.yaml)") for line in summary)
    assert any(line.startswith("scenario beta (scenarios/beta.yaml)") for line in summary)
    first = _row(summary, "first")
    assert first[1] == "passed" and first[-1] == "1,500"
    assert re.fullmatch(r"\d+\.\d\ds", first[2]) and re.fullmatch(r"\d+\.\d\ds", first[3])
    assert float(first[4]) > 1, "peak MB of a python process"
    assert _row(summary, "second_step_with_a_name_that_is_much_longer_than_the_table_allows")[-1] == "20"
    assert _row(summary, "crash")[1] == "failed"


def test_summary_lines_fit_in_100_columns_and_columns_align(two_scenarios: PipelineProject) -> None:
    result = two_scenarios.run("--cursus-no-cache")
    summary = _summary(result)
    assert all(len(line) <= 100 for line in summary)
    header = next(line for line in summary if line.startswith("step "))
    rows = [line for line in summary if line.startswith(("first ", "second_step"))]
    assert len(rows) == 2
    for title in ("wall", "CPU", "peak MB", "rows out"):
        end = header.index(title) + len(title)
        assert all(row[end - 1] != " " and (len(row) == end or row[end] == " ") for row in rows), title


def test_cached_steps_show_their_stored_metrics_marked_cached(two_scenarios: PipelineProject) -> None:
    two_scenarios.run()
    result = two_scenarios.run()
    first = _row(_summary(result), "first")
    assert first[1:3] == ["passed", "cached"]
    assert first[-1] == "1,500" and re.fullmatch(r"\d+\.\d\ds", first[3]), "the stored numbers, not blanks"


def test_steps_run_only_as_setup_of_a_selected_item_are_listed_too(two_scenarios: PipelineProject) -> None:
    result = two_scenarios.run("--cursus-no-cache", "-k", "second_step")
    summary = _summary(result)
    assert _row(summary, "first (setup)")[2] == "passed"
    assert any("run only as setup of selected items: first" in line for line in summary)


def test_recommendations_appear_with_verbose_and_are_announced_without(project: PipelineProject) -> None:
    project.contract("Hog", entry_point="hog.py")
    project.script(
        "hog.py",
        """
        def main(input_paths, output_paths, environ_vars, job_args):
            blob = bytearray(150 * 2**20)
            for i in range(0, len(blob), 4096):
                blob[i] = 1
            import time; time.sleep(0.3)
        """,
    )
    project.scenario(
        "hungry",
        "steps:\n  hog:\n    contract: Hog\n    max_memory_mb: 180\n",
    )
    quiet = project.run("--cursus-no-cache")
    assert any("recommendation(s) for 1 step(s): run with -v" in line for line in quiet.stdout.lines)
    verbose = project.run("--cursus-no-cache", "-v")
    verbose.stdout.fnmatch_lines(
        ["recommendations:", "*hungry::hog: peak memory * MB is *% of the 180 MB limit (> 80%)*"]
    )


def test_xdist_run_lists_the_same_steps_as_a_serial_run_without_internal_error(two_scenarios: PipelineProject) -> None:
    serial = two_scenarios.run("--cursus-no-cache")
    parallel = two_scenarios.run("--cursus-no-cache", "-n", "2")
    assert "INTERNALERROR" not in parallel.stdout.str() + parallel.stderr.str()

    def shape(result: pytest.RunResult) -> list[tuple[str, str, str]]:
        rows = [
            line.split()
            for line in _summary(result)
            if line.split() and line.split()[0].startswith(("first", "second_step", "crash"))
        ]
        return sorted((row[0], row[1], row[-1]) for row in rows)

    assert shape(parallel) == shape(serial)
    assert len(shape(parallel)) == 3
