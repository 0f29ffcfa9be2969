"""Sub-directory layouts of generated data (`layout:` in a `data:` schema), the layout-mismatch diagnosis,
and edge cases of the fuzzer turned off per input so that the next bug shows."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_project import PipelineProject

COLUMNS = {
    "id": {"type": "int", "unique": True},
    "amount": {"type": "float", "min": 0, "max": 100, "nulls": 0.2},
}
SPLITS_LAYOUT = {"layout": "{split}/{split}_processed_data.csv", "layout_values": {"split": ["train", "val", "test"]}}

# As real preprocessing outputs are read: one sub-directory per split, the file name built from the split.
READS_SPLIT_DIRECTORIES = """
import csv, os

def main(input_paths, output_paths, environ_vars, job_args):
    counts = {}
    for split in ("train", "val", "test"):
        path = os.path.join(input_paths["DATA"], split, f"{split}_processed_data.csv")
        with open(path, newline="") as handle:
            counts[split] = len(list(csv.DictReader(handle)))
    with open(os.path.join(output_paths["out"], "counts.txt"), "w") as handle:
        handle.write(repr(counts))
"""


def split_step(project: PipelineProject, script: str, data: dict[str, Any], fuzz: str = "") -> None:
    project.pytester.makeini("[pytest]\n")
    project.contract(
        "Splits",
        entry_point="splits.py",
        inputs={"DATA": {"path": "/opt/ml/processing/input/data", "data": data}},
    )
    project.script("splits.py", script)
    project.scenario(
        "splits",
        f"""
        data:
          rows:
            synthetic:
              rows: 20
              columns:
                id: {{type: int, unique: true}}
                amount: {{type: float}}
        steps:
          upstream_free:
            contract: Splits
            inputs: {{DATA: rows}}
            {fuzz}
        """,
    )


def test_a_declared_layout_is_written_for_the_isolation_item(project: PipelineProject) -> None:
    split_step(project, READS_SPLIT_DIRECTORIES, {"columns": COLUMNS, **SPLITS_LAYOUT}, fuzz="fuzz: {examples: 5}")
    result = project.run("-k", "fuzz", "-v")
    text = result.stdout.str()
    print(text)
    result.assert_outcomes(passed=1)


UPSTREAM = """
def main(input_paths, output_paths, environ_vars, job_args):
    raise RuntimeError("isolation never runs the upstream step")
"""


def split_pair(project: PipelineProject, data: dict[str, Any]) -> None:
    project.contract("Prepare", entry_point="prepare.py", outputs={"processed": {"path": "/opt/ml/processing/output"}})
    project.contract(
        "Train",
        entry_point="train.py",
        inputs={"DATA": {"path": "/opt/ml/input/data/train", "data": data}},
        outputs={"out": {"path": "/opt/ml/model"}},
    )
    project.script("prepare.py", UPSTREAM)
    project.script("train.py", READS_SPLIT_DIRECTORIES)
    project.scenario(
        "pair",
        """
        steps:
          prepare:
            contract: Prepare
          train:
            contract: Train
            inputs: {DATA: prepare.processed}
        """,
    )


def test_a_script_reading_split_directories_passes_isolation_once_the_layout_is_declared(
    project: PipelineProject,
) -> None:
    split_pair(project, {"columns": COLUMNS, **SPLITS_LAYOUT})
    result = project.run("--cursus-mode", "isolation", "-k", "train")
    result.assert_outcomes(passed=1, deselected=1)


def test_without_a_layout_the_isolation_failure_says_the_schema_does_not_describe_the_layout(
    project: PipelineProject,
) -> None:
    split_pair(project, {"columns": COLUMNS})
    result = project.run("--cursus-mode", "isolation", "-k", "train")
    result.assert_outcomes(failed=1, deselected=1)
    text = result.stdout.str()
    assert "step 'train' of scenario 'pair' failed: the step failed (FileNotFoundError: " in text
    assert "/input/DATA/train/train_processed_data.csv): the script expects a layout the schema of input DATA" in text
    assert "does not describe; add `layout:` to its data: schema (docs/contracts.md)" in text


def test_a_fuzzed_script_that_fails_on_every_dataset_for_want_of_a_layout_gets_the_layout_diagnosis(
    project: PipelineProject,
) -> None:
    split_step(project, READS_SPLIT_DIRECTORIES, {"columns": COLUMNS}, fuzz="fuzz: {examples: 10, max_rows: 4}")
    result = project.run("-k", "fuzz")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "every generated dataset failed the same way before reading any row (FileNotFoundError: " in text
    assert "/DATA/train/train_processed_data.csv): the script expects a layout the schema of input DATA" in text
    assert "shrunk to this minimal example" not in text


# Two planted bugs: an empty frame divides by zero; an all-null amount column leaves max() nothing.
TWO_BUGS = """
import csv, glob, os

