"""Shared fixtures: a real pipeline project (contracts, scripts, scenarios) in pytester's directory."""

from __future__ import annotations

import pytest

import pytest_cursus.data.synthetic  # noqa: F401

# pytester's in-process runs drop the modules an inner run imported; numpy and pyarrow cannot
# be imported twice in one process, so they are imported here, before any inner run.
import pytest_cursus.plugin.scenario_items  # noqa: F401  (pulls in pandas, numpy, pyarrow)
import pytest_cursus.run.pipeline  # noqa: F401
from pipeline_project import PipelineProject


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
