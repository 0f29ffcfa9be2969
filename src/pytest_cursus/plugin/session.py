"""Per-session state kept in ``config.stash``: the resolved options and the pipeline run."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_cursus.project_root import S3_CACHE_DIR, STEP_CACHE_DIR
from pytest_cursus.run.options import CursusOptions

if TYPE_CHECKING:
    from pytest_cursus.cache.store import OutputCache
    from pytest_cursus.data.s3.access import S3Access
    from pytest_cursus.execution.launcher import StepLauncher
    from pytest_cursus.plan.scenario_plan import FileLookups
    from pytest_cursus.run.extension_hooks import ExtensionHooks
    from pytest_cursus.run.pipeline import PipelineRun

OPTIONS_KEY = pytest.StashKey[CursusOptions]()
PIPELINE_KEY = pytest.StashKey["PipelineRun"]()
LAUNCHER_KEY = pytest.StashKey["StepLauncher"]()
RUN_ID_KEY = pytest.StashKey[str]()
SELECTED_STEPS_KEY = pytest.StashKey[set[tuple[Path, str]]]()
EXTENSIONS_KEY: pytest.StashKey[ExtensionHooks] = pytest.StashKey()  # the session's pytest_cursus_* hooks
FILE_LOOKUPS_KEY: pytest.StashKey[FileLookups] = pytest.StashKey()
# the notebook API and cursus-runtime find the same directories (project_root.py)
CACHE_DIR_NAME = STEP_CACHE_DIR
S3_CACHE_DIR_NAME = S3_CACHE_DIR


def worker_id(config: pytest.Config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return workerinput.get("workerid") if workerinput else None


def is_xdist_worker(config: pytest.Config) -> bool:
    return worker_id(config) is not None


def scenarios_collected() -> bool:
    """Whether this process collected a scenario or contract: only then is ``items`` imported,
    so hooks that run for every test can tell without importing the engine."""
    return "pytest_cursus.plugin.scenario_items" in sys.modules


def pipeline_for(config: pytest.Config) -> PipelineRun:
    """The session's pipeline run, created when the first step needs it."""
    if PIPELINE_KEY not in config.stash:
        from pytest_cursus.run.extension_hooks import ExtensionHooks
        from pytest_cursus.run.pipeline import PipelineRun

        extensions = config.stash.get(EXTENSIONS_KEY, None) or ExtensionHooks()
        config.stash[PIPELINE_KEY] = PipelineRun(
            workspace_root(config),
            cache=step_cache(config),
            s3=s3_access(config),
            extensions=extensions,
            launcher=step_launcher(config),
        )
    return config.stash[PIPELINE_KEY]


def step_cache(config: pytest.Config) -> OutputCache:
    """The step cache as this session uses it (a new handle: the pipeline holds its own)."""
    from pytest_cursus.cache.store import OutputCache

    options = config.stash[OPTIONS_KEY]
    return OutputCache(
        cache_root(config),
        config.stash[RUN_ID_KEY],
        reuse_earlier_runs=not options.no_cache,
        max_bytes=int(options.cache_max_mb * 2**20),
    )


def step_launcher(config: pytest.Config) -> StepLauncher:
    """How this process starts steps: forked from its own warm parent (one per xdist worker),
    or each in a fresh interpreter with --cursus-no-preload."""
    if LAUNCHER_KEY not in config.stash:
        options = config.stash[OPTIONS_KEY]
        launcher: StepLauncher
        if options.no_preload:
            from pytest_cursus.execution.launcher import FreshInterpreterLauncher

            launcher = FreshInterpreterLauncher()
        else:
            from pytest_cursus.execution.step_runner import child_environment
            from pytest_cursus.execution.warm_executor import WarmForkLauncher

            launcher = WarmForkLauncher(
                base_env=child_environment({}), workdir=workspace_root(config) / "_warm", preload=options.preload
            )
        config.stash[LAUNCHER_KEY] = launcher
    return config.stash[LAUNCHER_KEY]


def close_step_launcher(config: pytest.Config) -> None:
    """Ends the warm parent, if one was started (its steps have all been reaped by then)."""
    launcher = config.stash.get(LAUNCHER_KEY, None)
    close = getattr(launcher, "close", None)
    if close is not None:
        close()


def file_lookups(config: pytest.Config) -> FileLookups:
    """The session's contract directories and scripts, each looked up once for all its
    scenarios; the next session (the next pytest run) looks again."""
    if FILE_LOOKUPS_KEY not in config.stash:
        from pytest_cursus.plan.scenario_plan import FileLookups

        config.stash[FILE_LOOKUPS_KEY] = FileLookups()
    return config.stash[FILE_LOOKUPS_KEY]


def cache_root(config: pytest.Config) -> Path:
    options = config.stash[OPTIONS_KEY]
    if options.cache_dir is not None:
        return options.cache_dir
    cache = getattr(config, "cache", None)
    if cache is not None:
        return cache.mkdir(CACHE_DIR_NAME)
    # pytest's cache provider is disabled (-p no:cacheprovider), and with it the `cache_dir`
    # ini key: use the place it would have used by default
    return config.rootpath / ".pytest_cache" / "d" / CACHE_DIR_NAME


def cache_subdir(config: pytest.Config, name: str) -> Path:
    """A directory of pytest's cache (``.pytest_cache/d/<name>``), even with the cache provider off."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        return cache.mkdir(name)
    path = config.rootpath / ".pytest_cache" / "d" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def s3_access(config: pytest.Config) -> S3Access:
    """The run's S3 client settings: endpoint, download cache (off with --cursus-no-cache),
    pool size, and progress lines written past pytest's output capture."""
    from pytest_cursus.data.s3.access import S3Access, S3Settings

    options = config.stash[OPTIONS_KEY]
    cache_dir = None if options.no_cache else options.s3_cache_dir or cache_subdir(config, S3_CACHE_DIR_NAME)
    return S3Access(
        S3Settings(
            endpoint_url=options.s3_endpoint,
            cache_dir=cache_dir,
            cache_max_bytes=int(options.s3_cache_max_mb * 2**20),
            concurrency=options.s3_concurrency,
            progress=TerminalStream(config),
        )
    )


class TerminalStream:
    """A text stream to the terminal that bypasses pytest's capturing (for progress lines)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def write(self, text: str) -> int:
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            sys.stderr.write(text)
            sys.stderr.flush()
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return sys.__stderr__ is not None and sys.__stderr__.isatty()


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
