"""Builds the engine's objects (step cache, S3 access, step launcher, pipeline run) from the
options, in one way for every front-end: a pytest session (``plugin/session.py``) and a
notebook run (``notebook/api.py``) differ only in where pytest's cache is, the run's id and
where progress lines go, which they give to ``EngineFactory``.

Imports of the engine happen inside the methods: the pytest plugin imports this module only
once a scenario is collected, but keeping it light costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_cursus.project_root import KEPT_LOGS_DIR, S3_CACHE_DIR, STEP_CACHE_DIR
from pytest_cursus.run.options import CursusOptions

if TYPE_CHECKING:
    from pytest_cursus.cache.store import OutputCache
    from pytest_cursus.data.s3.access import S3Access
    from pytest_cursus.data.s3.progress import ProgressStream
    from pytest_cursus.execution.launcher import StepLauncher
    from pytest_cursus.execution.step_progress import StepProgress
    from pytest_cursus.run.extension_hooks import ExtensionHooks
    from pytest_cursus.run.pipeline import PipelineRun


@dataclass(frozen=True)
class EngineFactory:
    """The options of one run, and the three things a front-end decides for itself."""

    options: CursusOptions
    run_id: str  # entries stored under one run id are reused within the run even with --cursus-no-cache
    # a named directory of pytest's cache (``.pytest_cache/d/<name>``) for the project
    pytest_cache_dir: Callable[[str], Path]
    progress: ProgressStream | None = None  # where S3 transfers report progress (None: nowhere)

    def step_cache_root(self) -> Path:
        return self.options.cache_dir or self.pytest_cache_dir(STEP_CACHE_DIR)

    def step_cache(self) -> OutputCache:
        """A new handle on the step cache (a pipeline run holds its own)."""
        from pytest_cursus.cache.store import OutputCache

        return OutputCache(
            self.step_cache_root(),
            self.run_id,
            # a baseline comparison needs this run's numbers: a cached step has only an old run's
            reuse_earlier_runs=not (self.options.no_cache or self.options.baseline is not None),
            max_bytes=int(self.options.cache_max_mb * 2**20),
            no_reuse_reason="--cursus-no-cache" if self.options.no_cache else "--cursus-baseline",
        )

    def s3_access(self) -> S3Access:
        """S3 client settings: endpoint, download cache (none with --cursus-no-cache), pool size."""
        from pytest_cursus.data.s3.access import S3Access, S3Settings

        options = self.options
        cache_dir = None if options.no_cache else options.s3_cache_dir or self.pytest_cache_dir(S3_CACHE_DIR)
        return S3Access(
            S3Settings(
                endpoint_url=options.s3_endpoint,
                cache_dir=cache_dir,
                cache_max_bytes=int(options.s3_cache_max_mb * 2**20),
                concurrency=options.s3_concurrency,
                progress=self.progress,
            )
        )

    def kept_logs_root(self) -> Path:
        """Where failed steps' logs are copied (--cursus-keep-logs, else under pytest's cache)."""
        return self.options.keep_logs or self.pytest_cache_dir(KEPT_LOGS_DIR)

    def launcher(self, warm_workdir: Path) -> StepLauncher:
        """Steps forked from a warm, preloaded parent (its files under ``warm_workdir``), or each
        in a fresh interpreter with --cursus-no-preload."""
        if self.options.no_preload:
            from pytest_cursus.execution.launcher import FreshInterpreterLauncher

            return FreshInterpreterLauncher()
        return warm_launcher(warm_workdir, self.options.preload)

    def pipeline(
        self,
        workspace: Path,
        extensions: ExtensionHooks,
        launcher: StepLauncher,
        progress: StepProgress | None = None,
    ) -> PipelineRun:
        from pytest_cursus.execution.step_progress import SilentProgress
        from pytest_cursus.run.pipeline import PipelineRun

        return PipelineRun(
            workspace,
            cache=self.step_cache(),
            s3=self.s3_access(),
            extensions=extensions,
            launcher=launcher,
            edge_sample=self.options.edge_sample,
            progress=progress or SilentProgress(),
            keep_logs=self.kept_logs_root(),
        )


def warm_launcher(workdir: Path, preload: tuple[str, ...]) -> StepLauncher:
    """A warm parent that imports ``preload`` (and the scripts' own third-party imports) once,
    with the environment steps get."""
    from pytest_cursus.execution.step_runner import child_environment
    from pytest_cursus.execution.warm_executor import WarmForkLauncher

    return WarmForkLauncher(base_env=child_environment({}), workdir=workdir, preload=preload)
