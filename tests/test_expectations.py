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


METRICS = """
import json
json.dump({"auc": 0.61, "model": {"name": "xgb", "depth": 4}, "folds": [0.6, 0.62], "ok": True},
          open(os.path.join(out, "metrics.json"), "w"))
"""


def test_json_values_meeting_their_checks_pass(project: PipelineProject) -> None:
    _step(
        project,
        METRICS,
        "{values: {metrics.json: {auc: {min: 0.6, max: 0.7}, model.name: {equals: xgb}, folds.1: {min: 0.62},"
        " ok: {equals: true}}}}",
    )
    project.run().assert_outcomes(passed=1)


def test_a_value_below_its_minimum_names_the_file_the_key_and_both_values(project: PipelineProject) -> None:
    _step(project, METRICS, "{values: {metrics.json: {auc: {min: 0.7}}}}")
    _fails_with(project, "metrics.json: key 'auc': expected at least 0.7, found 0.61")


def test_a_value_not_equal_says_what_was_expected_and_found(project: PipelineProject) -> None:
    _step(project, METRICS, "{values: {metrics.json: {model.name: {equals: lightgbm}, model.depth: {equals: 6}}}}")
    _fails_with(
        project,
        'metrics.json: key \'model.name\': expected "lightgbm", found "xgb" (a str)',
        "metrics.json: key 'model.depth': expected 6, found 4 (a int)",
    )


def test_a_true_is_not_equal_to_one(project: PipelineProject) -> None:
    _step(project, METRICS, "{values: {metrics.json: {ok: {equals: 1}}}}")
    _fails_with(project, "metrics.json: key 'ok': expected 1, found true (a bool)")


def test_a_missing_key_lists_the_keys_where_the_path_stopped(project: PipelineProject) -> None:
    _step(project, METRICS, "{values: {metrics.json: {model.learning_rate: {min: 0}}}}")
    _fails_with(project, "metrics.json: key 'model.learning_rate' not found: model has keys name, depth")


def test_a_bound_on_a_value_that_is_no_number_says_what_it_is(project: PipelineProject) -> None:
    _step(project, METRICS, "{values: {metrics.json: {model: {min: 1}}}}")
    _fails_with(project, "metrics.json: key 'model': expected a number at least 1, found {*} (a dict)")


def test_a_values_file_missing_or_not_json_is_named(project: PipelineProject) -> None:
    _step(
        project,
        METRICS + 'open(os.path.join(out, "notes.json"), "w").write("{auc: 1")\n',
        "{values: {scores.json: {auc: {min: 0}}, notes.json: {auc: {min: 0}}}}",
    )
    _fails_with(
        project,
        "values: no file scores.json; found metrics.json, notes.json",
        "values: notes.json is not JSON: Expecting property name enclosed in double quotes (line 1, column 2)",
    )


SIGNED = """
open(os.path.join(out, "scored.csv"), "w").write("id,amount,label\\n1,5.0,0\\n2,-1.5,1\\n3,2.0,2\\n4,-3.0,1\\n")
"""


def test_row_expressions_every_row_meets_pass(project: PipelineProject) -> None:
    _step(project, SIGNED, "{rows: ['id > 0', 'label.isin([0, 1, 2])', 'amount < 10 and id <= 4']}")
    project.run().assert_outcomes(passed=1)


def test_rows_failing_an_expression_are_counted_and_the_first_shown(project: PipelineProject) -> None:
    _step(project, SIGNED, "{rows: ['amount >= 0', 'label.isin([0, 1])']}")
    _fails_with(
        project,
        "scored.csv: 2 of 4 rows fail 'amount >= 0'; first 2: row 1: id=2, amount=-1.5, label=1; "
        "row 3: id=4, amount=-3.0, label=1",
        "scored.csv: 1 of 4 rows fail 'label.isin([[]0, 1[]])'; first 1: row 2: id=3, amount=2.0, label=2",
    )


def test_a_row_expression_pandas_cannot_evaluate_names_it_and_the_columns(project: PipelineProject) -> None:
    _step(project, SIGNED, "{rows: ['price > 0', 'open(\"/etc/passwd\")', 'amount + 1']}")
    _fails_with(
        project,
        "scored.csv: rows expression 'price > 0' cannot be evaluated: *price* its columns are id, amount, label",
        "scored.csv: rows expression 'open(\"/etc/passwd\")' cannot be evaluated: *not a supported function*",
        "scored.csv: rows expression 'amount + 1' must give one true/false per row, gave Series of float64",
    )


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("amount > @limit", "'@' refers to Python variables"),
        ("amount.__class__", "'__' (a dunder attribute)"),
        ("amount = 1", "'=' assigns a column"),
    ],
)
def test_a_row_expression_reaching_past_the_columns_is_a_scenario_error(
    project: PipelineProject, expression: str, problem: str
) -> None:
    _step(project, SIGNED, f"{{rows: ['{expression}']}}")
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*expected a pandas expression such as 'amount >= 0', found *: {problem}*"])
    assert not (project.root / "workspace" / "expecting" / "build").exists()
