"""What a step's script imports, read from its import statements (the script is never run).

Two questions, one reading of each file:

- :func:`local_files`: the scenario's own module files the script imports, transitively, from
  anywhere in its code (the step cache key hashes them: docs/caching.md);
- :func:`third_party_modules`: the modules from outside the scenario's roots that the script
  imports when it is loaded, directly or through its own modules (what the warm executor may
  preload: docs/execution.md).

A module resolves to the scenario's own code when its top-level name is a module or package in
one of the roots (the script's directory, ``python_path:``), which then shadows any installed one.

Understood: ``import a.b``, ``from a import b`` (``b`` a submodule or an attribute), relative
imports inside packages (``from . import x``, ``from ..pkg import y``), imports in module-level
``if``/``try``/``with`` blocks (``try: import ujson except ImportError``), imports inside functions
(their local files count; they are not preloaded, as they run only when called), and
``importlib.import_module("a.b")`` with a literal name.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# `importlib.import_module(...)` or, after `from importlib import import_module`, `import_module(...)`
_IMPORT_FUNCTION = "import_module"


@dataclass(frozen=True)
class ImportStatement:
    """One import as written: ``module`` is dotted ("" in ``from . import x``), ``names`` are the
    names a from-import takes (``*`` left out), ``level`` the dots of a relative import."""

    module: str
    names: tuple[str, ...] = ()
    level: int = 0
    from_import: bool = False


@dataclass(frozen=True)
class FileImports:
    """The imports of one file: those run when it is loaded, in that order, and all of them."""

    when_loaded: tuple[ImportStatement, ...]
    anywhere: tuple[ImportStatement, ...]


def local_files(script: Path, module: str | None, python_path: Iterable[Path]) -> list[Path]:
    """The script and every module file it imports, transitively, from the scenario's roots,
    including the ``__init__.py`` of the packages on the way (an import runs them too).

    Imports that resolve outside the roots (pandas, the standard library) are not followed.
    """
    roots = _roots(script, module, python_path)
    found = _walk(script, module, roots, when_loaded_only=False)[0]
    return sorted(found)


def third_party_modules(script: Path, module: str | None, python_path: Iterable[Path]) -> tuple[str, ...]:
    """Dotted names of the outside modules ``script`` imports when loaded, in import order.

    ``from pkg import name`` gives ``pkg`` and ``pkg.name?``: the trailing ``?`` marks a name
    that may be an attribute rather than a submodule.
    """
    roots = _roots(script, module, python_path)
    return tuple(_walk(script, module, roots, when_loaded_only=True)[1])


def module_files(target: Path, names: Iterable[str], package_root: Path | None = None) -> list[Path]:
    """Files of module ``target`` (a ``.py`` or a package), the ``__init__.py`` of its parent
    packages below ``package_root`` (run by the import too), and ``names`` that are submodules
    (``from pkg import mod``)."""
    files = []
    if target.with_suffix(".py").is_file():
        files.append(target.with_suffix(".py"))
    elif (target / "__init__.py").is_file():
        files.append(target / "__init__.py")
        files += [target / f"{name}.py" for name in names if (target / f"{name}.py").is_file()]
        files += [target / name / "__init__.py" for name in names if (target / name / "__init__.py").is_file()]
    if package_root is not None:  # even without a file of its own: `import pkg.ext` of a compiled ext runs them
        parent = target.parent
        while parent != package_root and package_root in parent.parents:
            if (parent / "__init__.py").is_file():
                files.append(parent / "__init__.py")
            parent = parent.parent
    return [file.resolve() for file in files]


def imports_of(path: Path) -> FileImports:
    """The import statements of the file at ``path`` (none when it cannot be read or parsed:
    the step reports its own syntax error)."""
    try:
        source = path.read_bytes()
    except OSError:
        return FileImports((), ())
    return _parsed(path, source)


# Keyed on the content, so an edited file is read again even within one process (the notebook
# API runs steps again after edits); the source is cheap to read, parsing is what is saved.
@lru_cache(maxsize=4096)
def _parsed(path: Path, source: bytes) -> FileImports:
    try:
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError):
        return FileImports((), ())
    when_loaded = [found for node in _module_level(tree.body) for found in _statement_imports(node)]
    anywhere = [found for node in ast.walk(tree) for found in _node_imports(node)]
    return FileImports(tuple(when_loaded), tuple(anywhere))


def _statement_imports(node: ast.stmt) -> Iterator[ImportStatement]:
    """Imports run by a module-level statement itself (the blocks it holds are visited apart)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield from _node_imports(node)
    elif isinstance(node, (ast.Expr, ast.Assign, ast.AnnAssign)) and node.value is not None:
        # `mod = importlib.import_module("pkg.mod")`
        for inner in ast.walk(node.value):
            yield from _node_imports(inner)


