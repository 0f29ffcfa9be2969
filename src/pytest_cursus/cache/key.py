"""The cache key of a step: a hash of everything that can change its outputs.

Parts: the script's source and the sources of the modules it imports from the scenario's own
roots (found by reading import statements, transitively), the contract, env, job_args, the keys
of its inputs as the pipeline gives them (a root source's key, run/sources.py; an upstream
step's output: the digest of its content, so an upstream that runs again and writes the same
bytes leaves its downstream steps cached: early cutoff), the versions of Python and of the
contract's framework requirements, and the plugin version.

The parts are kept with each cache entry; :func:`compare_parts` and :func:`why_ran` say which of
them differ from an earlier entry's, for the report and ``cursus-runtime why``.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_cursus.execution.script_imports import local_files
from pytest_cursus.version import __version__

if TYPE_CHECKING:  # annotations only: the key stays cheap to import
    from pytest_cursus.plan.scenario_plan import StepPlan


@dataclass(frozen=True)
class StepKey:
    digest: str
    parts: dict[str, Any]  # kept in the cache entry, to tell why a step ran again


def step_key(step: StepPlan, input_keys: Mapping[str, str]) -> StepKey:
    contract = step.contract
    parts: dict[str, Any] = {
        "plugin": __version__,
        "python": platform.python_version(),
        "sources": {str(path): _file_hash(path) for path in local_files(step.script, step.module, step.python_path)},
        "contract": text_hash(contract.fingerprint()),
        # a secret's digest (by the scenario's secrets: rule) still changes the key when the secret
        # changes, without storing it
        "env": {
            name: f"sha256:{text_hash(value)}" if step.secrets.is_secret(name) else value
            for name, value in sorted(step.env.items())
        },
        "job_args": _jsonable(step.job_args),
        "inputs": dict(sorted(input_keys.items())),
        "frameworks": {name: _installed_version(name) for name in sorted(contract.block.framework_requirements)},
        # they change the verdict on the same run: a passed step noted under one may fail under the other
        "strictness": {"pip": step.pip, "inputs_read_only": step.inputs_read_only},
    }
    if step.input_views or step.output_views:  # the keys and paths main() is given (as:, file:)
        parts["channel_views"] = {
            kind: {name: [view.key, view.file] for name, view in sorted(views.items())}
            for kind, views in (("inputs", step.input_views), ("outputs", step.output_views))
        }
    return StepKey(text_hash(json.dumps(parts, sort_keys=True, default=str)), parts)


def _file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def text_hash(text: str) -> str:
    """The hex SHA-256 of ``text``: how every part of a key is digested."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


# how each part is named when it changed (docs/caching.md); a part not listed is named as it is
_PART_LABELS = {
    "plugin": "plugin version",
    "python": "Python version",
    "contract": "contract",
    "env": "env",
    "job_args": "job args",
    "inputs": "inputs",
    "frameworks": "framework versions",
    "strictness": "strictness",
    "channel_views": "channel views",
}


@dataclass(frozen=True)
class PartChange:
    """One key part compared with an earlier entry's."""

    part: str
    changed: bool
    # within a mapping part (sources, env, inputs, ...): the names whose value differs, or that one side lacks
    names: list[str] = field(default_factory=list)


def compare_parts(earlier: Mapping[str, Any], now: Mapping[str, Any]) -> list[PartChange]:
    """Each part of ``now`` (then any only ``earlier`` has), same or changed, and what changed in it."""
    changes = []
    for part in [*now, *(name for name in earlier if name not in now)]:
        old, new = earlier.get(part), now.get(part)
        if old == new:
            changes.append(PartChange(part, False))
        elif isinstance(old, dict) and isinstance(new, dict):
            names = sorted(name for name in old.keys() | new.keys() if old.get(name, _ABSENT) != new.get(name, _ABSENT))
            changes.append(PartChange(part, True, names))
        else:
            changes.append(PartChange(part, True))
    return changes


def why_ran(changes: list[PartChange], script: Path) -> str:
    """The changed parts in a few words: ``script changed``, ``inputs changed: data_input``."""
    said = []
    for change in changes:
        if not change.changed:
            continue
        if change.part == "sources":
            if str(script) in change.names:
                said.append("script changed")
            modules = [Path(name).name for name in change.names if name != str(script)]
            if modules:
                said.append(f"imported modules changed: {', '.join(modules)}")
            continue
        label = _PART_LABELS.get(change.part, change.part)
        said.append(f"{label} changed" + (f": {', '.join(change.names)}" if change.names else ""))
    return "; ".join(said) or "key unchanged"


_ABSENT = object()
