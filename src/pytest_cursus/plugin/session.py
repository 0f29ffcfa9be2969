"""All the plugin's state: one ``CursusSession`` per pytest session under one stash key (as
pytest-xdist keeps its controller's state in one ``DSession``), and the keys of what an item
carries in its own stash.

The engine's objects are built on first use, through the factory the notebook API uses too
(``run/factory.py``); importing this module imports no engine (every pytest start does).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest

from pytest_cursus.run.options import CursusOptions

if TYPE_CHECKING:
    from pytest_cursus.cache.store import OutputCache
    from pytest_cursus.data.s3.access import S3Access
    from pytest_cursus.data.s3.progress import ProgressStream
    from pytest_cursus.execution.launcher import StepLauncher
    from pytest_cursus.execution.step_progress import StepProgress
    from pytest_cursus.plan.scenario_plan import FileLookups, ScenarioPlan
    from pytest_cursus.reporting.run_report import BaselineCheck
    from pytest_cursus.results import StepResult
    from pytest_cursus.run.extension_hooks import ExtensionHooks
    from pytest_cursus.run.factory import EngineFactory
    from pytest_cursus.run.fuzzing import SavedExample
    from pytest_cursus.run.isolation import IsolationRun
    from pytest_cursus.run.pipeline import PipelineRun

# the module that defines our items: imported only once a scenario or contract is collected
ITEMS_MODULE = "pytest_cursus.plugin.items"


@dataclass(eq=False)
class CursusSession:
    """The resolved options, the run's id, what collection found, and the engine built lazily."""

    config: pytest.Config
    options: CursusOptions
    # one id for the whole run, the same on every xdist worker: results stored in the cache by
    # one worker are reused by the others even when they may not be reused across runs
    run_id: str
    extensions: ExtensionHooks | None = None  # the session's pytest_cursus_* hooks (at sessionstart)
    selected_steps: set[tuple[Path, str]] = field(default_factory=set)  # (scenario file, step) items
    scenario_names: dict[str, Path] = field(default_factory=dict)  # scenario name -> the file that has it
    scenario_plans: list[ScenarioPlan] | None = None  # the scenarios' plans, for contract items
    replays: dict[tuple[Path, str], SavedExample] | None = None  # --cursus-fuzz-replay examples
    started_launcher: StepLauncher | None = None
    held_workspace: Path | None = None  # --cursus-workspace, when this process took its lock for the session
    # the steps' progress lines and S3 transfers' status lines in the terminal (plugin/live_lines.py)
    progress: StepProgress | None = None
    progress_stream: ProgressStream | None = None
    _pipeline: PipelineRun | None = None
    _isolation: IsolationRun | None = None
    _file_lookups: FileLookups | None = None
    _workspace: Path | None = None

    def reuse_of(self, result: StepResult) -> Literal["cached", "shared"] | None:
        """How this session has a step's result without running it here: ``cached``, stored by an
        earlier run (its numbers are that run's); ``shared``, stored by this very run (another xdist
        worker or an identical step ran it, measured in this session all the same, also under
        --cursus-no-cache); None when it ran here."""
        if not result.cached:
            return None
        return "shared" if result.produced_by_run == self.run_id else "cached"

    @property
    def worker_id(self) -> str | None:
        workerinput = getattr(self.config, "workerinput", None)
        return workerinput.get("workerid") if workerinput else None

    @property
    def pipeline_started(self) -> PipelineRun | None:
        """The pipeline run, if a step has needed it (without building one)."""
        return self._pipeline

    def factory(self) -> EngineFactory:
        from pytest_cursus.run.factory import EngineFactory

        return EngineFactory(self.options, self.run_id, self.cache_subdir, progress=self.progress_stream)

    def pipeline(self) -> PipelineRun:
        """The session's pipeline run, created when the first step needs it."""
        if self._pipeline is None:
            from pytest_cursus.run.extension_hooks import ExtensionHooks

            self._pipeline = self.factory().pipeline(
                self.workspace_root(), self.extensions or ExtensionHooks(), self.launcher(), self.progress
            )
        return self._pipeline

    def isolation_run(self) -> IsolationRun:
        if self._isolation is None:
            from pytest_cursus.run.isolation import IsolationRun

            self._isolation = IsolationRun(self.workspace_root(), launcher=self.launcher())
        return self._isolation

    def launcher(self) -> StepLauncher:
        """How this process starts steps: forked from its own warm parent (one per xdist worker),
        or each in a fresh interpreter with --cursus-no-preload."""
        if self.started_launcher is None:
            self.started_launcher = self.factory().launcher(self.workspace_root() / "_warm")
        return self.started_launcher

    def close_launcher(self) -> None:
        """Ends the warm parent, if one was started (its steps have all been reaped by then)."""
        close = getattr(self.started_launcher, "close", None)
        if close is not None:
            close()

    def release_workspace(self) -> None:
        """Let the next session have the workspace this one held."""
        if self.held_workspace is not None:
            from pytest_cursus.execution.workspace import release_workspace

            release_workspace(self.held_workspace)
            self.held_workspace = None

    def step_cache(self) -> OutputCache:
        """The step cache as this session uses it (a new handle: the pipeline holds its own)."""
        return self.factory().step_cache()

    def s3_access(self) -> S3Access:
        return self.factory().s3_access()

    def file_lookups(self) -> FileLookups:
        """The contract directories and scripts, each looked up once for all the session's
        scenarios; the next session (the next pytest run) looks again."""
        if self._file_lookups is None:
            from pytest_cursus.plan.scenario_plan import FileLookups

            self._file_lookups = FileLookups()
        return self._file_lookups

    def forget_scenario(self, path: Path) -> None:
        """Watch mode reads a changed scenario again: its name is free for it, and contracts and scripts
        are looked up anew."""
        for name in [name for name, owner in self.scenario_names.items() if owner == path]:
            del self.scenario_names[name]
        self._file_lookups = None

    def step_cache_root(self) -> Path:
        return self.factory().step_cache_root()

    def cache_subdir(self, name: str) -> Path:
        """A directory of pytest's cache (``.pytest_cache/d/<name>``), even with the cache provider
        off (``-p no:cacheprovider`` disables the ``cache_dir`` ini key too: its default is used)."""
        if self.config.inipath is None:
            # no configuration file: pytest's rootdir depends on where pytest was started, which the
            # notebook API cannot know; both anchor the caches where project_dir() says
            from pytest_cursus.project_root import project_dir, pytest_cache_dir

            anchor = self.options.scenarios[0] if self.options.scenarios else self.config.rootpath
            path = pytest_cache_dir(project_dir(anchor, cwd=self.config.invocation_params.dir), name)
        elif (cache := getattr(self.config, "cache", None)) is not None:
            return cache.mkdir(name)
        else:
            path = self.config.rootpath / ".pytest_cache" / "d" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def workspace_root(self) -> Path:
        """The session's workspace, marked as the plugin's (``--cursus-workspace`` was checked at
        configure time: a directory the plugin did not create is refused). Claimed once a session."""
        if self._workspace is None:
            from pytest_cursus.execution.workspace import claim_workspace

            if self.options.workspace is not None:
                # each xdist worker gets its own tree: two workers may run the same upstream step
                worker = self.worker_id
                root = self.options.workspace / worker if worker else self.options.workspace
            else:
                # pytest's basetemp is per session (and per xdist worker) and keeps the last few runs
                factory = getattr(self.config, "_tmp_path_factory", None)
                if factory is None:
                    factory = pytest.TempPathFactory.from_config(self.config, _ispytest=True)
                root = factory.getbasetemp() / "cursus"
            self._workspace = claim_workspace(root)
        return self._workspace


