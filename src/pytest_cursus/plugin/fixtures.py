"""Fixtures the plugin provides to ordinary test functions (docs/hooks.md#fixtures).

``cursus_run`` runs a scenario or one step from a test and returns the notebook API's result
object; ``cursus_s3_endpoint`` starts a local S3 server (moto) for tests of ``s3:`` sources.
Both import their machinery only when a test asks for them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_cursus.notebook.results import ScenarioRun, StepRun

# boto3 signs every request, so it needs credentials even for a local server; these are set
# for the session when none are configured (moto accepts any)
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class CursusRunner:
    """``cursus_run(path)`` runs a whole scenario, ``cursus_run(path, "train")`` one step (its
    upstream from the step cache or run first), with the session's ``--cursus-*`` options and
    the hooks of the conftest.py files that apply to the test; keyword options override the
    options, as in ``run_scenario``."""

    def __init__(self, request: pytest.FixtureRequest, workspace: Path) -> None:
        self._request = request
        self._workspace = workspace

    def __call__(self, path: str | os.PathLike[str], step: str | None = None, **options: Any) -> ScenarioRun | StepRun:
        import dataclasses

        from pytest_cursus.notebook.api import execute_scenario, execute_step, notebook_options
        from pytest_cursus.plugin.session import cursus_session_if_any
        from pytest_cursus.run.extension_hooks import ExtensionHooks
        from pytest_cursus.run.options import CursusOptions

        config = self._request.config
        state = cursus_session_if_any(config)
        if state is not None:
            base = dataclasses.replace(state.options, workspace=self._workspace, cache_dir=state.step_cache_root())
        else:  # -p no:cursus ... with the fixture requested all the same: the defaults
            base = dataclasses.replace(CursusOptions(), workspace=self._workspace)
        resolved = notebook_options("cursus_run", options, base)
        # the conftest.py files that apply to the test (pytest loads a directory's conftest only
        # when it collects there, and the scenario's may never be collected)
        test_hooks = self._request.node.ihook
        hooks = ExtensionHooks(lambda _scenario: test_hooks)
        scenario = Path(path)
        if not scenario.is_absolute():
            scenario = config.rootpath / scenario  # like a node id: relative to the rootdir
        if step is None:
            return execute_scenario("cursus_run", scenario, resolved, hooks)
        return execute_step("cursus_run", scenario, step, resolved, hooks)


@pytest.fixture
def cursus_run(request: pytest.FixtureRequest, tmp_path: Path) -> CursusRunner:
    """Run a scenario (``cursus_run("scenarios/x.yaml")``) or a step (``cursus_run(path, "train")``)
    from a test; paths are relative to the rootdir. Returns ``ScenarioRun`` / ``StepRun``."""
    return CursusRunner(request, tmp_path / "cursus")


@pytest.fixture(scope="session")
def cursus_s3_endpoint() -> Iterator[str]:
    """The URL of a local S3 server (moto) on 127.0.0.1, for the session; needs ``moto[server]``.

    Pass it as ``s3_endpoint=`` to ``cursus_run``, or to boto3 as ``endpoint_url`` to create
    buckets. When no AWS credentials are in the environment, dummy ones are set for the session.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(f"cursus_s3_endpoint needs moto's server ({exc}); install it with: pip install 'moto[server]'")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a log line per request otherwise
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("AWS_ACCESS_KEY_ID"):
            for name, value in DUMMY_CREDENTIALS.items():
                patch.setenv(name, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()
