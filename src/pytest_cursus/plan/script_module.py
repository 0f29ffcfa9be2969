"""How a step's script is imported: by file, or by its dotted name when it lives in a package.

Two ways to a dotted name (docs/execution.md#how-the-script-is-imported):

- the script lies under a ``python_path:`` root (the explicit way): its path below the root is
  its name, and the roots are all that goes on ``sys.path``;
- the script's directory holds an ``__init__.py`` (it is found from the script path alone):
  walking up the ``__init__.py`` files gives the top package, and the directory above it goes
  on ``sys.path``. The script's own directory stays first on ``sys.path``, as ``python
  script.py`` has it, so absolute imports of its siblings (``import helpers``) keep working.

Importing by name (not by file) sets ``__package__``, which is what makes relative imports
(``from ..processing import x``) work. The step's child, the step cache key, the preload walker
and the contract import check all take the result, so they see the same files.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ScriptImport:
    """``module``: the dotted name to import the script by (None: load it from its file);
    ``python_path``: the roots put on ``sys.path`` first, in this order."""

    module: str | None
    python_path: tuple[Path, ...]


def script_import(script: Path, python_path: Sequence[Path]) -> ScriptImport:
    """How to import ``script`` given the scenario's explicit ``python_path`` roots."""
    explicit = tuple(python_path)
    module = _name_under_root(script, explicit)
    if module is not None:
        return ScriptImport(module, explicit)
    top = top_package(script)
    if top is None:
        return ScriptImport(None, explicit)
    parts = script.with_suffix("").relative_to(top.parent).parts
    return ScriptImport(".".join(parts), (script.parent, *explicit, top.parent))


def top_package(script: Path) -> Path | None:
    """The outermost package directory holding ``script`` (walking up ``__init__.py`` files), or
    None when the script is not in a package or could not be imported by a dotted name."""
    if not script.stem.isidentifier():
        return None
    top = None
    directory = script.parent
    while (directory / "__init__.py").is_file() and directory.name.isidentifier() and directory != directory.parent:
        top = directory
        directory = directory.parent
    if top is not None and top.name in sys.stdlib_module_names:
        # `import email.steps.build` would find the standard library's email package first
        return None
    return top


def _name_under_root(script: Path, python_path: Sequence[Path]) -> str | None:
    """The dotted name of a script that lives under a python_path root."""
    for root in python_path:
        try:
            relative = script.relative_to(root)
        except ValueError:
            continue
        parts = relative.with_suffix("").parts
        if all(part.isidentifier() for part in parts):
            return ".".join(parts)
    return None
