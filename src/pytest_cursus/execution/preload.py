"""Which modules a warm executor may import once, before forking a step: the third-party modules
a script imports at its top level (directly or through its own local modules).

A module is never preloaded when:

- it resolves inside the scenario's own roots (the script's directory, ``python_path``): the
  scripts' own modules must be imported fresh by every step;
- its top-level package is known not to survive ``fork()`` (``NOT_FORK_SAFE``, documented in
  docs/execution.md with the reason for each).
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from pytest_cursus.execution.local_modules import module_files

# Top-level packages that hold state a forked child cannot inherit safely: threads started at
# import, GPU/driver contexts, a JVM or a display connection. Steps import them themselves.
NOT_FORK_SAFE: dict[str, str] = {
    "torch": "CUDA contexts and its intra-op thread pool do not survive fork()",
    "tensorflow": "starts threads and a runtime at import that fork() leaves broken",
    "jax": "XLA's runtime and thread pools are not fork-safe",
    "jaxlib": "XLA's runtime and thread pools are not fork-safe",
    "cupy": "a CUDA context cannot be shared with a forked child",
    "grpc": "gRPC's core starts threads that fork() does not copy",
    "ray": "connects to (or starts) a Ray runtime with its own threads",
    "pyspark": "talks to a JVM through a socket the parent owns",
    "py4j": "talks to a JVM through a socket the parent owns",
    "tkinter": "a display connection cannot be shared after fork()",
    "numba": "its threading layers (TBB, OpenMP) do not survive fork()",
    "mxnet": "its engine threads do not survive fork()",
}

# Environment variables that native libraries read once, when they are loaded: a step that sets
# one of them differently from the warm parent must start in a fresh interpreter to see it.
IMPORT_TIME_ENV_PREFIXES = (
    "OMP_",
    "KMP_",
    "GOMP_",
    "OPENBLAS_",
    "GOTO_",
    "MKL_",
    "BLIS_",
    "VECLIB_",
    "NUMEXPR_",
    "ARROW_",
    "MPLBACKEND",
    "MALLOC_",
    "LD_",
    "PYTHON",
)


def needs_fresh_interpreter(step_env: dict[str, str], parent_env: dict[str, str]) -> list[str]:
    """The step's variables that native libraries read at load time and the warm parent did not
    load with: a non-empty list means the step must not be forked from it."""
    return sorted(
        name
        for name, value in step_env.items()
        if name.startswith(IMPORT_TIME_ENV_PREFIXES) and parent_env.get(name) != value
    )


def preload_candidates(script: Path, module: str | None, python_path: Iterable[Path]) -> tuple[str, ...]:
    """Dotted module names to import before forking ``script``'s step, in import order.

    ``from pkg import name`` gives ``pkg`` and ``pkg.name?``: the trailing ``?`` marks a name
    that may be an attribute rather than a submodule (imported only if it is a submodule).
    """
    roots = tuple(Path(root).resolve() for root in python_path)
    if not module:
        roots = (script.parent.resolve(), *roots)
    return _candidates(script.resolve(), _stamp(script), roots)


# Memoised on the script's stamp only: a local module whose imports changed is read again in the
# next process. The list is a hint; whatever is not preloaded the step imports itself.
@lru_cache(maxsize=4096)
def _candidates(script: Path, _stamp: tuple[int, int], roots: tuple[Path, ...]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    seen: set[Path] = set()
    pending = [script]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for name, local in _top_level_imports(path, roots):
            if local is not None:
                pending.append(local)
            elif name.split(".")[0] not in NOT_FORK_SAFE:
                found.setdefault(name)
    return tuple(found)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


def _top_level_imports(path: Path, roots: tuple[Path, ...]) -> list[tuple[str, Path | None]]:
    """(module, None) for an outside import, ("", file) for a local module to read as well."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, OSError, ValueError):
        return []  # the step reports its own syntax error
    found: list[tuple[str, Path | None]] = []
    for node in _module_level(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(_classify(alias.name, roots))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: the script's own package
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                target = base.joinpath(*node.module.split(".")) if node.module else base
                found += [("", file) for file in module_files(target, [a.name for a in node.names])]
                continue
            if node.module is None or node.module == "__future__":
                continue
            kind = _classify(node.module, roots)
            found.append(kind)
            if kind[1] is None:
                found += [(f"{node.module}.{alias.name}?", None) for alias in node.names if alias.name != "*"]
            else:
                found += [
                    ("", file) for file in module_files(_root_path(node.module, roots), [a.name for a in node.names])
                ]
    return found


def _module_level(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Statements run when the module is imported: not function or class bodies, but the
    branches of module-level ``if``/``try``/``with`` (``try: import ujson except ImportError``)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        yield node
        if isinstance(node, ast.If):
            yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            for part in (node.body, node.orelse, node.finalbody):  # type: ignore[attr-defined]
                yield from _module_level(part)
            for handler in node.handlers:  # type: ignore[attr-defined]
                yield from _module_level(handler.body)
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)


def _classify(dotted: str, roots: tuple[Path, ...]) -> tuple[str, Path | None]:
    top = dotted.split(".")[0]
    for root in roots:
        if _exists_in(root, top):
            target = root.joinpath(*dotted.split("."))
            files = module_files(target, [])
            return ("", files[0]) if files else ("", root / top / "__init__.py")
    return (dotted, None)


def _root_path(dotted: str, roots: tuple[Path, ...]) -> Path:
    top = dotted.split(".")[0]
    for root in roots:
        if _exists_in(root, top):
            return root.joinpath(*dotted.split("."))
    return roots[0].joinpath(*dotted.split("."))


def _exists_in(root: Path, name: str) -> bool:
    """Whether ``root`` holds a module or package ``name`` (which would shadow any installed one)."""
    if (root / f"{name}.py").is_file() or (root / name).is_dir():
        return True
    try:
        return any(entry.startswith(name + ".") and entry.endswith((".so", ".pyd")) for entry in os.listdir(root))
    except OSError:
        return False
