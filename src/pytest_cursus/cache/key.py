"""The cache key of a step: a hash of everything that can change its outputs.

Parts: the script's source and the sources of the modules it imports from the scenario's own
roots (found by reading import statements, transitively), the contract, env, job_args, the keys
of its inputs (a root source's content or spec; an upstream step's own key, so a change upstream
reruns everything downstream), the versions of Python and of the contract's framework
requirements, and the plugin version.
"""

from __future__ import annotations

import ast
import hashlib
import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_cursus.version import __version__
from pytest_cursus.execution.local_modules import module_files
from pytest_cursus.execution.workspace import fingerprint
from pytest_cursus.secret_env import is_secret_name

if TYPE_CHECKING:  # the option table imports step_cache, and so this, at every pytest start
    from pytest_cursus.data.s3_source import S3Access
    from pytest_cursus.formats.scenario_file import DataSource
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
        "sources": {str(path): _file_hash(path) for path in script_sources(step.script, step.module, step.python_path)},
        "contract": _text_hash(contract.fingerprint()),
        # a secret's digest still changes the key when the secret changes, without storing it
        "env": {
            name: f"sha256:{_text_hash(value)}" if is_secret_name(name) else value
            for name, value in sorted(step.env.items())
        },
        "job_args": _jsonable(step.job_args),
        "inputs": dict(sorted(input_keys.items())),
        "frameworks": {name: _installed_version(name) for name in sorted(contract.block.framework_requirements)},
        # they change the verdict on the same run: a passed step noted under one may fail under the other
        "strictness": {"pip": step.pip, "inputs_read_only": step.inputs_read_only},
    }
    return StepKey(_text_hash(json.dumps(parts, sort_keys=True, default=str)), parts)


def source_key(name: str, source: DataSource, variant: str, base_dir: Path, s3: S3Access | None = None) -> str:
    """A root data source's key, without materialising it when its spec determines it (an
    ``s3:`` variant: its listing's keys, ETags and sizes, one LIST and no download)."""
    if variant == "synthetic":
        assert source.synthetic is not None
        # generation is deterministic for a spec and a plugin version
        return _text_hash(f"synthetic:{__version__}:{source.synthetic.model_dump_json()}")
    if variant == "text":
        return _text_hash(f"text:{source.filename or name}:{source.text}")
    if variant in ("file", "local"):
        relative = source.file if variant == "file" else source.local
        path = (base_dir / str(relative)).resolve()
        return _text_hash(f"{variant}:{json.dumps(fingerprint(path), sort_keys=True)}")
    if variant == "s3":
        from pytest_cursus.run.sources import s3_source_key

        return _text_hash(f"s3:{s3_source_key(name, source, s3)}")
    return _text_hash(f"{variant}:{source.model_dump_json()}")


def script_sources(script: Path, module: str | None, python_path: Iterable[Path]) -> list[Path]:
    """The script and every module file it imports, transitively, from the scenario's roots.

    Imports that resolve outside the roots (pandas, the standard library) are not followed:
    their versions are covered by the framework requirements and the Python version.
    """
    roots = list(python_path) if module else [script.parent, *python_path]
    found: dict[Path, None] = {}
    pending = [script.resolve()]
    if module:  # importing pkg.steps.build runs pkg/__init__.py and pkg/steps/__init__.py first
        for root in roots:
            package = root.joinpath(*module.split(".")[:-1])
            if script.resolve().parent == package.resolve():
                pending += module_files(package, [], package_root=root)
    while pending:
        current = pending.pop()
        if current in found:
            continue
        found[current] = None
        pending.extend(path for path in _imported_files(current, roots) if path not in found)
    return sorted(found)


def _imported_files(path: Path, roots: list[Path]) -> list[Path]:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, OSError, ValueError):
        return []  # the step itself will report the syntax error
    files: list[Path] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                files += _resolve(alias.name.split("."), roots)
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names if alias.name != "*"]
            if node.level:
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                target = base.joinpath(*node.module.split(".")) if node.module else base
                files += module_files(target, names)
            elif node.module:
                parts = node.module.split(".")
                for root in roots:
                    files += module_files(root.joinpath(*parts), names, package_root=root)
    return files


def _resolve(parts: list[str], roots: list[Path]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        files += module_files(root.joinpath(*parts), [], package_root=root)
    return files


def _file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))
