"""A pipeline run: steps of scenarios executed in DAG order, each fed its upstream's outputs.

Shared by the pytest plugin (one per session) and the notebook API. It knows nothing of pytest.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_cursus.cache.key import StepKey, compare_parts, step_key, text_hash, why_ran
from pytest_cursus.cache.store import OutputCache
from pytest_cursus.checks.edge_checks import EDGE_CHECK_VERSION, EDGE_SAMPLE_FILES, EdgeVerdict, check_edge
from pytest_cursus.checks.expectations import check_expectations
from pytest_cursus.data.s3.access import S3Access
from pytest_cursus.errors import CursusError, DataSourceError
from pytest_cursus.execution.kept_logs import drop_kept_logs, keep_logs
from pytest_cursus.execution.launcher import StepLauncher
from pytest_cursus.execution.step_progress import SilentProgress, StepProgress
from pytest_cursus.execution.step_runner import StepRunner
from pytest_cursus.execution.workspace import (
    StagingDeadline,
    StagingError,
    StagingTimeout,
    StatSnapshot,
    describe_changes,
    source_snapshot,
)
from pytest_cursus.plan.scenario_plan import ScenarioPlan, SourceInput, StepPlan, UpstreamInput
from pytest_cursus.results import StepFailure, StepResult
from pytest_cursus.run.extension_hooks import ExtensionHooks, HookFailed
from pytest_cursus.run.sources import SourceContext, SourceVariant, source_variant, synthetic_selection
from pytest_cursus.secret_env import SecretScrubber

if TYPE_CHECKING:
    from pytest_cursus.data.profile_comparison import ProfileComparison
    from pytest_cursus.plan.dag import Edge

SOURCES_DIR = "_data"
EXECUTION_DIR = "_execution"  # downloaded outputs of --cursus-execution, per step and output
# stands for the checked output's path in a remembered edge verdict: a later session checks another copy
_OUTPUT_MARK = "\x00output\x00"


class InputsChangedDuringRun(UserWarning):
    """A step's input data changed while the run used it: its result is not stored in the step cache."""