SESSION_KEY = pytest.StashKey[CursusSession]()

# What an item carries in its own stash (annotated, not subscripted: the types stay unimported).
STEP_RESULT_KEY: pytest.StashKey[StepResult] = pytest.StashKey()  # the step's result, or an edge's upstream
CHECKED_OUTPUT_KEY: pytest.StashKey[Path] = pytest.StashKey()  # the data an edge item checks
SETUP_RESULTS_KEY: pytest.StashKey[list[StepResult]] = pytest.StashKey()  # upstream steps run as the setup
BASELINE_CHECK_KEY: pytest.StashKey[BaselineCheck] = pytest.StashKey()  # the step against --cursus-baseline
# a user_properties entry of a step item's reports (they cross to the xdist controller): "cached" or "shared"
CACHE_PROPERTY = "cursus_cache"


def cursus_session(config: pytest.Config) -> CursusSession:
    """The session's state; set in ``pytest_configure`` before anything can ask for it."""
    return config.stash[SESSION_KEY]


def cursus_session_if_any(config: pytest.Config) -> CursusSession | None:
    """None when ``pytest_configure`` did not get as far (a usage error) or the plugin is off."""
    return config.stash.get(SESSION_KEY, None)


def is_xdist_worker(config: pytest.Config) -> bool:
    return getattr(config, "workerinput", None) is not None


def scenarios_collected() -> bool:
    """Whether this process collected a scenario or contract: only then is the items module
    imported, so hooks that run for every test can tell without importing the engine."""
    return ITEMS_MODULE in sys.modules
