"""Issue 14's closing suite: four scripts written the awkward ways real teams write them, each run as a
scenario step through the plugin (a) and checked as a contract item by `--cursus-contracts` (b).

What a SageMaker container would do is the yardstick: the step passes where the container would
run the script, and the contract check says what a team needs to see before the pipeline runs.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import textwrap

import pytest

from pipeline_project import PipelineProject


def check_contracts(project: PipelineProject, scripts: str = "scripts") -> pytest.RunResult:
    return project.pytester.runpytest(
        "--cursus-contracts",
        "contracts",
        "--cursus-scripts",
        scripts,
        "--cursus-workspace",
        str(project.workspace),
        "-p",
        "no:cacheprovider",
    )


# --- 1. a model unpacked into its own input directory ------------------------------------------

MODEL_JSON = b'{"weights": [1, 2, 3]}'

UNPACKING_SCRIPT = """
import json
import os
import tarfile

def main(input_paths, output_paths, environ_vars, job_args):
    model_dir = input_paths["model_input"]
    with tarfile.open(os.path.join(model_dir, "model.tar.gz")) as archive:
        archive.extractall(path=model_dir)
    with open(os.path.join(model_dir, "model.json")) as handle:
        weights = json.load(handle)["weights"]
    with open(os.path.join(output_paths["metrics"], "metrics.json"), "w") as handle:
        json.dump({"weights": sum(weights)}, handle)
"""


def _model_archive() -> bytes:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as archive:
        member = tarfile.TarInfo("model.json")
        member.size = len(MODEL_JSON)
        archive.addfile(member, io.BytesIO(MODEL_JSON))
    return gzip.compress(packed.getvalue(), mtime=0)


@pytest.fixture
def unpacking(project: PipelineProject) -> PipelineProject:
    project.contract(
        "Evaluate",
        entry_point="evaluate.py",
        inputs={"model_input": {"path": "/opt/ml/processing/input/model"}},
        outputs={"metrics": {"path": "/opt/ml/processing/output/metrics"}},
    )
    project.script("evaluate.py", UNPACKING_SCRIPT)
    (project.root / "model").mkdir()
    (project.root / "model" / "model.tar.gz").write_bytes(_model_archive())
    project.scenario(
        "evaluation",
        """
        data: {trained: {local: ../model}}
        steps:
          evaluate: {contract: Evaluate, inputs: {model_input: trained}}
        """,
    )
    return project


def test_unpacking_a_tarball_into_an_input_passes_with_a_note_and_leaves_the_source_alone(
    unpacking: PipelineProject,
) -> None:
    result = unpacking.run()
    result.assert_outcomes(passed=1)
    metrics = unpacking.step_dir("evaluation", "evaluate") / "output" / "metrics" / "metrics.json"
    assert json.loads(metrics.read_text()) == {"weights": 6}
    assert sorted(path.name for path in (unpacking.root / "model").iterdir()) == ["model.tar.gz"]
    result.stdout.fnmatch_lines(
        ["*evaluation::evaluate: step 'evaluate' wrote into its own copy of its inputs (added model_input/model.json*"]
    )


def test_unpacking_a_tarball_into_an_input_is_no_contract_finding(unpacking: PipelineProject) -> None:
    check_contracts(unpacking).assert_outcomes(passed=1)


# --- 2. pip at import time: satisfied, unpinned, and unmet ---------------------------------------

UNMET_PIN = "cursus-made-up-package==1.0"

PIP_SCRIPT = f"""
import os
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "packaging>=20", "pyyaml"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "{UNMET_PIN}"])

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(output_paths["out"], "done.txt"), "w") as handle:
        handle.write("ran")
"""

UNMET_NOTE = "asked pip for cursus-made-up-package==1.0; cursus-made-up-package is not installed"


@pytest.fixture
def pipping(project: PipelineProject) -> PipelineProject:
    project.contract("FeatureSelection", entry_point="feature_selection.py")
    project.script("feature_selection.py", PIP_SCRIPT)
    project.scenario("pipping", "steps:\n  feature_selection: {contract: FeatureSelection}\n")
    return project


def test_pip_at_import_installs_nothing_and_notes_only_the_unmet_pin(pipping: PipelineProject) -> None:
    result = pipping.run("--cursus-json", "run.json")
    result.assert_outcomes(passed=1)
    notes = json.loads((pipping.root / "run.json").read_text())["steps"][0]["notes"]
    assert notes == [f"feature_selection {UNMET_NOTE}"]
    result.stdout.fnmatch_lines([f"*pipping::feature_selection: feature_selection {UNMET_NOTE}"])
    stderr = (pipping.step_dir("pipping", "feature_selection") / "logs" / "stderr.log").read_text()
    assert "intercepted, nothing installed" in stderr


def test_pip_at_import_in_the_contract_check_warns_of_only_the_unmet_pin(pipping: PipelineProject) -> None:
    result = check_contracts(pipping)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([f"*CursusPipWarning: FeatureSelection {UNMET_NOTE}"])
    assert "packaging" not in result.stdout.str() and "pyyaml" not in result.stdout.str()


# --- 3. a script inside a package, reaching up with `from ...x import` ----------------------------

PACKAGE = {
    "acme/__init__.py": "",
    "acme/encoding.py": "def encode(value):\n    return value.upper()\n",
    "acme/pipelines/__init__.py": "",
    "acme/pipelines/credit/__init__.py": "",
    "acme/pipelines/credit/build.py": """
        import os

        from ...encoding import encode

        def main(input_paths, output_paths, environ_vars, job_args):
            with open(os.path.join(output_paths["out"], "result.txt"), "w") as handle:
                handle.write(encode("built"))
    """,
}


@pytest.fixture
def packaged(project: PipelineProject) -> PipelineProject:
    for name, text in PACKAGE.items():
        path = project.root / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    project.contract("CreditBuild", entry_point="build.py")
    project.scenario("credit", "scripts: [../src/acme/pipelines/credit]\nsteps:\n  build: {contract: CreditBuild}\n")
    return project


def test_a_package_script_with_a_relative_import_runs_from_its_path_alone(packaged: PipelineProject) -> None:
    packaged.run().assert_outcomes(passed=1)
    assert (packaged.step_dir("credit", "build") / "output" / "out" / "result.txt").read_text() == "BUILT"


def test_a_package_script_with_a_relative_import_passes_the_contract_check(packaged: PipelineProject) -> None:
    check_contracts(packaged, "src/acme/pipelines/credit").assert_outcomes(passed=1)


# --- 4. a __main__ block whose keys differ from the contract's ----------------------------------

MAIN_STYLE_SCRIPT = """
import json
import os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(input_paths["ruleset_file"]) as handle:
        rules = json.load(handle)
    with open(os.path.join(output_paths["output_dir"], "payload.csv"), "w") as handle:
        handle.write("field,limit\\n" + "".join(f"{field},{limit}\\n" for field, limit in sorted(rules.items())))

