"""Real scripts as their teams wrote them run unchanged, with what a SageMaker container does:
writable inputs (the step's own copies) and import-time pip installs that install nothing."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline_project import PipelineProject

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
import importlib.metadata
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
import importlib.metadata
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


# --- pip at import time ------------------------------------------------------------------------

MADE_UP_PIN = "cursus-made-up-package==1.7.3"


def _pip_step(project: PipelineProject, import_time: str, *, framework: dict[str, str] | None = None) -> Path:
    """One step whose script runs ``import_time`` when imported; returns the sentinel a real pip
    would leave: a fake ``pip`` first on PATH and a fake ``pip`` package first on sys.path write it."""
    sentinel = project.root / "pip-ran"
    fake_bin = project.root / "fake-bin"
    fake_bin.mkdir()
    for name in ("pip", "pip3"):
        program = fake_bin / name
        program.write_text(f'#!/bin/sh\necho "$@" >> {sentinel}\n')
        program.chmod(0o755)
    contract = project.contract("Installer", entry_point="installer.py")
    if framework:
        text = contract.read_text().replace("contract:\n", f"contract:\n  framework_requirements: {framework}\n")
        contract.write_text(text)
    project.script(
        "installer.py",
        f"""
        import os
        import subprocess
        import sys

        os.environ["PATH"] = {str(fake_bin)!r} + os.pathsep + os.environ["PATH"]
        {import_time}

        def main(input_paths, output_paths, environ_vars, job_args):
            with open(os.path.join(output_paths["out"], "done.txt"), "w") as handle:
                handle.write("ran")
        """,
    )
    project.scenario(
        "pipping",
        """
        contracts: [../contracts]
        scripts: [../scripts]
        steps:
          feature_selection: {contract: Installer}
        """,
    )
    return sentinel


EXECUTORS = [pytest.param((), id="warm"), pytest.param(("--cursus-no-preload",), id="fresh")]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_satisfied_pip_install_at_import_passes_silently_and_installs_nothing(
    project: PipelineProject, executor: tuple[str, ...]
) -> None:
    sentinel = _pip_step(
        project,
        'subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--upgrade", "-i", '
        '"https://pypi.example.com/simple", "--extra-index-url", "https://other.example.com", "pandas>=1.0"])\n'
        '        subprocess.check_call(["pip", "install", "pandas>=1.0"])',
    )
    result = project.run(*executor, "--cursus-json", "run.json")
    result.assert_outcomes(passed=1)
    assert not sentinel.exists(), "pip was not run"
    assert "notes" not in result.stdout.str()
    assert json.loads((project.root / "run.json").read_text())["steps"][0]["notes"] == []
    stderr = (project.step_dir("pipping", "feature_selection") / "logs" / "stderr.log").read_text()
    assert "intercepted, nothing installed" in stderr


@pytest.mark.parametrize("executor", EXECUTORS)
def test_an_unmet_pin_is_a_note_in_the_report_and_the_summary(
    project: PipelineProject, executor: tuple[str, ...]
) -> None:
    sentinel = _pip_step(
        project,
        f'subprocess.check_call([sys.executable, "-m", "pip", "install", "{MADE_UP_PIN}", "numpy<1"])',
    )
    result = project.run(*executor, "--cursus-json", "run.json")
    result.assert_outcomes(passed=1)
    assert not sentinel.exists()
    numpy_version = importlib.metadata.version("numpy")
    expected = [
        "feature_selection asked pip for cursus-made-up-package==1.7.3; cursus-made-up-package is not installed",
        f"feature_selection asked pip for numpy<1; {numpy_version} is installed",
    ]
    result.stdout.fnmatch_lines([f"*pipping::feature_selection: {note}" for note in expected])
    assert json.loads((project.root / "run.json").read_text())["steps"][0]["notes"] == expected


@pytest.mark.parametrize("executor", EXECUTORS)
def test_an_unmet_pin_fails_the_step_under_strict(project: PipelineProject, executor: tuple[str, ...]) -> None:
    _pip_step(project, f'subprocess.check_call([sys.executable, "-m", "pip", "install", "{MADE_UP_PIN}"])')
    result = project.run(*executor, "--cursus-pip", "strict")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*feature_selection asked pip for cursus-made-up-package==1.7.3; cursus-made-up-package is not installed*"]
    )


def test_strict_lets_a_satisfied_install_through(project: PipelineProject) -> None:
    _pip_step(project, 'subprocess.check_call([sys.executable, "-m", "pip", "install", "pandas>=1.0"])')
    project.run("--cursus-pip", "strict").assert_outcomes(passed=1)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_os_system_pip_install_is_intercepted(project: PipelineProject, executor: tuple[str, ...]) -> None:
    sentinel = _pip_step(
        project,
        f'assert os.system("PIP_DISABLE_PIP_VERSION_CHECK=1 pip install -q {MADE_UP_PIN} > /dev/null && '
        f'echo after > {project.root / "after"}") == 0',
    )
    result = project.run(*executor)
    result.assert_outcomes(passed=1)
    assert not sentinel.exists()
    assert (project.root / "after").read_text() == "after\n", "the rest of the shell command ran"
    result.stdout.fnmatch_lines(["*feature_selection asked pip for cursus-made-up-package==1.7.3;*not installed"])


@pytest.mark.parametrize("executor", EXECUTORS)
def test_pip_main_is_intercepted(project: PipelineProject, executor: tuple[str, ...]) -> None:
    requirements = project.root / "requirements.txt"
    requirements.write_text(f"--index-url https://pypi.example.com/simple\npandas>=1.0  # data\n{MADE_UP_PIN}\n")
    _pip_step(
        project,
        "import pip\n"
        f'        assert pip.main(["install", "-r", {str(requirements)!r}]) == 0\n'
        "        from pip._internal.cli.main import main as pip_main\n"
        '        assert pip_main(["install", "cursus-other-made-up>=2"]) == 0',
    )
    result = project.run(*executor)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*feature_selection asked pip for cursus-made-up-package==1.7.3; cursus-made-up-package is not installed",
            "*feature_selection asked pip for cursus-other-made-up>=2; cursus-other-made-up is not installed",
        ]
    )
    assert "pandas>=1.0" not in result.stdout.str()


def test_allow_lets_pip_run(project: PipelineProject) -> None:
    sentinel = _pip_step(project, f'subprocess.check_call(["pip", "install", "{MADE_UP_PIN}"])')
    project.run("--cursus-pip", "allow").assert_outcomes(passed=1)
    assert sentinel.read_text() == f"install {MADE_UP_PIN}\n", "the (fake) pip on PATH ran"


def test_pip_commands_other_than_install_run(project: PipelineProject) -> None:
    sentinel = _pip_step(project, 'subprocess.check_call(["pip", "list"])')
    project.run().assert_outcomes(passed=1)
    assert sentinel.read_text() == "list\n"


def test_framework_requirements_are_checked_before_the_step_runs(project: PipelineProject) -> None:
    _pip_step(project, "", framework={"cursus-made-up-package": "1.7.3", "pandas": ">=1.0"})
    result = project.run("--cursus-json", "run.json")
    result.assert_outcomes(passed=1)
    expected = (
        "feature_selection's contract requires cursus-made-up-package==1.7.3 (framework_requirements); "
        "cursus-made-up-package is not installed"
    )
    assert json.loads((project.root / "run.json").read_text())["steps"][0]["notes"] == [expected]
    strict = project.run("--cursus-pip", "strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines([f"*{expected}*"])
    assert not (project.step_dir("pipping", "feature_selection") / "logs" / "report.json").exists(), "never ran"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_the_contract_import_check_intercepts_pip(project: PipelineProject, executor: tuple[str, ...]) -> None:
    sentinel = _pip_step(project, f'subprocess.check_call([sys.executable, "-m", "pip", "install", "{MADE_UP_PIN}"])')
    args = ("--cursus-contracts", "contracts", "--cursus-scripts", "scripts", "-k", "Installer", *executor)
    result = project.run(*args)
    result.assert_outcomes(passed=1)
    assert not sentinel.exists()
    result.stdout.fnmatch_lines(["*CursusPipWarning: Installer asked pip for cursus-made-up-package==1.7.3;*"])
    strict = project.run(*args, "--cursus-pip", "strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*Installer asked pip for cursus-made-up-package==1.7.3*(--cursus-pip strict)*"])
