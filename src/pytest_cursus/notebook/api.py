"""Run scenarios and steps from a notebook or a script, without pytest:

    from pytest_cursus import run_scenario
    result = run_scenario("scenarios/credit_risk.yaml")
    result                                                  # the DAG, a table of steps, failures
    result["evaluate"].outputs["eval_output"].read()        # a pandas DataFrame

The engine is the plugin's own (``PipelineRun``): each step runs in its own child process, the
workspace layout is ``<workspace>/<scenario>/<step>/{input,output,logs}``, and the step cache
is the one ``pytest`` uses for the same project (``<rootdir>/.pytest_cache/d/cursus-steps``), so
a step pytest ran is not run again here, and the other way round.

Keyword options are those of the command line without the ``--cursus-`` prefix (``source``,
``timeout``, ``no_cache``, ``s3_endpoint``, ...), taken from the same table (``options.OPTIONS``);
a misspelt or mistyped option is a ``TypeError`` naming it, a value out of range a ``ValueError``.
``plugins=`` takes objects or modules implementing the ``pytest_cursus_*`` hooks (or a pluggy
``PluginManager``), as a conftest.py would under pytest.

Caveats:
    * ini options (``cursus_*`` in pytest.ini / pyproject.toml) are not read: pass them as keywords.
    * Only the pipeline mode runs here: isolation and fuzz items are pytest features.
    * Without ``workspace=``, each call writes to a new directory under the system's temporary
      directory; the last ``KEPT_RUNS`` are kept (outputs of earlier runs may be gone).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_cursus.execution.workspace import (
    ForeignDirectory,
    WorkspaceInUse,
    claim_workspace,
    hold_workspace,
    release_workspace,
)
from pytest_cursus.formats.yaml_document import did_you_mean

# convert_value: the table's own conversion, so a value means the same here as on the command line
from pytest_cursus.run.options import OPTIONS, CursusOptions, OptionError, OptionSpec, convert_value

if TYPE_CHECKING:
    from pytest_cursus.execution.launcher import StepLauncher
    from pytest_cursus.notebook.progress import PrintedProgress
    from pytest_cursus.notebook.results import ScenarioRun, StepRun
    from pytest_cursus.plan.scenario_plan import ScenarioPlan, StepPlan
    from pytest_cursus.run.extension_hooks import ExtensionHooks
    from pytest_cursus.run.pipeline import PipelineRun

KEPT_RUNS = 5
# Options of a pytest run that mean nothing for one scenario run in a notebook, and why.
NOT_FOR_NOTEBOOK: Mapping[str, str] = {
    "scenarios": "give the scenario file as the first argument",
    "mode": "the notebook API runs steps in pipeline mode; isolation items are run by pytest --cursus-mode",
    "fuzz": "fuzz items are run by pytest --cursus-fuzz",
    "fuzz_seed": "fuzz items are run by pytest --cursus-fuzz-seed",
    "edge_sample": "edges are checked by the compat[...] items of pytest",
    "fuzz_replay": "fuzz items are run by pytest --cursus-fuzz-replay",
    "json": "the JSON report is written by pytest --cursus-json",
    "baseline": "baseline comparison is done by pytest --cursus-baseline or cursus-runtime compare",
    "baseline_strict": "baseline comparison is done by pytest --cursus-baseline",
    "watch": "watch mode keeps a pytest session running: use pytest --cursus-watch, or call run_step again",
    "shard": "sharding splits a pytest session's items across machines: run the scenario you want",
    "shard_durations": "sharding splits a pytest session's items across machines: run the scenario you want",
    "max_time_ratio": "baseline thresholds apply to pytest --cursus-baseline",
    "max_memory_ratio": "baseline thresholds apply to pytest --cursus-baseline",
    "min_time_increase": "baseline thresholds apply to pytest --cursus-baseline",
    "min_memory_increase_mb": "baseline thresholds apply to pytest --cursus-baseline",
    "progress_after": "the notebook prints every step's started and finished line, however long it ran",
    "debug": (
        "a notebook can call the script's main() itself to debug it; "
        "pytest --cursus-debug runs one step in pytest's process"
    ),
}
NOTEBOOK_OPTIONS: Mapping[str, OptionSpec] = {spec.name: spec for spec in OPTIONS if spec.name not in NOT_FOR_NOTEBOOK}
_EXPECTED = {
    "paths": "a path or a list of paths",
    "path": "a path (str or pathlib.Path)",
    "choice": "one of {choices}",
    "float": "a positive number",
    "int": "a whole number, 0 or more",
    "text": "a string",
    "flag": "True or False",
}


def run_scenario(path: str | os.PathLike[str], *, plugins: Any = None, **options: Any) -> ScenarioRun:
    """Run every step of the scenario file ``path`` in DAG order; return a ``ScenarioRun``.

    A step whose upstream step failed is not run (outcome ``skipped``). A failing step does
    not raise: look at ``result.passed``, ``result.failed`` or the rendered result. An invalid
    scenario raises ``ConfigErrors`` naming the file, line and field, as pytest shows it.
    """
    from pytest_cursus.run.extension_hooks import ExtensionHooks

    return execute_scenario(
        "run_scenario", path, notebook_options("run_scenario", options), ExtensionHooks.from_plugins(plugins)
    )


def run_step(
    path_or_scenario: str | os.PathLike[str] | ScenarioRun, step: str, *, plugins: Any = None, **options: Any
) -> StepRun:
    """Run one step of a scenario; return a ``StepRun``.

    ``path_or_scenario`` is a scenario file, or a ``ScenarioRun`` from ``run_scenario`` (its file
    is read again, with its options and plugins unless given here). The steps ``step`` needs
    upstream come from the step cache, or run first; they are in ``result.upstream``.
    """
    from pytest_cursus.notebook.results import ScenarioRun
    from pytest_cursus.run.extension_hooks import ExtensionHooks

    if isinstance(path_or_scenario, ScenarioRun):
        base, hooks = path_or_scenario.options, path_or_scenario.hooks
        path_or_scenario = path_or_scenario.path
    else:
        base, hooks = CursusOptions(), ExtensionHooks()
    if plugins is not None:
        hooks = ExtensionHooks.from_plugins(plugins)
    return execute_step("run_step", path_or_scenario, step, notebook_options("run_step", options, base), hooks)


def execute_scenario(caller: str, path: Any, options: CursusOptions, hooks: ExtensionHooks) -> ScenarioRun:
    """``run_scenario`` with options and hooks already resolved (the ``cursus_run`` fixture
    passes the pytest session's)."""
    from pytest_cursus.notebook.results import ScenarioRun, step_run
    from pytest_cursus.run.pipeline import UpstreamFailed

    run = _NotebookRun.start(caller, path, options, hooks)
    run.progress.numbers.total = len(run.plan.steps)
    steps = {}
    try:
        for step in run.plan.steps:
            try:
                result = run.pipeline.run_step(run.plan, step)
            except UpstreamFailed as exc:
                steps[step] = step_run(run.plan, step, None, skip_reason=f"upstream step {exc.upstream.step!r} failed")
            else:
                steps[step] = step_run(run.plan, step, result, step_plan=run.as_run(step))
    finally:
        run.finish()
    return ScenarioRun(run.plan, steps, run.workspace, options, hooks)


def execute_step(caller: str, path: Any, step: str, options: CursusOptions, hooks: ExtensionHooks) -> StepRun:
    from pytest_cursus.notebook.results import step_run
    from pytest_cursus.run.pipeline import UpstreamFailed

    if not isinstance(step, str):
        raise TypeError(
            f"{caller}(): expected step to be a step name (str), but got step={step!r} (type={type(step).__name__})"
        )
    run = _NotebookRun.start(caller, path, options, hooks)
    try:
        if step not in run.plan.steps:
            raise KeyError(
                f"scenario {run.plan.name!r} ({run.plan.path}) has no step {step!r}"
                f"{did_you_mean(step, run.plan.steps)}; "
                f"its steps are: {', '.join(run.plan.steps)}"
            )
        run.progress.numbers.total = len(run.plan.required_before(step)) + 1
        try:
            result = run.pipeline.run_step(run.plan, step)
        except UpstreamFailed as exc:
            outcome = step_run(run.plan, step, None, skip_reason=f"upstream step {exc.upstream.step!r} failed")
        else:
            outcome = step_run(run.plan, step, result, step_plan=run.as_run(step))
        for upstream in run.plan.required_before(step):
            produced = run.pipeline.result(run.plan, upstream)
            if produced is not None:
                outcome.upstream[upstream] = step_run(
                    run.plan, upstream, produced, as_setup=True, step_plan=run.as_run(upstream)
                )
    finally:
        run.finish()
    return outcome


class _NotebookRun:
    """A loaded plan and the PipelineRun to run it with, set up as the plugin sets up a session."""

    def __init__(
        self,
        plan: ScenarioPlan,
        pipeline: PipelineRun,
        workspace: Path,
        progress: PrintedProgress,
        *,
        held: bool = False,
    ) -> None:
        self.plan = plan
        self.pipeline = pipeline
        self.workspace = workspace
        self.progress = progress
        self.held = held  # whether this call took the workspace's lock (and lets go of it when done)

    @classmethod
    def start(cls, caller: str, path: Any, options: CursusOptions, hooks: ExtensionHooks) -> _NotebookRun:
        from pytest_cursus.notebook.progress import PrintedProgress
        from pytest_cursus.plan.scenario_plan import load_scenario
        from pytest_cursus.project_root import project_dir, pytest_cache_dir
        from pytest_cursus.run.factory import EngineFactory

        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"{caller}(): expected a scenario file (str or pathlib.Path), "
                f"but got {path!r} (type={type(path).__name__})"
            )
        scenario = Path(path).resolve()
        if not scenario.is_file():
            raise FileNotFoundError(f"{caller}(): scenario file {scenario} does not exist")
        plan = load_scenario(scenario, options.plan_options())
        rootdir = project_dir(scenario)  # where pytest keeps the project's step cache too
        factory = EngineFactory(options, uuid.uuid4().hex, lambda name: pytest_cache_dir(rootdir, name))
        try:  # a directory the plugin did not create is refused: step directories in it are deleted
            workspace = claim_workspace(options.workspace or _fresh_workspace())
        except ForeignDirectory as exc:
            raise ValueError(f"{caller}(): workspace={options.workspace}: {exc}") from None
        try:  # for this call: a pytest session or another kernel may use the workspace between calls
            held = hold_workspace(workspace)
        except WorkspaceInUse as exc:
            raise RuntimeError(f"{caller}(): workspace={options.workspace}: {exc}") from None
        # a fresh interpreter per step, or the kernel's own warm parent (kept between calls)
        launcher = factory.launcher(Path()) if options.no_preload else _warm_launcher(options.preload)
        progress = PrintedProgress()
        return cls(plan, factory.pipeline(workspace, hooks, launcher, progress), workspace, progress, held=held)

    def as_run(self, step: str) -> StepPlan:
        """The step with the env and job args it ran with (as declared if adjusting it failed)."""
        from pytest_cursus.run.extension_hooks import HookFailed

        try:
            return self.pipeline.step_plan(self.plan, step)
        except HookFailed:
            return self.plan.steps[step]

    def finish(self) -> None:
        if self.held:
            release_workspace(self.workspace)
        if self.pipeline.cache is not None:
            self.pipeline.cache.evict()
        self.pipeline.s3.evict_cache()