def _node_imports(node: ast.AST) -> Iterator[ImportStatement]:
    if isinstance(node, ast.Import):
        yield from (ImportStatement(alias.name) for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        names = tuple(alias.name for alias in node.names if alias.name != "*")
        yield ImportStatement(node.module or "", names, node.level, from_import=True)
    elif isinstance(node, ast.Call) and _calls_import_function(node.func) and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and not first.value.startswith("."):
            yield ImportStatement(first.value)


def _calls_import_function(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == _IMPORT_FUNCTION and isinstance(func.value, ast.Name) and func.value.id == "importlib"
    return isinstance(func, ast.Name) and func.id == _IMPORT_FUNCTION


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run when the module is loaded: not function or class bodies, but the
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


def _roots(script: Path, module: str | None, python_path: Iterable[Path]) -> list[Path]:
    # a script imported by its dotted name finds its modules through python_path only
    roots = [Path(root).resolve() for root in python_path]
    return roots if module else [script.parent.resolve(), *roots]


def _walk(
    script: Path, module: str | None, roots: list[Path], *, when_loaded_only: bool
) -> tuple[list[Path], list[str]]:
    """The local files reached from ``script`` and the outside modules its files import."""
    seen: dict[Path, None] = {}
    outside: dict[str, None] = {}
    pending = [script.resolve()]
    if module:  # importing pkg.steps.build runs pkg/__init__.py and pkg/steps/__init__.py first
        package_parts = module.split(".")[:-1]
        for root in roots:
            package = root.joinpath(*package_parts)
            if script.resolve().parent == package.resolve():
                pending += module_files(package, [], package_root=root)
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen[path] = None
        imports = imports_of(path)
        for statement in imports.when_loaded if when_loaded_only else imports.anywhere:
            files, names = _resolve(statement, path, roots)
            pending += [file for file in files if file not in seen]
            outside.update(dict.fromkeys(names))
    return list(seen), list(outside)


def _resolve(statement: ImportStatement, importer: Path, roots: list[Path]) -> tuple[list[Path], list[str]]:
    """The local files ``statement`` runs, or the outside modules it names."""
    if statement.level:  # relative: the importer's own package
        base = importer.parent
        for _ in range(statement.level - 1):
            base = base.parent
        target = base.joinpath(*statement.module.split(".")) if statement.module else base
        return module_files(target, statement.names), []
    if not statement.module or statement.module == "__future__":
        return [], []
    parts = statement.module.split(".")
    if any(_exists_in(root, parts[0]) for root in roots):
        files = [file for root in roots for file in module_files(root.joinpath(*parts), statement.names, root)]
        return files, []
    names = [statement.module]
    if statement.from_import:
        names += [f"{statement.module}.{name}?" for name in statement.names]
    return [], names


def _exists_in(root: Path, name: str) -> bool:
    """Whether ``root`` holds a module or package ``name`` (which would shadow any installed one)."""
    if (root / f"{name}.py").is_file() or (root / name).is_dir():
        return True
    try:
        return any(entry.startswith(name + ".") and entry.endswith((".so", ".pyd")) for entry in os.listdir(root))
    except OSError:
        return False
