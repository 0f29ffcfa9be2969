"""Building the ``StepRecord`` of a step from its result and plan: masked env, output totals,
recommendations, and short log excerpts for the HTML report."""

from __future__ import annotations

from pathlib import Path

from pytest_cursus.plan.scenario_plan import ScenarioPlan, StepPlan
from pytest_cursus.reporting.recommendations import recommend
from pytest_cursus.reporting.run_report import (
    BaselineCheck,
    ItemOutcome,
    ReportedStep,
    ScriptlessNode,
    output_records,
)
from pytest_cursus.results import StepResult
from pytest_cursus.secret_env import SecretScrubber, mask_env

EXCERPT_HEAD_LINES = 40
EXCERPT_TAIL_LINES = 160
EXCERPT_MAX_BYTES = 48 * 1024  # per log, per end


def reported_step(
    plan: StepPlan,
    *,
    scenario_file: str,
    position: int,
    outcome: ItemOutcome,
    result: StepResult | None,
    nodeid: str | None = None,
    as_setup: bool = False,
    skip_reason: str | None = None,
    baseline: BaselineCheck | None = None,
    run_id: str | None = None,
    scriptless: list[ScriptlessNode] | None = None,
) -> ReportedStep:
    """``run_id``: this session's; a result cached by this very run (another xdist worker ran the
    step) is reported as run, not cached: it was measured in this session."""
    scrub = SecretScrubber.for_step(plan.env, plan.secrets)
    record = ReportedStep(
        scenario=plan.scenario,
        scenario_file=scenario_file,
        step=plan.name,
        nodeid=nodeid,
        position=position,
        upstream=sorted(plan.upstream_steps),
        outcome=outcome,
        as_setup=as_setup,
        skip_reason=scrub.text(skip_reason) if skip_reason else None,
        timeout_seconds=plan.timeout,
        max_memory_mb=plan.max_memory_mb,
        env=mask_env(plan.env, plan.secrets),
        baseline=baseline,
        scriptless_nodes=scriptless or [],
    )
    if result is None:
        return record
    result = result.masked(scrub)  # whoever made it: the runner, the cache, a hook
    record.cached = result.cached and (run_id is None or result.produced_by_run != run_id)
    record.cache_key = result.cache_key
    record.run_reason = None if record.cached else result.run_reason
    record.failure = result.failure
    record.notes = result.notes
    record.metrics = result.metrics
    record.outputs = output_records(result)
    record.workspace = result.workspace
    record.stdout_path = result.stdout_path
    record.stderr_path = result.stderr_path
    record.stderr_tail = result.stderr_tail
    record.recommendations = recommend(
        result.metrics, timeout_seconds=plan.timeout, max_memory_mb=plan.max_memory_mb, output_bytes=record.bytes_out
    )
    if not record.cached:  # a cached entry's logs belong to the run that produced it, maybe gone
        record.stdout_excerpt = scrub.text(log_excerpt(result.stdout_path))
        record.stderr_excerpt = scrub.text(log_excerpt(result.stderr_path))
    return record


def log_excerpt(path: str | None) -> str:
    """The start and the end of a log, with a line saying how much was left out between."""
    if not path:
        return ""
    try:
        with open(path, "rb") as handle:
            head = handle.read(EXCERPT_MAX_BYTES)
            size = Path(path).stat().st_size
            if size <= EXCERPT_MAX_BYTES:
                return _decode(head)
            handle.seek(max(EXCERPT_MAX_BYTES, size - EXCERPT_MAX_BYTES))
            end = handle.read()
    except OSError:
        return ""
    head_lines = _decode(head).splitlines()[:EXCERPT_HEAD_LINES]
    tail_lines = _decode(end).splitlines()[-EXCERPT_TAIL_LINES:]
    return "\n".join([*head_lines, f"[... {size:,} bytes in all; the whole log is {path} ...]", *tail_lines])


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def scriptless_nodes(plan: ScenarioPlan, scenario_file: str) -> list[ScriptlessNode]:
    """The nodes of a DAG scenario that run no script: data sources first, then those not run, in DAG order."""
    wiring = plan.wiring
    if wiring is None:
        return []
    upstreams, order = wiring.dag.dag.upstreams(), wiring.order()
    found = [
        ScriptlessNode(
            scenario=plan.name,
            scenario_file=scenario_file,
            node=node,
            role="data source",
            reason=wiring.nodes[node].not_runnable or "",
            upstream=upstreams[node],
            read_by=read_by,
        )
        for node, read_by in wiring.data_sources().items()
    ]
    return found + [
        ScriptlessNode(
            scenario=plan.name,
            scenario_file=scenario_file,
            node=node,
            role="not run",
            reason=reason,
            upstream=upstreams[node],
        )
        for node, reason in sorted(plan.not_run.items(), key=lambda item: order.index(item[0]))
    ]
