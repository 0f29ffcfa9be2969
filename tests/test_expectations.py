"""``expect:`` checks on a step's outputs: a step that ran but wrote the wrong thing fails, and the
message says what was found instead."""

from __future__ import annotations

import textwrap

import pytest

from pipeline_project import PipelineProject


def _step(project: PipelineProject, writes: str, expect: str) -> PipelineProject:
    """One step `build` whose main() body is ``writes`` (``out`` is its output directory)."""
    project.contract("Builder", entry_point="builder.py")
    project.script(
        "builder.py",
        "import os\n\n"
        "def main(input_paths, output_paths, environ_vars, job_args):\n"
        '    out = output_paths["out"]\n' + textwrap.indent(textwrap.dedent(writes).strip("\n"), "    ") + "\n",
    )
    project.scenario(
        "expecting",
        "steps:\n  build:\n    contract: Builder\n    expect:\n      out: " + expect + "\n",
    )
    return project


def _fails_with(project: PipelineProject, *problems: str) -> pytest.RunResult:
    """Run: the step fails, and each problem is reported on a line of its own."""
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*step 'build' of scenario 'expecting' failed: output 'out': *"])
    for problem in problems:
        result.stdout.fnmatch_lines([f"*output 'out': {problem}"])
    output = result.stdout.str()
    assert "INTERNALERROR" not in output and "Traceback (most recent call last)" not in output
    return result


TWO_SPLITS = """
os.makedirs(os.path.join(out, "train"))
open(os.path.join(out, "train", "a.csv"), "w").write("id,amount\\n1,1.5\\n2,2.5\\n3,3.5\\n")
open(os.path.join(out, "train", "b.csv"), "w").write("id,amount\\n4,4.5\\n5,5.5\\n")
"""


def test_outputs_meeting_every_expectation_pass(project: PipelineProject) -> None:
    _step(project, TWO_SPLITS, "{files: [train/*.csv], min_rows: 5, max_rows: 5, columns: [id, amount]}")
    project.run().assert_outcomes(passed=1)


def test_files_glob_matching_nothing_lists_what_was_found(project: PipelineProject) -> None:
    _step(project, TWO_SPLITS, "{files: [val/*.csv]}")
    _fails_with(project, "no file matches 'val/[*].csv'; found train/a.csv, train/b.csv")


def test_too_few_rows_gives_the_total_and_per_file_counts(project: PipelineProject) -> None:
    _step(project, TWO_SPLITS, "{min_rows: 10}")
    _fails_with(project, "expected at least 10 rows, found 5 (train/a.csv: 3, train/b.csv: 2)")


def test_too_many_rows_gives_the_total_and_per_file_counts(project: PipelineProject) -> None:
    _step(project, TWO_SPLITS, "{max_rows: 4}")
    _fails_with(project, "expected at most 4 rows, found 5 (train/a.csv: 3, train/b.csv: 2)")


def test_rows_are_counted_only_in_the_files_the_globs_match(project: PipelineProject) -> None:
    _step(project, TWO_SPLITS, "{files: [train/b.csv], min_rows: 3}")
    _fails_with(project, "expected at least 3 rows, found 2 (train/b.csv: 2)")


def test_missing_column_names_the_file_the_column_and_the_columns_it_has(project: PipelineProject) -> None:
    _step(project, TWO_SPLITS, "{files: [train/a.csv], columns: [id, label, amount]}")
    _fails_with(project, "train/a.csv lacks column(s) label; it has id, amount")


def test_an_output_the_step_left_empty_fails(project: PipelineProject) -> None:
    _step(project, "pass", "{min_rows: 1}")
    _fails_with(project, "is empty: the step wrote no file under *expecting/build/output/out")


def test_rows_asked_of_a_non_tabular_output_say_what_is_there(project: PipelineProject) -> None:
    _step(
        project,
        """
        import pickle
        pickle.dump({"weights": [1, 2]}, open(os.path.join(out, "model.pkl"), "wb"))
        open(os.path.join(out, "metrics.json"), "w").write("{}")
        """,
        "{min_rows: 1}",
    )
    _fails_with(
        project,
        "has no tabular file (csv, tsv, parquet, jsonl, optionally .gz) to check rows or columns in; found "
        "metrics.json, model.pkl",
    )


def test_a_corrupt_parquet_file_is_reported_as_unreadable(project: PipelineProject) -> None:
    _step(
        project, 'open(os.path.join(out, "data.parquet"), "wb").write(b"this is not parquet at all")', "{min_rows: 1}"
    )
    _fails_with(
        project,
        "cannot read data.parquet: not a readable Parquet file (*)",
        "expected at least 1 rows, found 0 (data.parquet: unreadable)",
    )
