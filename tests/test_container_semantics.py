"""Real scripts as their teams wrote them run unchanged, with what a SageMaker container does:
writable inputs (the step's own copies) and import-time pip installs that install nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import PipelineProject

# a `model.tar.gz` whose bytes do not depend on when it was made: the train script and the test
# build it with the same code
ARCHIVE_SOURCE = """
import gzip
import io
import tarfile

MODEL_BYTES = b'{"weights": [1, 2, 3]}'

def model_archive():
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as archive:
        member = tarfile.TarInfo("model.json")
        member.size = len(MODEL_BYTES)
        archive.addfile(member, io.BytesIO(MODEL_BYTES))
    zipped = io.BytesIO()
    with gzip.GzipFile(fileobj=zipped, mode="wb", mtime=0) as handle:
        handle.write(packed.getvalue())
    return zipped.getvalue()
"""
_archive: dict[str, Any] = {}
exec(ARCHIVE_SOURCE, _archive)
MODEL_BYTES: bytes = _archive["MODEL_BYTES"]
MODEL_ARCHIVE: bytes = _archive["model_archive"]()

TRAIN_SCRIPT = (
    ARCHIVE_SOURCE
    + """
def main(input_paths, output_paths, environ_vars, job_args):
    with open(output_paths["model"], "wb") as handle:
        handle.write(model_archive())
"""
)

# as real evaluation scripts do: the model is unpacked where it was mounted
EVALUATE_SCRIPT = """
import json
import os
import tarfile

def main(input_paths, output_paths, environ_vars, job_args):
    model_dir = input_paths["model_input"]
    with tarfile.open(os.path.join(model_dir, "model.tar.gz")) as archive:
        archive.extractall(path=model_dir)
    with open(os.path.join(model_dir, "model.json")) as handle:
        weights = json.load(handle)["weights"]
    test_file = os.path.join(input_paths["eval_data"], "test.csv")
    with open(test_file, "a") as handle:
        handle.write("scored\\n")
    with open(os.path.join(output_paths["metrics"], "metrics.json"), "w") as handle:
        json.dump({"weights": sum(weights)}, handle)
"""

REPORT_SCRIPT = """
import json
import os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(input_paths["metrics"], "metrics.json")) as handle:
        metrics = json.load(handle)
    with open(os.path.join(output_paths["report"], "report.txt"), "w") as handle:
        handle.write(str(metrics["weights"]))
