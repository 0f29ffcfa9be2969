"""Per-session state kept in ``config.stash``: the resolved options and the pipeline run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .options import CursusOptions

if TYPE_CHECKING:
    from .pipeline import PipelineRun

OPTIONS_KEY = pytest.StashKey[CursusOptions]()
PIPELINE_KEY = pytest.StashKey["PipelineRun"]()


def worker_id(config: pytest.Config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return workerinput.get("workerid") if workerinput else None


def pipeline_for(config: pytest.Config) -> PipelineRun:
    """The session's pipeline run, created when the first step needs it."""
    if PIPELINE_KEY not in config.stash:
        from .pipeline import PipelineRun

        config.stash[PIPELINE_KEY] = PipelineRun(workspace_root(config))
    return config.stash[PIPELINE_KEY]


def workspace_root(config: pytest.Config) -> Path:
    options = config.stash[OPTIONS_KEY]
    if options.workspace is not None:
        # each xdist worker gets its own tree: two workers may run the same upstream step
        worker = worker_id(config)
        return options.workspace / worker if worker else options.workspace
    # pytest's basetemp is per session (and per xdist worker) and keeps the last few runs
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        factory = pytest.TempPathFactory.from_config(config, _ispytest=True)
    return factory.getbasetemp() / "cursus"
