"""A pipeline run: steps of scenarios executed in DAG order, each fed its upstream's outputs.

Shared by the pytest plugin (one per session) and the notebook API. It knows nothing of pytest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import CursusError, DataSourceError
from .execution.step_runner import StepRunner
from .results import StepFailure, StepResult
from .scenario_plan import ScenarioPlan, SourceInput, UpstreamInput

SOURCES_DIR = "_data"


class UpstreamFailed(CursusError):
    """A step cannot run because a step it reads from failed."""

    def __init__(self, step: str, upstream: StepResult, ran_now: bool) -> None:
        self.step = step
        self.upstream = upstream
        self.ran_now = ran_now
        super().__init__(f"upstream step {upstream.step!r} failed, so {step!r} cannot run")


@dataclass
class PipelineRun:
    """Remembers every step result and materialised data source of one run."""

    workspace_root: Path
    runner: StepRunner = field(init=False)
    results: dict[tuple[Path, str], StepResult] = field(default_factory=dict)
    ran_as_setup: set[tuple[Path, str]] = field(default_factory=set)
    _sources: dict[tuple[Path, str], Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.runner = StepRunner(self.workspace_root)

    def result(self, plan: ScenarioPlan, step: str) -> StepResult | None:
        return self.results.get((plan.path, step))

    def prepare(self, plan: ScenarioPlan, step: str) -> list[StepResult]:
        """Make sure every step ``step`` depends on has run; return those run just now.

        Raises ``UpstreamFailed`` if one of them failed (now or earlier in the run).
        """
        ran_now = []
        for upstream in plan.required_before(step):
            result = self.result(plan, upstream)
            if result is None:
                result = self._execute(plan, upstream)
                self.ran_as_setup.add((plan.path, upstream))
                ran_now.append(result)
            if not result.passed:
                raise UpstreamFailed(step, result, ran_now=result in ran_now)
        return ran_now

    def run_step(self, plan: ScenarioPlan, step: str) -> StepResult:
        """Run ``step`` (its upstream first if needed); an earlier result of it is replaced."""
        self.prepare(plan, step)
        return self._execute(plan, step)

    def ensure(self, plan: ScenarioPlan, step: str) -> StepResult:
        """The result of ``step`` in this run, running it (and its upstream) if it has not run."""
        existing = self.result(plan, step)
        if existing is not None:
            return existing
        self.prepare(plan, step)
        result = self._execute(plan, step)
        self.ran_as_setup.add((plan.path, step))
        return result

    def _execute(self, plan: ScenarioPlan, step: str) -> StepResult:
        step_plan = plan.steps[step]
        inputs: dict[str, Path] = {}
        try:
            for name, binding in step_plan.inputs.items():
                if isinstance(binding, SourceInput):
                    inputs[name] = self._source(plan, binding.source)
                elif isinstance(binding, UpstreamInput):
                    upstream = self.results[(plan.path, binding.step)]
                    inputs[name] = Path(upstream.outputs[binding.output])
        except DataSourceError as exc:
            result = StepResult(
                scenario=plan.name,
                step=step,
                outcome="failed",
                workspace=str(self.workspace_root / plan.name / step),
                failure=StepFailure(kind="setup", message=str(exc)),
            )
        else:
            result = self.runner.run(step_plan, inputs)
        self.results[(plan.path, step)] = result
        return result

    def _source(self, plan: ScenarioPlan, name: str) -> Path:
        key = (plan.path, name)
        if key not in self._sources:
            from .data.sources import materialize

            target = self.workspace_root / plan.name / SOURCES_DIR / name
            self._sources[key] = materialize(name, plan.data[name], plan.source_variants[name], plan.base_dir, target)
        return self._sources[key]