class UpstreamNotCached(CursusError):
    """A step's key needs an upstream step's outputs, which neither ran in this run nor are in the step cache."""

    def __init__(self, step: str, upstream: str, upstream_key: str) -> None:
        self.step = step
        self.upstream = upstream
        self.upstream_key = upstream_key
        super().__init__(
            f"upstream step {upstream!r} is not in the step cache (no entry for its key {upstream_key[:12]}...): "
            f"the content of its outputs, which the key of {step!r} is made from, is not known until it runs"
        )


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
    _keys: dict[tuple[Path, str], StepKey] = field(default_factory=dict)
    # each step's output name -> the content digest a downstream key takes, for its result in this run
    _output_keys: dict[tuple[Path, str], dict[str, str]] = field(default_factory=dict)
    # each named source of each scenario, remembering its key and its materialised data
    _sources: dict[tuple[Path, str], SourceVariant] = field(default_factory=dict)
    s3: S3Access = field(default_factory=S3Access)
    # synthetic vs real profiles made during the run (docs/s3.md says when)
    comparisons: list[ProfileComparison] = field(default_factory=list)
    _execution_outputs: dict[tuple[Path, str, str], Path] = field(default_factory=dict)
    # each passed step's outputs (name -> sizes, times, inodes) when its result was recorded
    _output_snapshots: dict[tuple[Path, str], dict[str, StatSnapshot]] = field(default_factory=dict)
    _compared: set[tuple[Path, str]] = field(default_factory=set)
    # the pytest_cursus_* hooks of conftest.py files or of the notebook API's plugins
    extensions: ExtensionHooks = field(default_factory=ExtensionHooks)
    _step_plans: dict[tuple[Path, str], StepPlan] = field(default_factory=dict)
    # how steps' processes start (execution/launcher.py); None: a fresh interpreter each
    launcher: StepLauncher | None = None
    # table files whose schema an edge check reads (checks/edge_checks.py); 0: every one
    edge_sample: int = EDGE_SAMPLE_FILES
    # told as each step starts and finishes (the plugin's live lines, the notebook's progress)
    progress: StepProgress = field(default_factory=SilentProgress)
    # where a failed step's logs are copied to outlive its workspace; None: not copied
    keep_logs: Path | None = None

    def __post_init__(self) -> None:
        self.runner = StepRunner(self.workspace_root, launcher=self.launcher, progress=self.progress)

    def result(self, plan: ScenarioPlan, step: str) -> StepResult | None:
        return self.results.get((plan.path, step))

    def forget(self, scenario: Path, steps: Iterable[str] | None = None, sources: Iterable[str] = ()) -> None:
        """Watch mode: drop what this run remembers of ``steps`` of ``scenario`` (all of them, and its data
        sources, when None: the scenario was read again) and of the data ``sources`` whose files changed,
        so they are keyed, and run or taken from the cache, again."""
        names = None if steps is None else set(steps)
        sources = set(sources)
        for memo in (self.results, self._keys, self._step_plans, self._output_snapshots, self._output_keys):
            for key in [key for key in memo if key[0] == scenario and (names is None or key[1] in names)]:
                del memo[key]
        self.ran_as_setup = {
            key for key in self.ran_as_setup if not (key[0] == scenario and (names is None or key[1] in names))
        }
        for key in [key for key in self._sources if key[0] == scenario and (names is None or key[1] in sources)]:
            del self._sources[key]

    def step_plan(self, plan: ScenarioPlan, step: str) -> StepPlan:
        """The step as it runs: its env and job_args after ``pytest_cursus_adjust_step``, once per run."""
        memo = (plan.path, step)
        if memo not in self._step_plans:
            self._step_plans[memo] = self.extensions.adjust_step(plan.path, plan.steps[step])
        return self._step_plans[memo]

    def prepare(self, plan: ScenarioPlan, step: str) -> list[StepResult]:
        """Make sure every step ``step`` depends on has a result; return those produced now
        (run, or taken from the cache).

        Raises ``UpstreamFailed`` if one of them failed (now or earlier in the run).
        """
        if plan.execution is not None:
            return []  # inputs that reference upstream steps read the execution's outputs
        produced = []
        for upstream in plan.required_before(step):
            result = self.result(plan, upstream)
            if result is None:
                result = self._execute(plan, upstream, as_setup=True)
                self.ran_as_setup.add((plan.path, upstream))
                produced.append(result)
            if not result.passed:
                raise UpstreamFailed(step, result)
        return produced

    def run_step(self, plan: ScenarioPlan, step: str, *, in_process: bool = False) -> StepResult:
        """Run ``step`` (its upstream first if needed); an earlier result of it is replaced.

        ``in_process`` (``--cursus-debug``): the step itself, not its upstream, runs in this
        process, always (the cache is neither read nor written for it).
        """
        self.prepare(plan, step)
        return self._execute(plan, step, in_process=in_process)

    def ensure(self, plan: ScenarioPlan, step: str) -> StepResult:
        """The result of ``step`` in this run, running it (and its upstream) if it has not run."""
        existing = self.result(plan, step)
        if existing is not None:
            return existing
        self.prepare(plan, step)
        result = self._execute(plan, step, as_setup=True)
        self.ran_as_setup.add((plan.path, step))
        return result

    def key_of(self, plan: ScenarioPlan, step: str, deadline: StagingDeadline | None = None) -> StepKey:
        """The step's cache key. A ``file:`` source's files are read for it, within ``deadline``; an
        upstream input contributes the content digest of the upstream's output (:meth:`input_key`),
        so an upstream that runs again and writes the same bytes leaves the step cached."""
        memo = (plan.path, step)
        known = self._keys.get(memo)
        if known is not None and plan.execution is not None:
            return known  # the execution's outputs are listed once per run
        input_keys = {name: self.input_key(plan, step, name, deadline) for name in plan.steps[step].inputs}
        if known is None or known.parts["inputs"] != dict(sorted(input_keys.items())):
            known = self._keys[memo] = step_key(self.step_plan(plan, step), input_keys)
        return known

    def input_key(self, plan: ScenarioPlan, step: str, name: str, deadline: StagingDeadline | None = None) -> str:
        """What input ``name`` of ``step`` puts in its key: a source's key (run/sources.py), an
        execution output's listing, or an upstream output's content digest, taken from the
        upstream's cache entry (recorded when it was stored: nothing is hashed again). An upstream
        that has not run in this run is looked up in the cache by its own key, and raises
        :class:`UpstreamNotCached` if it is not there; one whose outputs were not stored (over the
        cap, changed during its run, ``--cursus-debug``) gives its own key instead."""
        binding = plan.steps[step].inputs[name]
        if isinstance(binding, SourceInput):
            return self._source_variant(plan, binding.source).key(deadline)
        if plan.execution is not None:
            return self._execution_key(plan, binding)
        upstream = self.results.get((plan.path, binding.step))
        if upstream is None:
            upstream_key = self.key_of(plan, binding.step, deadline).digest
            stored = self.cache.stored_output_digests(upstream_key) if self.cache is not None else None
            if stored is None or binding.output not in stored:
                raise UpstreamNotCached(step, binding.step, upstream_key)
            return stored[binding.output]
        memo = (plan.path, binding.step)
        if memo not in self._output_keys:
            stored = None
            if self.cache is not None and upstream.passed and upstream.cache_key is not None:
                producer = upstream.produced_by_run or self.cache.run_id
                stored = self.cache.stored_output_digests(upstream.cache_key, producer)
            self._output_keys[memo] = stored or {}
        digest = self._output_keys[memo].get(binding.output)
        return digest or f"{self.key_of(plan, binding.step, deadline).digest}/{binding.output}"

    def check_edge(self, plan: ScenarioPlan, edge: Edge, output: Path) -> EdgeVerdict:
        """Check ``output`` (the upstream's, or the execution's) against the downstream input of ``edge``.

        The verdict on an upstream step's outputs is kept with its cache entry, keyed by the entry,
        the output, the downstream input's ``data:`` schema and the sample: when the upstream step is
        served from the cache again (its files verified unchanged), the verdict is reused without
        reading the files, and a change to the schema (or to the upstream step, which makes another
        entry) checks again. An upstream step that ran in this session has its edges checked.
        """
        schema = plan.steps[edge.downstream].contract.inputs[edge.input].data
        upstream = self.result(plan, edge.upstream)
        entry = upstream.cache_key if upstream is not None and upstream.passed and plan.execution is None else None
        if self.cache is None or entry is None:
            return EdgeVerdict(check_edge(output, schema, self.edge_sample))
        check = text_hash(
            json.dumps(
                {
                    "version": EDGE_CHECK_VERSION,
                    "output": edge.output,
                    "schema": None if schema is None else schema.model_dump(mode="json"),
                    "sample": self.edge_sample,
                },
                sort_keys=True,
            )
        )
        remembered = self.cache.edge_verdict(entry, check) if upstream is not None and upstream.cached else None
        if remembered is not None:
            return EdgeVerdict([problem.replace(_OUTPUT_MARK, str(output)) for problem in remembered], remembered=True)
        problems = check_edge(output, schema, self.edge_sample)
        self.cache.remember_edge_verdict(
            entry, check, [problem.replace(str(output), _OUTPUT_MARK) for problem in problems]
        )
        return EdgeVerdict(problems)

    def _execute(
        self, plan: ScenarioPlan, step: str, *, in_process: bool = False, as_setup: bool = False
    ) -> StepResult:
        """Run the step or take it from the cache, then judge its outputs against ``expect:``;
        ``as_setup``: produced as the upstream of another item (said so to ``progress``)."""
        # working out the key, making the data and copying it in: all within the step's timeout
        deadline = StagingDeadline(plan.steps[step].timeout)
        if in_process:
            result = self._run(plan, step, deadline, in_process=True)
            result.run_reason = "--cursus-debug"
        else:
            result = self._produce(plan, step, deadline, as_setup=as_setup)
        self._compare_inputs(plan, step, result)
        expect = plan.steps[step].expect
        if result.passed:
            outputs = {name: Path(path) for name, path in result.outputs.items()}
            try:
                problems = check_expectations(expect, outputs) if expect else []
                problems += self.extensions.check_outputs(plan.path, self.step_plan(plan, step), outputs)
            except HookFailed as exc:
                result = result.model_copy(update={"outcome": "failed", "failure": _hook_failure(exc)})
            else:
                if problems:
                    failure = StepFailure(kind="expectation", message="\n".join(problems))
                    result = result.model_copy(update={"outcome": "failed", "failure": failure})
        try:
            self.extensions.step_finished(plan.path, plan.steps[step], result)
        except HookFailed as exc:
            if result.passed:  # an earlier failure is the one worth reading
                result = result.model_copy(update={"outcome": "failed", "failure": _hook_failure(exc)})
        # a run step's result is masked already; not a cached one made under another secrets: rule,
        # nor a hook's or a data source's failure, which may quote the env. The env as the step ran,
        # or as written when pytest_cursus_adjust_step failed (not called again for this)
        step_plan = self._step_plans.get((plan.path, step), plan.steps[step])
        mask = SecretScrubber.for_step(step_plan.env, step_plan.secrets)
        result = result.masked(mask)
        if self.keep_logs is not None and result.passed:
            drop_kept_logs(self.keep_logs, plan.name, step)
        elif self.keep_logs is not None and not result.cached:
            kept = keep_logs(result, self.keep_logs, mask)
            result = result.model_copy(update={"kept_logs": str(kept) if kept else None})
        self.results[(plan.path, step)] = result
        self.progress.step_finished(result, as_setup=as_setup)
        self._output_keys.pop((plan.path, step), None)  # its downstream keys take this result's outputs
        if result.passed:  # what a downstream step will be staged from, as it is now
            self._output_snapshots[(plan.path, step)] = {
                name: source_snapshot(Path(path)) for name, path in result.outputs.items()
            }
        return result

    def _produce(self, plan: ScenarioPlan, step: str, deadline: StagingDeadline, *, as_setup: bool) -> StepResult:
        if self.cache is None:
            return self._run(plan, step, deadline, as_setup=as_setup)
        try:
            key = self.key_of(plan, step, deadline)  # lists S3 sources and execution outputs
        except (DataSourceError, HookFailed, StagingTimeout) as exc:
            return self._setup_failure(plan, step, exc)
        with self.cache.claim(key.digest):
            cached = self.cache.lookup(key.digest)
            if cached is not None:
                # the entry may come from an identical step of another scenario; why it ran once is
                # news only within the run that ran it (another xdist worker: SHARED)
                reason = cached.run_reason if cached.produced_by_run == self.cache.run_id else None
                return cached.model_copy(update={"scenario": plan.name, "step": step, "run_reason": reason})
            reason = self._run_reason(plan, step, key)
            result = self._run(plan, step, deadline, as_setup=as_setup)
            result.cache_key = key.digest
            result.run_reason = reason
            changed = self._inputs_changed(plan, step)
            if changed:
                message = (
                    f"step {step!r} of scenario {plan.name!r}: its input data changed between the key being worked "
                    f"out and the end of the step ({'; '.join(changed)}), so its result is not stored in the step "
                    "cache (it would be served for data it was not made from); something else writes to that data "
                    "while the run uses it: another session in the same workspace, or a script writing to a source"
                )
                warnings.warn(InputsChangedDuringRun(message), stacklevel=2)
                result.notes.append(message)
            else:
                self.cache.store(key, result)
            return result

    def _run_reason(self, plan: ScenarioPlan, step: str, key: StepKey) -> str:
        """Why the step runs rather than comes from the cache: the key parts that differ from the
        entry it last stored (read only on a miss, when the step runs anyway)."""
        assert self.cache is not None
        if not self.cache.reuse_earlier_runs:
            return self.cache.no_reuse_reason
        same = self.cache.record(key.digest)
        if same is not None:  # an entry lookup() would not serve
            return "its cache entry changed on disk" if same.result.passed else "failed when it last ran"
        earlier = self.cache.latest_record(plan.name, step)
        if earlier is None:
            return "not in cache"
        return why_ran(compare_parts(earlier.parts, key.parts), self.step_plan(plan, step).script)

    def _inputs_changed(self, plan: ScenarioPlan, step: str) -> list[str]:
        """How each input of ``step`` differs now from the data its key was worked out from (a
        ``file:`` source) or made as (generated and downloaded sources, upstream outputs): a stat of
        each file, no reading."""
        changed = []
        for name, binding in plan.steps[step].inputs.items():
            if isinstance(binding, SourceInput):
                variant = self._source_variant(plan, binding.source)
                differences = variant.changes_since_snapshot()
                where = variant.label
            elif isinstance(binding, UpstreamInput) and plan.execution is None:
                before = self._output_snapshots.get((plan.path, binding.step), {}).get(binding.output)
                upstream = self.results.get((plan.path, binding.step))
                if before is None or upstream is None:
                    continue
                where = f"{binding.step}.{binding.output}"
                try:
                    differences = describe_changes(before, source_snapshot(Path(upstream.outputs[binding.output])))
                except StagingError as exc:
                    differences = [str(exc)]
            else:
                continue
            if differences:
                changed.append(f"input {name!r} from {where}: {', '.join(differences)}")
        return changed

    def _run(
        self,
        plan: ScenarioPlan,
        step: str,
        deadline: StagingDeadline,
        *,
        in_process: bool = False,
        as_setup: bool = False,
    ) -> StepResult:
        step_plan = plan.steps[step]
        inputs: dict[str, Path] = {}
        try:
            for name, binding in step_plan.inputs.items():
                if isinstance(binding, SourceInput):
                    inputs[name] = self._source_variant(plan, binding.source).data(deadline)
                elif plan.execution is not None:
                    inputs[name] = self.execution_output(plan, binding.step, binding.output)
                elif isinstance(binding, UpstreamInput):
                    upstream = self.results[(plan.path, binding.step)]
                    inputs[name] = Path(upstream.outputs[binding.output])
            step_plan = self.step_plan(plan, step)
        except (DataSourceError, HookFailed, StagingTimeout) as exc:
            result = self._setup_failure(plan, step, exc)
        else:
            self.progress.step_started(plan.name, step, as_setup=as_setup)
            result = self.runner.run(step_plan, inputs, in_process=in_process, deadline=deadline)
        return result

    def source_data(self, plan: ScenarioPlan, name: str) -> Path:
        """The data of source ``name``, materialised once per run (isolation and fuzz items share it)."""
        return self._source(plan, name)

    def _source(self, plan: ScenarioPlan, name: str) -> Path:
        return self._source_variant(plan, name).data()

    def _source_variant(self, plan: ScenarioPlan, name: str) -> SourceVariant:
        memo = (plan.path, name)
        if memo not in self._sources:
            context = SourceContext(plan.path, self.workspace_root / plan.name / SOURCES_DIR, self.s3, self.extensions)
            self._sources[memo] = source_variant(name, plan.data[name], plan.source_variants[name], context)
        return self._sources[memo]

    def _setup_failure(
        self, plan: ScenarioPlan, step: str, exc: DataSourceError | HookFailed | StagingTimeout
    ) -> StepResult:
        if isinstance(exc, HookFailed):
            failure = _hook_failure(exc)
        elif isinstance(exc, StagingTimeout):
            failure = StepFailure(kind="timeout", message=f"{exc}; raise 'timeout:' on the step if this is expected")
        else:
            failure = StepFailure(kind="setup", message=str(exc))
        return StepResult(
            scenario=plan.name,
            step=step,
            outcome="failed",
            workspace=str(self.workspace_root / plan.name / step),
            failure=failure,
        )

    # --- production execution outputs (docs/s3.md) ---------------------------------------------

    def execution_output(self, plan: ScenarioPlan, step: str, output: str) -> Path:
        """The output ``step.output`` written by the plan's execution, downloaded once per run."""
        memo = (plan.path, step, output)
        if memo not in self._execution_outputs:
            from pytest_cursus.data.execution_outputs import fetch_output

            assert plan.execution is not None
            target = self.workspace_root / plan.name / EXECUTION_DIR / step / output
            where = self._layout_fields(plan, step, output)
            self._execution_outputs[memo] = fetch_output(self.s3, plan.execution, target, **where)
        return self._execution_outputs[memo]

    def _execution_key(self, plan: ScenarioPlan, binding: UpstreamInput) -> str:
        from pytest_cursus.data.execution_outputs import output_key

        assert plan.execution is not None
        return "execution:" + output_key(
            self.s3, plan.execution, **self._layout_fields(plan, binding.step, binding.output)
        )

    def _layout_fields(self, plan: ScenarioPlan, step: str, output: str) -> dict[str, str]:
        return {"scenario": plan.name, "step": step, "output": output, "contract": plan.steps[step].contract.name}

    # --- synthetic vs real ------------------------------------------------------------------------

    def take_comparisons(self) -> list[ProfileComparison]:
        """Comparisons made since the last call (the plugin attaches them to the item's report)."""
        taken, self.comparisons = self.comparisons, []
        return taken

    def _compare_inputs(self, plan: ScenarioPlan, step: str, result: StepResult) -> None:
        """Profile the real data feeding ``step`` against its synthetic counterpart, once per run:
        an ``s3`` source with a ``synthetic`` variant against that variant generated on the side;
        an execution output against the output of the same step run on synthetic data, when the
        step cache holds that run."""
        if result.failure is not None and result.failure.kind == "setup":
            return  # the data could not be fetched: the step's failure says why
        first = len(self.comparisons)
        self._compare_bindings(plan, step)
        for comparison in self.comparisons[first:]:
            comparison.step = step

    def _compare_bindings(self, plan: ScenarioPlan, step: str) -> None:
        from pytest_cursus.data.profile_comparison import (
            ProfileComparison,
            compare_datasets,
            compare_source,
        )

        for binding in plan.steps[step].inputs.values():
            if isinstance(binding, SourceInput):
                name = binding.source
                counterpart = self._source_variant(plan, name).synthetic_counterpart()
                if counterpart is None or (plan.path, f"data.{name}") in self._compared:
                    continue
                subject = f"data.{name}"
                self._compared.add((plan.path, subject))
                try:
                    real = self._source(plan, name)
                except DataSourceError as exc:
                    self.comparisons.append(ProfileComparison(scenario=plan.name, subject=subject, error=str(exc)))
                    continue
                scratch = self.workspace_root / plan.name / SOURCES_DIR / f"{name}.synthetic-profile"
                self.comparisons.append(
                    compare_source(
                        plan.name,
                        name,
                        counterpart.spec,
                        real,
                        counterpart.real_location,
                        scratch,
                        counterpart.sampling,
                    )
                )
            elif plan.execution is not None and (plan.path, f"{binding.step}.{binding.output}") not in self._compared:
                subject = f"{binding.step}.{binding.output}"
                self._compared.add((plan.path, subject))
                synthetic = self._synthetic_run(plan, binding.step)
                if synthetic is None or binding.output not in synthetic.outputs:
                    continue  # nothing synthetic to compare with: the step never ran on synthetic data here
                try:
                    real = self.execution_output(plan, binding.step, binding.output)
                except DataSourceError as exc:
                    self.comparisons.append(ProfileComparison(scenario=plan.name, subject=subject, error=str(exc)))
                    continue
                location = plan.execution.output_uri(**self._layout_fields(plan, binding.step, binding.output))
                self.comparisons.append(
                    compare_datasets(
                        plan.name,
                        subject,
                        Path(synthetic.outputs[binding.output]),
                        real,
                        synthetic_location=f"step cache entry {(synthetic.cache_key or '?')[:12]}",
                        real_location=location,
                    )
                )

    def _synthetic_run(self, plan: ScenarioPlan, step: str) -> StepResult | None:
        """The step's passed result from the step cache, for the plan without the execution and
        with every source that has one on its synthetic variant."""
        if self.cache is None:
            return None
        variants = synthetic_selection(plan.data, plan.source_variants)
        shadow = replace(plan, execution=None, source_variants=variants)
        # the shadow run has run nothing: its upstream steps' outputs are those of their cache entries
        shadow_run = PipelineRun(self.workspace_root, cache=self.cache, s3=self.s3, extensions=self.extensions)
        try:
            key = shadow_run.key_of(shadow, step)
        except (DataSourceError, HookFailed, UpstreamNotCached):
            return None
        found = self.cache.lookup(key.digest)
        return found if found is not None and found.passed else None


def _hook_failure(exc: HookFailed) -> StepFailure:
    return StepFailure(kind="hook", message=str(exc), exception_type=exc.hook, script_traceback=exc.traceback or None)