"""

TEST_DATA = "id,label\n1,0\n2,1\n"


def _evaluation_pipeline(project: PipelineProject, step_extra: str = "") -> Path:
    project.contract("Train", entry_point="train.py", outputs={"model": {"path": "/opt/ml/model/model.tar.gz"}})
    project.contract(
        "Evaluate",
        entry_point="evaluate.py",
        inputs={
            "model_input": {"path": "/opt/ml/processing/input/model"},
            "eval_data": {"path": "/opt/ml/processing/input/eval_data"},
        },
        outputs={"metrics": {"path": "/opt/ml/processing/output/metrics"}},
    )
    project.contract(
        "Report",
        entry_point="report.py",
        inputs={"metrics": {"path": "/opt/ml/processing/input/metrics"}},
        outputs={"report": {"path": "/opt/ml/processing/output/report"}},
    )
    project.script("train.py", TRAIN_SCRIPT)
    project.script("evaluate.py", EVALUATE_SCRIPT)
    project.script("report.py", REPORT_SCRIPT)
    source = project.root / "test.csv"
    source.write_text(TEST_DATA)
    project.scenario(
        "evaluation",
        f"""
        contracts: [../contracts]
        scripts: [../scripts]
        data: {{held_out: {{file: ../test.csv}}}}
        steps:
          train: {{contract: Train}}
          evaluate:
            contract: Evaluate
            inputs: {{model_input: train.model, eval_data: held_out}}
            {step_extra}
          report: {{contract: Report, inputs: {{metrics: evaluate.metrics}}}}
        """,
    )
    return source


def _archives_outside(root: Path, excluded: Path) -> list[Path]:
    return [path for path in root.rglob("model.tar.gz") if excluded not in path.parents]


def test_a_script_unpacking_its_model_into_its_input_directory_passes_with_a_note(project: PipelineProject) -> None:
    source = _evaluation_pipeline(project)
    cache = project.root / "step-cache"
    result = project.run("--cursus-cache-dir", str(cache), "--cursus-json", "run.json")
    result.assert_outcomes(passed=5)  # three steps and the two edges between them
    evaluate_inputs = project.step_dir("evaluation", "evaluate") / "input"
    assert (evaluate_inputs / "model_input" / "model.json").read_bytes() == MODEL_BYTES
    assert (project.step_dir("evaluation", "report") / "output" / "report" / "report.txt").read_text() == "6"
    # the user's file and every other copy of the upstream's output are byte-identical
    assert source.read_text() == TEST_DATA
    archives = _archives_outside(project.root, evaluate_inputs)
    assert any(cache in path.parents for path in archives), "the upstream's output is in the step cache"
    for archive in archives:
        assert archive.read_bytes() == MODEL_ARCHIVE
        assert sorted(p.name for p in archive.parent.iterdir()) == ["model.tar.gz"], "nothing unpacked beside it"
    result.stdout.fnmatch_lines(
        [
            "*notes (what a SageMaker container would allow, or do differently):",
            "*evaluation::evaluate: step 'evaluate' wrote into its own copy of its inputs (added "
            "model_input/model.json; changed eval_data/test.csv under *)*inputs_read_only: true*",
        ]
    )
    report = json.loads((project.root / "run.json").read_text())
    notes = {step["step"]: step["notes"] for step in report["steps"]}
    assert notes["train"] == [] and notes["report"] == []
    assert len(notes["evaluate"]) == 1 and "model_input/model.json" in notes["evaluate"][0]


def test_inputs_read_only_on_the_step_keeps_the_strict_check(project: PipelineProject) -> None:
    source = _evaluation_pipeline(project, "inputs_read_only: true")
    result = project.run()
    result.assert_outcomes(passed=2, failed=1, skipped=2)
    result.stdout.fnmatch_lines(["*step 'evaluate' wrote into its input directory (added model_input/model.json*"])
    assert source.read_text() == TEST_DATA


@pytest.mark.parametrize(
    "how",
    [
        pytest.param(("--cursus-inputs-read-only",), id="option"),
        pytest.param(("-o", "cursus_inputs_read_only=true"), id="ini"),
    ],
)
def test_inputs_read_only_as_an_option(project: PipelineProject, how: tuple[str, ...]) -> None:
    _evaluation_pipeline(project)
    result = project.run(*how)
    result.assert_outcomes(passed=2, failed=1, skipped=2)
    result.stdout.fnmatch_lines(["*wrote into its input directory*Inputs are read-only*"])


def test_a_step_setting_false_wins_over_the_scenario_default(project: PipelineProject) -> None:
    _evaluation_pipeline(project, "inputs_read_only: false")
    scenario = project.root / "scenarios" / "evaluation.yaml"
    scenario.write_text(scenario.read_text().replace("steps:", "defaults: {inputs_read_only: true}\nsteps:", 1))
    assert project.run().ret == 0


def test_the_scenario_default_applies_to_its_steps(project: PipelineProject) -> None:
    _evaluation_pipeline(project)
    scenario = project.root / "scenarios" / "evaluation.yaml"
    scenario.write_text(scenario.read_text().replace("steps:", "defaults: {inputs_read_only: true}\nsteps:", 1))
    project.run().assert_outcomes(passed=2, failed=1, skipped=2)


def test_a_script_writing_to_its_source_data_fails_the_step(project: PipelineProject) -> None:
    """The step's copy protects the source from writes through input_paths; a write to the source
    itself (a path the script knows) is still found by the fingerprint."""
    project.contract("Vandal", entry_point="vandal.py", inputs={"data": {"path": "/opt/ml/processing/input/data"}})
    source = project.root / "data.csv"
    source.write_text("a\n1\n")
    project.script(
        "vandal.py",
        f"""
        def main(input_paths, output_paths, environ_vars, job_args):
            with open({str(source)!r}, "a") as handle:
                handle.write("2\\n")
        """,
    )
    project.scenario(
        "vandal",
        """
        contracts: [../contracts]
        scripts: [../scripts]
        data: {raw: {file: ../data.csv}}
        steps:
          only: {contract: Vandal, inputs: {data: raw}}
        """,
    )
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the data behind step 'only'*inputs changed while it ran (data at *data.csv*"])
