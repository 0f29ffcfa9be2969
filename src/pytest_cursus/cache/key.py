"""The cache key of a step: a hash of everything that can change its outputs.

Parts: the script's source and the sources of the modules it imports from the scenario's own
roots (found by reading import statements, transitively), the contract, env, job_args, the keys
of its inputs as the pipeline gives them (a root source's key, run/sources.py; an upstream step's
own key, so a change upstream reruns everything downstream), the versions of Python and of the contract's framework
requirements, and the plugin version.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
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