if __name__ == "__main__":
    main(
        {"ruleset_file": "/opt/ml/processing/input/ruleset/validated.json"},
        {"output_dir": "/opt/ml/processing/output/payload"},
        dict(os.environ),
        None,
    )
"""


@pytest.fixture
def main_style(project: PipelineProject) -> PipelineProject:
    project.contract(
        "PayloadSample",
        entry_point="sample.py",
        inputs={"ruleset": {"path": "/opt/ml/processing/input/ruleset"}},
        outputs={"payload_sample": {"path": "/opt/ml/processing/output/payload"}},
    )
    project.script("sample.py", MAIN_STYLE_SCRIPT)
    (project.root / "rules").mkdir()
    (project.root / "rules" / "validated.json").write_text('{"amount": 5000, "age": 120}')
    return project


def test_a_main_style_script_runs_once_the_scenario_renames_its_channels(main_style: PipelineProject) -> None:
    main_style.scenario(
        "payload",
        """
        data: {rules: {local: ../rules}}
        steps:
          sample:
            contract: PayloadSample
            inputs: {ruleset: {from: rules, file: validated.json, as: ruleset_file}}
            outputs: {payload_sample: {as: output_dir}}
        """,
    )
    main_style.run().assert_outcomes(passed=1)
    written = main_style.step_dir("payload", "sample") / "output" / "payload_sample" / "payload.csv"
    assert written.read_text() == "field,limit\nage,120\namount,5000\n"


def _main_style_findings(project: PipelineProject) -> list[str]:
    result = check_contracts(project)
    result.assert_outcomes(failed=1)
    lines = result.outlines
    start = lines.index(
        "contract PayloadSample (contracts/payload_sample.step.yaml) and its script scripts/sample.py "
        "(found in --cursus-scripts) disagree:"
    )
    return [line for line in lines[start + 1 :] if line.startswith("  - ")]


def test_the_contract_check_reports_the_keys_main_reads_that_the_contract_does_not_declare(
    main_style: PipelineProject,
) -> None:
    """As docs/scenarios.md says: the check reads the script's keys against the contract, not the scenario."""
    findings = _main_style_findings(main_style)
    assert (
        "  - scripts/sample.py:6: input_paths['ruleset_file'] reads input 'ruleset_file', which contract "
        "PayloadSample does not declare (declared: ruleset)"
    ) in findings
    assert (
        "  - scripts/sample.py:8: output_paths['output_dir'] writes output 'output_dir', which contract "
        "PayloadSample does not declare (declared: payload_sample)"
    ) in findings


def test_the_contract_check_matches_the_main_blocks_paths_to_the_channels_they_are(
    main_style: PipelineProject,
) -> None:
    """The __main__ block passes the contract's own paths (a file inside input 'ruleset', and output
    'payload_sample''s directory) under other keys: `python sample.py` is right in the container, so the check
    names the key and the scenario mapping in a note, and claims no channel unread or key to drop."""
    findings = _main_style_findings(main_style)
    assert not [line for line in findings if "never" in line or "drop it from the __main__ block" in line]
    assert (
        "  - scripts/sample.py:13: note: the __main__ block passes channel 'ruleset' (/opt/ml/processing/input/"
        "ruleset) as input_paths['ruleset_file'] (the file validated.json in it): main() reads it under that key; "
        "a scenario step maps it with inputs: {ruleset: {from: ..., as: ruleset_file, file: validated.json}} "
        "(docs/scenarios.md)"
    ) in findings
    assert (
        "  - scripts/sample.py:14: note: the __main__ block passes channel 'payload_sample' (/opt/ml/processing/"
        "output/payload) as output_paths['output_dir']: main() looks it up under that key; a scenario step maps "
        "it with outputs: {payload_sample: {as: output_dir}} (docs/scenarios.md)"
    ) in findings
