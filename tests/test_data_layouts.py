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
