"""How the engine calls the ``pytest_cursus_*`` hooks (``run/hookspecs.py``), with or without pytest.

``PipelineRun`` talks to an :class:`ExtensionHooks`: under pytest it is built on the session's
path-aware hook proxies, so a ``conftest.py`` applies to the scenarios below it; in the notebook
API it is built on a pluggy ``PluginManager`` holding the plugins the caller passed. Without
any plugin, every call is a no-op that leaves the step as it was.

An exception raised by an implementation becomes a :class:`HookFailed` carrying the
implementation's traceback (not ours nor pluggy's), which the pipeline turns into a failed step.
"""

from __future__ import annotations

import dataclasses
import inspect
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, final

import pluggy

from pytest_cursus.errors import CursusError
from pytest_cursus.run import hookspecs

if TYPE_CHECKING:
    from pytest_cursus.plan.scenario_plan import StepPlan
    from pytest_cursus.results import StepResult

HOOK_PREFIX: Final = "pytest_cursus_"
HOOK_NAMES: Final = tuple(name for name in dir(hookspecs) if name.startswith(HOOK_PREFIX))
# frames of these packages are the machinery between the engine and the user's hook
_MACHINERY = (str(Path(pluggy.__file__).parent), str(Path(__file__).parent))


class HookFailed(CursusError):
    """A hook implementation raised: the step it was called for fails with this message."""

    def __init__(self, hook: str, error: BaseException, implementation_traceback: str) -> None:
        self.hook = hook
        self.traceback = implementation_traceback
        super().__init__(f"{hook} raised {type(error).__name__}: {error}")


@final
class ExtensionHooks:
    """The engine's calls into user extensions, for the plugins that apply to a scenario file."""

    __slots__ = ("_relay_for",)

    def __init__(self, relay_for: Callable[[Path], Any] | None = None) -> None:
        # relay_for(scenario_path) -> an object with one attribute per hook (pluggy's HookRelay,
        # or pytest's path-aware proxy); None: no extensions at all
        self._relay_for = relay_for

    @classmethod
    def from_plugins(cls, plugins: object | Iterable[object] | pluggy.PluginManager | None) -> ExtensionHooks:
        """Hooks of ``plugins``: a plugin object or module, a list of them, or a PluginManager."""
        if plugins is None:
            return cls()
        if isinstance(plugins, ExtensionHooks):
            return plugins
        manager = plugins if isinstance(plugins, pluggy.PluginManager) else plugin_manager(plugins)
        add_hookspecs(manager)
        return cls(lambda _path: manager.hook)

    # --- the hooks, as the engine calls them -----------------------------------------------------

    def data_source(
        self, scenario_path: Path, kind: str, name: str, spec: dict[str, Any], target_dir: Path
    ) -> Path | None:
        """The path of a custom source's data, or None when no plugin provides ``kind``."""
        found = self._call(
            scenario_path,
            "pytest_cursus_data_source",
            kind=kind,
            name=name,
            spec=dict(spec),
            target_dir=target_dir,
            scenario_dir=scenario_path.parent,
        )
        if found is not None and not isinstance(found, (str, Path)):
            raise HookFailed(
                "pytest_cursus_data_source",
                TypeError(
                    f"expected a path for data source {name!r} (kind {kind!r}), "
                    f"got {found!r} (type={type(found).__name__})"
                ),
                "",
            )
        return None if found is None else Path(found)

    def data_source_key(self, scenario_path: Path, kind: str, name: str, spec: dict[str, Any]) -> str | None:
        found = self._call(
            scenario_path,
            "pytest_cursus_data_source_key",
            kind=kind,
            name=name,
            spec=dict(spec),
            scenario_dir=scenario_path.parent,
        )
        return None if found is None else str(found)

    def adjust_step(self, scenario_path: Path, step: StepPlan) -> StepPlan:
        """``step`` with the env and job_args the implementations left (the step itself unchanged)."""
        if not self._implemented(scenario_path, "pytest_cursus_adjust_step"):
            return step
        env, job_args = dict(step.env), dict(step.job_args)
        self._call(scenario_path, "pytest_cursus_adjust_step", step=step, env=env, job_args=job_args)
        for variable, value in env.items():
            if not isinstance(variable, str) or not isinstance(value, str):
                raise HookFailed(
                    "pytest_cursus_adjust_step",
                    TypeError(
                        f"env values must be strings, as in a container; got env[{variable!r}] = {value!r} "
                        f"(type={type(value).__name__}) for step {step.name!r}"
                    ),
                    "",
                )
        return dataclasses.replace(step, env=env, job_args=job_args)

    def check_outputs(self, scenario_path: Path, step: StepPlan, outputs: dict[str, Path]) -> list[str]:
        answers = self._call(scenario_path, "pytest_cursus_check_outputs", step=step, outputs=dict(outputs)) or []
        problems: list[str] = []
        for answer in answers:
            if answer is None:
                continue
            if isinstance(answer, str) or not isinstance(answer, Iterable):
                raise HookFailed(
                    "pytest_cursus_check_outputs",
                    TypeError(f"expected a list of problems (strings), got {answer!r} (type={type(answer).__name__})"),
                    "",
                )
            problems += [f"pytest_cursus_check_outputs: {problem}" for problem in answer]
        return problems

    def step_finished(self, scenario_path: Path, step: StepPlan, result: StepResult) -> None:
        self._call(scenario_path, "pytest_cursus_step_finished", step=step, result=result)

    # --- plumbing ----------------------------------------------------------------------------------

    def _implemented(self, scenario_path: Path, hook: str) -> bool:
        caller = self._caller(scenario_path, hook)
        return caller is not None and bool(caller.get_hookimpls())

    def _caller(self, scenario_path: Path, hook: str) -> Any:
        return None if self._relay_for is None else getattr(self._relay_for(scenario_path), hook, None)

    def _call(self, scenario_path: Path, hook: str, **kwargs: Any) -> Any:
        caller = self._caller(scenario_path, hook)
        if caller is None:
            return None
        with _reported_as(hook):
            return caller(**kwargs)


