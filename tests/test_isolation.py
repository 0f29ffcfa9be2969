"""Isolation mode: `<step>[isolation]` items run a step on data generated from schemas, not upstream."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_project import PipelineProject

COLUMNS = {"id": {"type": "int", "unique": True}, "amount": {"type": "float", "min": 0, "max": 10}}

UPSTREAM_FAILS = """
def main(input_paths, output_paths, environ_vars, job_args):
    raise RuntimeError("the upstream step is broken")
"""

# Reads the one CSV it was given, checks the columns, writes what it saw.
DOWNSTREAM = """
import csv, glob, json, os

def main(input_paths, output_paths, environ_vars, job_args):
    (path,) = glob.glob(os.path.join(input_paths["features"], "*.csv"))
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "amount"], list(rows[0])
    note = open(input_paths["note"]).read() if os.path.exists(input_paths["note"]) else None
    with open(os.path.join(output_paths["out"], "seen.json"), "w") as handle:
        json.dump({"rows": len(rows), "note": note}, handle)
"""


def two_steps(project: PipelineProject, *, output_schema: bool = True, input_schema: dict | None = None) -> None:
    outputs: dict[str, dict[str, Any]] = {"features": {"path": "/opt/ml/processing/output"}}
    if output_schema:
        outputs["features"]["data"] = {"columns": COLUMNS}
    project.contract("Upstream", entry_point="upstream.py", outputs=outputs)
    downstream_input: dict[str, Any] = {"path": "/opt/ml/processing/input/features"}
    if input_schema is not None:
        downstream_input["data"] = {"columns": input_schema}
    project.contract(
        "Downstream",
        entry_point="downstream.py",
        inputs={
            "features": downstream_input,
            "note": {"path": "/opt/ml/processing/input/note/note.txt", "required": False},
        },
    )
    project.script("upstream.py", UPSTREAM_FAILS)
    project.script("downstream.py", DOWNSTREAM)
    project.scenario(
        "pair",
        """
        data:
          note: {text: "hello from a source"}
        steps:
          upstream:
            contract: Upstream
          downstream:
            contract: Downstream
            inputs: {features: upstream.features, note: note}
            expect:
              out: {files: [seen.json], min_rows: 1000000}
        """,
    )


def test_isolation_mode_collects_only_isolation_items(project: PipelineProject) -> None:
    two_steps(project)
    result = project.run("--co", "-q", "--cursus-mode", "isolation")
    assert result.outlines[:2] == [
        "scenarios/pair.yaml::upstream[isolation]",
        "scenarios/pair.yaml::downstream[isolation]",
    ]
    assert "2 tests collected" in result.stdout.str()


def test_both_mode_adds_isolation_items_to_the_pipeline_items(project: PipelineProject) -> None:
    two_steps(project)
    collected = project.run("--co", "-q", "--cursus-mode", "both").outlines
    assert collected[:5] == [
        "scenarios/pair.yaml::upstream",
        "scenarios/pair.yaml::upstream[isolation]",
        "scenarios/pair.yaml::compat[upstream.features-downstream.features]",
        "scenarios/pair.yaml::downstream",
        "scenarios/pair.yaml::downstream[isolation]",
    ]


def test_pipeline_mode_is_the_default_and_has_no_isolation_items(project: PipelineProject) -> None:
    two_steps(project)
    assert not any("[isolation]" in line for line in project.run("--co", "-q").outlines)


def test_a_step_runs_on_data_generated_from_the_upstream_output_schema_without_the_upstream(
    project: PipelineProject,
) -> None:
    two_steps(project)
    result = project.run("--cursus-mode", "isolation", "-k", "downstream")
    result.assert_outcomes(passed=1)  # the broken upstream step never ran
    seen = (project.workspace / "_isolation/pair/downstream/output/out/seen.json").read_text()
    # 1000 generated rows; the root input kept its data source; min_rows (real data) not judged
    assert seen == '{"rows": 1000, "note": "hello from a source"}'


def test_the_downstream_input_schema_wins_over_the_upstream_output_schema(project: PipelineProject) -> None:
    two_steps(project, input_schema={"id": {"type": "int"}, "other": {"type": "bool"}})
    result = project.run("--cursus-mode", "isolation", "-k", "downstream")
    result.assert_outcomes(failed=1)
    assert "AssertionError: ['id', 'other']" in result.stdout.str()


def test_a_step_without_a_schema_for_an_upstream_input_is_skipped_saying_which_schema_to_add(
    project: PipelineProject,
) -> None:
    two_steps(project, output_schema=False)
    result = project.run("--cursus-mode", "isolation", "-rs", "-k", "downstream")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            (
                "SKIPPED * step 'downstream' cannot run in isolation: input 'features' reads upstream.features and no "
                "schema "
                "says what that data holds; add 'data: {columns: ...}' to input 'features' in "
                "*contracts/downstream.step.yaml, "
                "or to output 'features' in *contracts/upstream.step.yaml"
            )
        ]
    )


def test_a_failing_step_fails_its_isolation_item_with_the_script_traceback(project: PipelineProject) -> None:
    two_steps(project)
    result = project.run("--cursus-mode", "isolation", "-k", "upstream")
    result.assert_outcomes(failed=1)
    assert "RuntimeError: the upstream step is broken" in result.stdout.str()
    assert "_isolation/pair/upstream" in result.stdout.str()


def test_isolation_items_carry_their_markers(project: PipelineProject) -> None:
    two_steps(project)
    selected = project.run("--co", "-q", "--cursus-mode", "both", "-m", "cursus_isolation").outlines
    assert [line for line in selected if line.startswith("scenarios/")] == [
        "scenarios/pair.yaml::upstream[isolation]",
        "scenarios/pair.yaml::downstream[isolation]",
    ]


def test_isolation_expectations_check_files_but_not_row_counts(project: PipelineProject) -> None:
    two_steps(project)
    scenario = project.root / "scenarios/pair.yaml"
    scenario.write_text(scenario.read_text().replace("files: [seen.json]", "files: [missing.json]"))
    result = project.run("--cursus-mode", "isolation", "-k", "downstream")
    result.assert_outcomes(failed=1)
    assert "no file matches 'missing.json'" in result.stdout.str()
    assert "min_rows" not in result.stdout.str()


@pytest.mark.parametrize("mode", ["sideways", ""])
def test_an_unknown_mode_is_a_usage_error(project: PipelineProject, mode: str) -> None:
    two_steps(project)
    result = project.run("--cursus-mode", mode) if mode else project.run("--cursus-mode")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
