"""The core runs without the optional extras (s3, fuzz, html, xdist), and a feature whose extra is
missing says which one to install.

"Not installed" is simulated in a child pytest: an import hook refuses botocore, hypothesis,
pytest_html and xdist, and plugin autoloading is off, so their pytest plugins are not loaded either
(as when the distributions are absent). A separate virtual environment without them would be the
real thing, at the cost of installing numpy, pandas and pyarrow into it for every run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_project import PipelineProject

MISSING = ("botocore", "hypothesis", "pytest_html", "xdist")

LAUNCHER = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {missing!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
{body}
"""


def run_without_extras(body: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    code = LAUNCHER.format(missing=MISSING, body=body)
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def pytest_without_extras(project: PipelineProject, *args: str) -> subprocess.CompletedProcess[str]:
    body = "import pytest\nsys.exit(pytest.main(sys.argv[1:]))"
    plugin = ("-p", "pytest_cursus.plugin.hooks")
    return run_without_extras(body, *plugin, *project._args(args), cwd=project.root)


@pytest.fixture
def writer(project: PipelineProject) -> PipelineProject:
    project.contract("Writer", entry_point="writer.py", inputs={"data": {"path": "/opt/ml/processing/input/data"}})
    project.script(
        "writer.py",
        """
        import glob, os, pandas as pd
        def main(input_paths, output_paths, environ_vars, job_args):
            (first,) = sorted(glob.glob(os.path.join(input_paths["data"], "*.csv")))[:1]
            frame = pd.read_csv(first)
            frame.to_csv(os.path.join(output_paths["out"], "out.csv"), index=False)
        """,
    )
    return project


def scenario_with(project: PipelineProject, rows_source: str, step_extra: str = "") -> None:
    """One step reading `rows` (the given source) and writing a CSV; `step_extra` is added to the step."""
    project.scenario(
        "extras",
        f"""
        data:
          rows: {rows_source}
        steps:
          write: {{contract: Writer, inputs: {{data: rows}}{step_extra}}}
        """,
    )


SYNTHETIC = "{synthetic: {rows: 20, columns: {id: {type: int}, amount: {type: float}}}}"


def test_the_package_imports_without_any_extra(tmp_path: Path) -> None:
    body = (
        "import pytest_cursus.plugin.hooks, pytest_cursus.notebook.api, pytest_cursus.cli.main\n"
        "import pytest_cursus.run.pipeline, pytest_cursus.data.s3.access\n"
        "print('imported')"
    )

    result = run_without_extras(body, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_a_synthetic_scenario_runs_without_any_extra(writer: PipelineProject) -> None:
    scenario_with(writer, SYNTHETIC)

    result = pytest_without_extras(writer)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout


def test_s3_data_without_the_s3_extra_names_the_extra_to_install(writer: PipelineProject) -> None:
    scenario_with(writer, '{s3: {uri: "s3://bucket/rows/"}}')

    result = pytest_without_extras(writer, "--cursus-source", "s3", "--cursus-s3-endpoint", "http://127.0.0.1:9")

    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "needs botocore, which is not installed: pip install 'pytest-cursus[s3]'" in result.stdout
    assert "Traceback" not in result.stdout


def test_fuzzing_without_the_fuzz_extra_is_a_usage_error_naming_the_extra(writer: PipelineProject) -> None:
    scenario_with(writer, SYNTHETIC)

    result = pytest_without_extras(writer, "--cursus-fuzz", "5")

    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert (
        "--cursus-fuzz / cursus_fuzz needs hypothesis, which is not installed: pip install 'pytest-cursus[fuzz]'"
        in (result.stderr)
    )


def test_a_fuzz_block_without_the_fuzz_extra_fails_its_fuzz_item_naming_the_extra(writer: PipelineProject) -> None:
    scenario_with(writer, SYNTHETIC, ", fuzz: {examples: 5}")

    result = pytest_without_extras(writer, "-rf")

    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "fuzzing step 'write' needs hypothesis, which is not installed: pip install 'pytest-cursus[fuzz]'" in (
        result.stdout
    )
    assert "1 passed" in result.stdout  # the step itself still runs


def test_the_health_check_without_the_s3_extra_skips_s3_or_fails_when_s3_is_asked_for(tmp_path: Path) -> None:
    body = "from pytest_cursus.cli.main import main\nsys.exit(main(sys.argv[1:]))"

    plain = run_without_extras(body, "health-check", cwd=tmp_path)
    asked = run_without_extras(body, "health-check", "--s3-endpoint", "http://127.0.0.1:9", cwd=tmp_path)

    assert "skip  s3" in plain.stdout and "pip install 'pytest-cursus[s3]'" in plain.stdout
    assert asked.returncode == 1
    assert "fail  s3" in asked.stdout and "the S3 check needs botocore" in asked.stdout