@contextmanager
def _reported_as(hook: str) -> Iterator[None]:
    try:
        yield
    except HookFailed:
        raise
    except Exception as exc:  # a user's hook may raise anything: the step fails with it
        raise HookFailed(hook, exc, implementation_traceback(exc)) from exc


def implementation_traceback(error: BaseException) -> str:
    """The traceback of ``error`` without the frames of pluggy and of this package."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if not frame.filename.startswith(_MACHINERY)]
    lines = [
        "Traceback (most recent call last):\n",
        *traceback.format_list(frames),
        *traceback.format_exception_only(type(error), error),
    ]
    return "".join(lines)


class _PluginManager(pluggy.PluginManager):
    """Also takes unmarked ``pytest_cursus_*`` functions, as pytest does in a conftest.py."""

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        options = super().parse_hookimpl_opts(plugin, name)
        if options is None and name.startswith(HOOK_PREFIX) and inspect.isroutine(getattr(plugin, name, None)):
            return pluggy.HookimplOpts(
                wrapper=False, hookwrapper=False, optionalhook=False, tryfirst=False, trylast=False, specname=None
            )
        return options


def plugin_manager(plugins: object | Iterable[object]) -> pluggy.PluginManager:
    """A PluginManager holding ``plugins`` (objects or modules with ``pytest_cursus_*`` functions).

    A misspelt hook name is a ``TypeError`` naming it, as pytest makes it a usage error.
    """
    manager = _PluginManager("pytest")
    add_hookspecs(manager)
    given = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    for plugin in given:
        unknown = [name for name in dir(plugin) if name.startswith(HOOK_PREFIX) and name not in HOOK_NAMES]
        if unknown:
            raise TypeError(
                f"plugin {_describe(plugin)} defines {', '.join(unknown)}, which is not a pytest-cursus hook; "
                f"the hooks are: {', '.join(HOOK_NAMES)}"
            )
        if not any(name in HOOK_NAMES for name in dir(plugin)):
            raise TypeError(f"expected a plugin defining one of {', '.join(HOOK_NAMES)}, got {_describe(plugin)}")
        manager.register(plugin)
    return manager


def add_hookspecs(manager: pluggy.PluginManager) -> None:
    """Register our hookspecs on ``manager`` once (pytest's, or one the caller built)."""
    caller = getattr(manager.hook, HOOK_NAMES[0], None)
    if caller is None or not caller.has_spec():
        manager.add_hookspecs(hookspecs)


def _describe(plugin: object) -> str:
    if inspect.ismodule(plugin):
        return f"module {plugin.__name__}"
    return f"{plugin!r} (type={type(plugin).__name__})"