def main(input_paths, output_paths, environ_vars, job_args):
    rows = []
    for path in sorted(glob.glob(os.path.join(input_paths["DATA"], "*.csv"))):
        with open(path, newline="") as handle:
            rows += list(csv.DictReader(handle))
    mean_id = sum(int(row["id"]) for row in rows) / len(rows)
    top = max(float(row["amount"]) for row in rows if row["amount"])
    with open(os.path.join(output_paths["out"], "summary.txt"), "w") as handle:
        handle.write(f"{mean_id} {top}")
"""


def test_the_second_bug_shows_once_the_null_edge_is_turned_off(project: PipelineProject) -> None:
    # the null edge (one row, amount null) runs before any generated dataset: its bug shows first
    split_step(project, TWO_BUGS, {"columns": COLUMNS}, fuzz="fuzz: {examples: 30, max_rows: 6}")
    first = project.run("-k", "fuzz")
    first.assert_outcomes(failed=1)
    assert "ValueError: max() arg is an empty sequence" in first.stdout.str()
    assert "input DATA: 1 row(s)" in first.stdout.str()

    split_step(
        project,
        TWO_BUGS,
        {"columns": COLUMNS},
        fuzz="fuzz: {examples: 30, max_rows: 6, inputs: {DATA: {nulls: false}}}",
    )
    second = project.run("-k", "fuzz")
    second.assert_outcomes(failed=1)
    text = second.stdout.str()
    assert "ValueError" not in text
    assert "ZeroDivisionError" in text
    assert "input DATA: 0 row(s)" in text

    split_step(
        project,
        TWO_BUGS,
        {"columns": COLUMNS},
        fuzz="fuzz: {examples: 30, max_rows: 6, inputs: {DATA: {min_rows: 1, nulls: false}}}",
    )
    project.run("-k", "fuzz").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ("{DATA: {min_rows: 9}}", "Expected inputs.DATA.min_rows <= max_rows but got min_rows=9, max_rows=6"),
        ("{DTA: {nulls: false}}", "steps.upstream_free.fuzz.inputs.DTA: contract Splits has no input 'DTA'"),
        ("{DATA: {blanks: false}}", "blanks"),
    ],
)
def test_per_input_edge_settings_are_validated(project: PipelineProject, edges: str, message: str) -> None:
    split_step(project, TWO_BUGS, {"columns": COLUMNS}, fuzz=f"fuzz: {{max_rows: 6, inputs: {edges}}}")
    result = project.run()
    result.assert_outcomes(errors=1)
    assert "scenarios/splits.yaml:" in result.stdout.str()
    assert message in result.stdout.str()


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"layout": "{split}/x.csv"}, "Expected layout_values to give the values of exactly the placeholders"),
        ({"layout": "../x.csv"}, "Expected layout to be a relative file path inside the channel's directory"),
        ({"layout": "{split}/x.txt", "layout_values": {"split": ["a"]}}, "Expected layout to end in a table file"),
        ({"layout": "{s}.csv", "layout_values": {"s": ["a", "a"]}}, "Expected layout_values.s to be distinct"),
        ({"layout": "x.csv", "format": "parquet"}, "Expected the layout's file suffix to match format='parquet'"),
        ({"layout_values": {"s": ["a"]}}, "Expected layout_values only with a layout"),
    ],
)
def test_a_bad_layout_is_a_contract_error_naming_the_file_and_field(
    project: PipelineProject, layout: dict[str, Any], message: str
) -> None:
    split_step(project, READS_SPLIT_DIRECTORIES, {"columns": COLUMNS, **layout})
    result = project.run()
    text = result.stdout.str()
    assert "splits.step.yaml" in text
    assert "inputs.DATA.data" in text
    assert message in text
