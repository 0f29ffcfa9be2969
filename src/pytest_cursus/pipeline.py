"""A pipeline run: steps of scenarios executed in DAG order, each fed its upstream's outputs.

Shared by the pytest plugin (one per session) and the notebook API. It knows nothing of pytest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import CursusError, DataSourceError
from .expectations import check_expectations
from .execution.step_runner import StepRunner
from .results import StepFailure, StepResult
from .scenario_plan import ScenarioPlan, SourceInput, UpstreamInput
from .step_cache import OutputCache
from .step_key import StepKey, source_key, step_key

SOURCES_DIR = "_data"


class UpstreamFailed(CursusError):
    """A step cannot run because a step it reads from failed."""

    def __init__(self, step: str, upstream: StepResult) -> None:
        self.step = step
        self.upstream = upstream
        super().__init__(f"upstream step {upstream.step!r} failed, so {step!r} cannot run")


@dataclass
class PipelineRun:
    """Remembers every step result and materialised data source of one run.

    With a ``cache``, a step whose key is unchanged is taken from it instead of running, and
    concurrent processes sharing the cache run each step once.
    """

    workspace_root: Path
    cache: OutputCache | None = None
    runner: StepRunner = field(init=False)
    results: dict[tuple[Path, str], StepResult] = field(default_factory=dict)
    ran_as_setup: set[tuple[Path, str]] = field(default_factory=set)
    _sources: dict[tuple[Path, str], Path] = field(default_factory=dict)
    _keys: dict[tuple[Path, str], StepKey] = field(default_factory=dict)
    _source_keys: dict[tuple[Path, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.runner = StepRunner(self.workspace_root)

    def result(self, plan: ScenarioPlan, step: str) -> StepResult | None:
        return self.results.get((plan.path, step))

    def prepare(self, plan: ScenarioPlan, step: str) -> list[StepResult]:
        """Make sure every step ``step`` depends on has a result; return those produced now
        (run, or taken from the cache).

        Raises ``UpstreamFailed`` if one of them failed (now or earlier in the run).
        """
        produced = []
        for upstream in plan.required_before(step):
            result = self.result(plan, upstream)
            if result is None:
                result = self._execute(plan, upstream)
                self.ran_as_setup.add((plan.path, upstream))
                produced.append(result)
            if not result.passed:
                raise UpstreamFailed(step, result)
        return produced

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

    def key_of(self, plan: ScenarioPlan, step: str) -> StepKey:
        """The step's cache key; an upstream input contributes the upstream step's key."""
        memo = (plan.path, step)
        if memo not in self._keys:
            input_keys = {}
            for name, binding in plan.steps[step].inputs.items():
                if isinstance(binding, SourceInput):
                    input_keys[name] = self._source_key(plan, binding.source)
                else:
                    input_keys[name] = f"{self.key_of(plan, binding.step).digest}/{binding.output}"
            self._keys[memo] = step_key(plan.steps[step], input_keys)
        return self._keys[memo]

    def _source_key(self, plan: ScenarioPlan, name: str) -> str:
        memo = (plan.path, name)
        if memo not in self._source_keys:
            self._source_keys[memo] = source_key(name, plan.data[name], plan.source_variants[name], plan.base_dir)
        return self._source_keys[memo]

    def _execute(self, plan: ScenarioPlan, step: str) -> StepResult:
        """Run the step or take it from the cache, then judge its outputs against ``expect:``."""
        result = self._produce(plan, step)
        expect = plan.steps[step].expect
        if result.passed and expect:
            problems = check_expectations(expect, {name: Path(path) for name, path in result.outputs.items()})
            if problems:
                failure = StepFailure(kind="expectation", message="\n".join(problems))
                result = result.model_copy(update={"outcome": "failed", "failure": failure})
        self.results[(plan.path, step)] = result
        return result

    def _produce(self, plan: ScenarioPlan, step: str) -> StepResult:
        if self.cache is None:
            return self._run(plan, step)
        key = self.key_of(plan, step)
        with self.cache.claim(key.digest):
            cached = self.cache.lookup(key.digest)
            if cached is not None:
                # the entry may come from an identical step of another scenario
                return cached.model_copy(update={"scenario": plan.name, "step": step})
            result = self._run(plan, step)
            result.cache_key = key.digest
            self.cache.store(key, result)
            return result

    def _run(self, plan: ScenarioPlan, step: str) -> StepResult:
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
        return result

    def source_data(self, plan: ScenarioPlan, name: str) -> Path:
        """The data of source ``name``, materialised once per run (isolation and fuzz items share it)."""
        return self._source(plan, name)

    def _source(self, plan: ScenarioPlan, name: str) -> Path:
        key = (plan.path, name)
        if key not in self._sources:
            from .data.sources import materialize

            target = self.workspace_root / plan.name / SOURCES_DIR / name
            self._sources[key] = materialize(name, plan.data[name], plan.source_variants[name], plan.base_dir, target)
        return self._sources[key]
