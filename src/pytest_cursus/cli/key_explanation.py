"""``cursus-runtime why SCENARIO STEP``: a step's cache key parts as they are now, each against the
entry the step last stored (or the entry of the key now, when there is one): same or changed, and
whether the step would run.

The key is worked out as the pipeline does (``PipelineRun.key_of``), without running anything: an
upstream input is the content digest of the upstream's output recorded in the upstream's cache entry;
an upstream with no entry for its key now makes that input unknown, and says so.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_cursus.cache.key import PartChange, compare_parts, step_key, why_ran
from pytest_cursus.cache.record import CacheRecord
from pytest_cursus.cache.store import OutputCache
from pytest_cursus.errors import ConfigError
from pytest_cursus.plan.scenario_plan import PlanOptions, ScenarioPlan, load_scenario
from pytest_cursus.run.pipeline import PipelineRun, UpstreamNotCached

EXIT_CACHED, EXIT_WOULD_RUN = 0, 1
SHOWN_VALUE_CHARS = 16  # of a value in a "was -> now" pair: digests are told apart by their start


@dataclass
class KeyExplanation:
    """What ``why`` found: the parts now, the entry compared with, and what differs."""

    plan: ScenarioPlan
    step: str
    parts: dict[str, Any]
    digest: str | None  # None when an upstream's outputs are not known
    unknown_inputs: dict[str, str] = field(default_factory=dict)  # input -> why it is not known
    cache_root: Path | None = None  # None: there is no step cache there
    compared: CacheRecord | None = None
    served: bool = False  # the entry of the key now holds a passed result: the step would not run
    changes: list[PartChange] = field(default_factory=list)

    @property
    def would_run(self) -> bool:
        return not self.served


def find_scenario(scenario: str, paths: Iterable[Path], options: PlanOptions) -> Path:
    """A scenario file given as such, or the file of the scenario named ``scenario`` under ``paths``."""
    from pytest_cursus.cli.listing import scenario_files

    given = Path(scenario)
    if given.is_file():
        return given.resolve()
    names: dict[str, Path] = {}
    for path in scenario_files(paths):
        try:
            names.setdefault(load_scenario(path, options).name, path)
        except ConfigError:
            continue  # an invalid scenario is not the one asked for, or its error shows when given as a file
    if scenario in names:
        return names[scenario]
    known = ", ".join(sorted(names)) or "none"
    raise ConfigError(
        f"scenario: expected a scenario file or the name of a scenario under {', '.join(map(str, paths))}, "
        f"got {scenario!r} (scenarios there: {known})"
    )


def explain(plan: ScenarioPlan, step: str, cache_root: Path) -> KeyExplanation:
    if step not in plan.steps:
        raise ConfigError(f"step: expected a step of scenario {plan.name!r} ({', '.join(plan.steps)}), got {step!r}")
    cache = OutputCache(cache_root, "cursus-runtime-why") if (cache_root / "entries").is_dir() else None
    try:
        with tempfile.TemporaryDirectory(prefix="cursus-why-") as scratch:
            return _explain(PipelineRun(Path(scratch), cache=cache), plan, step, cache_root if cache else None)
    finally:
        if cache is not None:
            cache.end_session()


def _explain(run: PipelineRun, plan: ScenarioPlan, step: str, cache_root: Path | None) -> KeyExplanation:
    input_keys: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for name in plan.steps[step].inputs:
        try:
            input_keys[name] = run.input_key(plan, step, name)
        except UpstreamNotCached as exc:
            unknown[name] = str(exc)
            input_keys[name] = f"not known: {exc.upstream} is not in the step cache"
    key = step_key(run.step_plan(plan, step), input_keys)
    found = KeyExplanation(plan, step, key.parts, None if unknown else key.digest, unknown, cache_root)
    if run.cache is None:
        return found
    current = run.cache.record(key.digest) if not unknown else None
    if current is not None and current.result.passed:
        found.compared, found.served = current, True
    else:
        found.compared = run.cache.latest_record(plan.name, step)
    if found.compared is not None:
        found.changes = compare_parts(found.compared.parts, key.parts)
    return found


def render_text(found: KeyExplanation, cwd: Path) -> str:
    plan, step = found.plan, found.step
    lines = [f"scenario {plan.name} ({_shown(str(plan.path), cwd)}), step {step}"]
    if found.digest is None:
        lines.append("key now:  not known (an upstream step is not in the step cache)")
    else:
        lines.append(f"key now:  {found.digest}" + ("" if found.served else " (no entry in the step cache)"))
    lines += [f"  input {name}: {reason}" for name, reason in found.unknown_inputs.items()]
    if found.cache_root is None:
        lines += ["no step cache found (looked for its entries/ directory); every part below is as it is now", ""]
        lines += [f"{'part':<14}{'now'}", *(f"{part:<14}{_value(value)}" for part, value in found.parts.items())]
        lines += ["", "verdict: it would run (not in cache)"]
        return "\n".join(lines)
    compared = found.compared
    if compared is None:
        lines += [f"no entry of {step!r} in the step cache at {_shown(str(found.cache_root), cwd)}", ""]
        lines += [f"{'part':<14}{'now'}", *(f"{part:<14}{_value(value)}" for part, value in found.parts.items())]
        lines += ["", "verdict: it would run (not in cache)"]
        return "\n".join(lines)
    which = "the entry of the key now" if found.served else f"the entry {step!r} last stored"
    stored = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(compared.created))
    lines += [f"compared with {which}: {compared.key} (stored {stored}, run {compared.run_id})", ""]
    lines.append(f"{'part':<14}{'now vs entry'}")
    for change in found.changes:
        if not change.changed:
            lines.append(f"{change.part:<14}same")
            continue
        was, now = compared.parts.get(change.part), found.parts.get(change.part)
        if not change.names:
            lines.append(f"{change.part:<14}changed: {_value(was)} -> {_value(now)}")
            continue
        lines.append(f"{change.part:<14}changed: {', '.join(_shown(name, cwd) for name in change.names)}")
        for name in change.names:
            before = was.get(name, "(absent)") if isinstance(was, dict) else was
            after = now.get(name, "(absent)") if isinstance(now, dict) else now
            lines.append(f"{'':<14}  {_shown(name, cwd)}: {_value(before)} -> {_value(after)}")
    if found.unknown_inputs:
        upstream = ", ".join(sorted(found.unknown_inputs))
        lines += ["", f"verdict: not known: input(s) {upstream} come from steps not in the step cache; run them first"]
    elif found.served:
        lines += ["", f"verdict: cached: the step would not run (entry {compared.key[:12]}... holds a passed result)"]
    else:
        lines += ["", f"verdict: it would run: {why_ran(found.changes, plan.steps[step].script)}"]
    return "\n".join(lines)


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= SHOWN_VALUE_CHARS * 3 else text[:SHOWN_VALUE_CHARS] + "..."


def _shown(path: str, cwd: Path) -> str:
    """A path relative to ``cwd`` when it is under it; anything else as it is."""
    try:
        return str(Path(path).relative_to(cwd))
    except ValueError:
        return path