_WARM_LAUNCHERS: dict[tuple[str, ...], StepLauncher] = {}


def _warm_launcher(preload: tuple[str, ...]) -> StepLauncher:
    """One warm parent per notebook kernel (per ``preload=``), kept between calls: the second
    ``run_scenario`` finds pandas & co. already imported. Ended when the kernel exits."""
    if preload not in _WARM_LAUNCHERS:
        import atexit

        from pytest_cursus.run.factory import warm_launcher

        launcher = warm_launcher(Path(tempfile.mkdtemp(prefix="cursus-warm-")), preload)
        atexit.register(launcher.close)
        _WARM_LAUNCHERS[preload] = launcher
    return _WARM_LAUNCHERS[preload]


def notebook_options(caller: str, given: dict[str, Any], base: CursusOptions | None = None) -> CursusOptions:
    """``base`` (default: the defaults) with the keyword arguments ``given``, each checked
    against the option table."""
    values: dict[str, Any] = {}
    for name, value in given.items():
        spec = NOTEBOOK_OPTIONS.get(name)
        if spec is None:
            if name in NOT_FOR_NOTEBOOK:
                raise TypeError(f"{caller}() does not take {name}=: {NOT_FOR_NOTEBOOK[name]}")
            raise TypeError(
                f"{caller}() got an unexpected keyword argument {name!r}{did_you_mean(name, NOTEBOOK_OPTIONS)}; "
                f"options are: {', '.join(sorted(NOTEBOOK_OPTIONS))}, plugins"
            )
        values[name] = _option_value(caller, spec, value)
    return dataclasses.replace(base or CursusOptions(), **values)


