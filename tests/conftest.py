"""Shared fixtures: a real pipeline project (contracts, scripts, scenarios) in pytester's directory."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

import pytest_cursus.data.synthetic  # noqa: F401

# pytester's in-process runs drop the modules an inner run imported; numpy and pyarrow cannot
# be imported twice in one process, so they are imported here, before any inner run.
import pytest_cursus.plugin.scenario_items  # noqa: F401  (pulls in pandas, numpy, pyarrow)
import pytest_cursus.run.pipeline  # noqa: F401


class PipelineProject:
    """Writes contracts, scripts and scenarios the way a user's repository holds them."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.root = pytester.path
        for folder in ("contracts", "scripts", "scenarios"):
            (self.root / folder).mkdir(exist_ok=True)

    def contract(
        self,
        step_type: str,
        *,
        entry_point: str | None = None,
        inputs: dict[str, Any] | None = None,
        outputs: dict[str, Any] | None = None,
        required_env: list[str] | None = None,
        optional_env: dict[str, str] | None = None,
        job_arguments: list[str] | None = None,
    ) -> Path:
        contract = {
            "entry_point": entry_point or f"{_snake(step_type)}.py",
            "inputs": inputs or {},
            "outputs": outputs if outputs is not None else {"out": {"path": "/opt/ml/processing/output"}},
            "arguments": {},
            "job_arguments": [{"flag": f"--{name}", "source": name} for name in job_arguments or []],
            "env_vars": {"required": required_env or [], "optional": optional_env or {}},
        }
        path = self.root / "contracts" / f"{_snake(step_type)}.step.yaml"
        path.write_text(yaml.safe_dump({"step_type": step_type, "contract": contract}, sort_keys=False))
        return path

    def script(self, filename: str, source: str) -> Path:
        path = self.root / "scripts" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    def scenario(self, name: str, source: str) -> Path:
        path = self.root / "scenarios" / f"{name}.yaml"
        path.write_text(textwrap.dedent(source))
        return path

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    def step_dir(self, scenario: str, step: str) -> Path:
        return self.workspace / scenario / step

    def _args(self, args: tuple[str, ...]) -> list[str]:
        return [
            "--cursus-scenarios",
            "scenarios",
            "--cursus-workspace",
            str(self.workspace),
            "-p",
            "no:cacheprovider",
            *args,
        ]

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest(*self._args(args))

    def run_subprocess(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*self._args(args))


def _snake(name: str) -> str:
    out = ""
    for index, char in enumerate(name):
        if char.isupper() and index and not name[index - 1].isupper():
            out += "_"
        out += char.lower()
    return out


@pytest.fixture
def project(pytester: pytest.Pytester) -> PipelineProject:
    return PipelineProject(pytester)


WRITER_SCRIPT = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(output_paths["out"], "result.csv"), "w") as handle:
        handle.write("id,value\\n1,2\\n")
"""


@pytest.fixture
def one_step(project: PipelineProject) -> PipelineProject:
    """A scenario `single.yaml` with one step `only` running scripts/writer.py."""
    project.contract("Writer", entry_point="writer.py")
    project.script("writer.py", WRITER_SCRIPT)
    project.scenario(
        "single",
        """
        contracts: [../contracts]
        scripts: [../scripts]
        steps:
          only:
            contract: Writer
        """,
    )
    return project


# A real S3 endpoint (moto's server on 127.0.0.1, over HTTP) and network faults, for the S3 tests.
import pytest_cursus.data.profile_comparison  # noqa: E402,F401
import pytest_cursus.data.s3.access  # noqa: E402,F401
from s3_fixtures import fault_proxy, forbidden_endpoint, moto_endpoint, s3_bucket  # noqa: E402,F401
