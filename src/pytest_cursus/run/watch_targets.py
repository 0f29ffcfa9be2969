"""Watch mode's map from files to what depends on them (docs/watch.md): a changed script, or a module it
imports from the scenario's roots, reruns its step and everything downstream; a changed ``file:``/``local:``
source reruns the steps that read it; a changed scenario, contract or DAG file reads the scenario again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_cursus.execution.script_imports import local_files
from pytest_cursus.plan.dag import ancestors
from pytest_cursus.plan.scenario_plan import ScenarioPlan, SourceInput

StepRef = tuple[Path, str]  # (scenario file, step), as the pipeline run keys its results


@dataclass(frozen=True)
class WatchTargets:
    """What a batch of changed files asks for."""

    replan: frozenset[Path] = frozenset()  # scenario files to read again (and all of their steps to rerun)
    steps: frozenset[StepRef] = frozenset()  # steps to rerun, downstream included
    sources: frozenset[tuple[Path, str]] = frozenset()  # (scenario file, data source) whose files changed

    def __bool__(self) -> bool:
        return bool(self.replan or self.steps)


@dataclass
class WatchIndex:
    """Every watched file and what reads it, built from the session's plans."""

    replan_by_file: dict[Path, set[Path]] = field(default_factory=dict)
    steps_by_file: dict[Path, set[StepRef]] = field(default_factory=dict)
    # a file: or local: source, which may be a directory: a change anywhere below it counts
    sources_by_path: dict[Path, set[tuple[Path, str]]] = field(default_factory=dict)
    plans: dict[Path, ScenarioPlan] = field(default_factory=dict)

    @classmethod
    def of(cls, plans: Iterable[ScenarioPlan], scenario_files: Iterable[Path] = ()) -> WatchIndex:
        """``scenario_files``: files that gave no plan (an invalid scenario), watched for the fix."""
        index = cls()
        for path in scenario_files:
            index.replan_by_file.setdefault(_real(path), set()).add(path)
        for plan in plans:
            index.add(plan)
        return index

    def add(self, plan: ScenarioPlan) -> None:
        self.plans[plan.path] = plan
        replan = [plan.path] + ([plan.wiring.path] if plan.wiring is not None else [])
        for step_name, step in plan.steps.items():
            replan.append(step.contract.path)
            for path in local_files(step.script, step.module, step.python_path):
                self.steps_by_file.setdefault(_real(path), set()).add((plan.path, step_name))
        for path in replan:
            self.replan_by_file.setdefault(_real(path), set()).add(plan.path)
        for name, source in plan.data.items():
            relative = source.file_of(plan.source_variants.get(name, "file"))
            if relative is not None:
                self.sources_by_path.setdefault(_real(plan.base_dir / relative), set()).add((plan.path, name))

    def paths(self) -> list[Path]:
        """What to watch: every file, and every source directory, that exists now."""
        found = {*self.replan_by_file, *self.steps_by_file, *self.sources_by_path}
        return sorted(path for path in found if path.exists())

    def targets(self, changed: Iterable[Path]) -> WatchTargets:
        replan: set[Path] = set()
        direct: set[StepRef] = set()
        sources: set[tuple[Path, str]] = set()
        for path in map(_real, changed):
            replan |= self.replan_by_file.get(path, set())
            direct |= self.steps_by_file.get(path, set())
            for source_path, readers in self.sources_by_path.items():
                if path == source_path or source_path in path.parents:
                    sources |= readers
        for scenario, name in sources:
            plan = self.plans[scenario]
            direct |= {
                (scenario, step_name)
                for step_name, step in plan.steps.items()
                if any(isinstance(binding, SourceInput) and binding.source == name for binding in step.inputs.values())
            }
        steps = {ref for ref in direct if ref[0] not in replan}
        for scenario, step in list(steps):
            steps |= {(scenario, name) for name in downstream_of(self.plans[scenario], step)}
        return WatchTargets(frozenset(replan), frozenset(steps), frozenset(sources))


def downstream_of(plan: ScenarioPlan, step: str) -> set[str]:
    """The steps that read, directly or not, what ``step`` writes."""
    upstreams = plan.upstreams()
    return {name for name in plan.steps if step in ancestors(name, upstreams)}


def _real(path: Path) -> Path:
    """Watchers report resolved paths; plans may hold symlinked ones."""
    return Path(path).resolve()