def _option_value(caller: str, spec: OptionSpec, value: Any) -> Any:
    if value is None:
        return () if spec.kind == "paths" else spec.default
    expected = _EXPECTED[spec.kind].format(choices=", ".join(spec.choices))
    problem = (
        f"{caller}(): expected {spec.name} to be {expected}, "
        f"but got {spec.name}={value!r} (type={type(value).__name__})"
    )
    if spec.kind == "flag":
        if not isinstance(value, bool):
            raise TypeError(problem)
        return value
    if spec.kind in ("paths", "path"):
        items = list(value) if spec.kind == "paths" and isinstance(value, (list, tuple)) else [value]
        if not items or not all(isinstance(item, (str, os.PathLike)) for item in items):
            raise TypeError(problem)
        converted = [os.fspath(item) for item in items]
        value = converted if spec.kind == "paths" else converted[0]
    elif spec.kind in ("float", "int"):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (spec.kind == "int" and not isinstance(value, int))
        ):
            raise TypeError(problem)
    elif not isinstance(value, (str, int) if spec.kind == "text" else str):  # text, choice
        raise TypeError(problem)
    try:
        return convert_value(spec, value, Path.cwd())
    except OptionError as exc:
        # the table's message names the flag: say it with the keyword instead
        reason = str(exc).split(": ", 1)[-1]
        raise ValueError(f"{caller}(): {spec.name}={value!r}: {reason}") from None


def _fresh_workspace() -> Path:
    """A new directory under ``<tmp>/cursus-notebook-<user>``; older runs beyond KEPT_RUNS are removed."""
    base = Path(tempfile.gettempdir()) / f"cursus-notebook-{_user()}"
    base.mkdir(parents=True, exist_ok=True)
    runs = sorted((p for p in base.iterdir() if p.is_dir() and p.name.startswith("run-")), key=_mtime)
    for old in runs[: max(0, len(runs) - (KEPT_RUNS - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=base))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return "user"
