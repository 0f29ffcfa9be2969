"""Where an import of the scenario's own code lands: the files a module name stands for under
one of the scenario's roots (used by the step cache key and by the warm executor's preload)."""

from __future__ import annotations

from pathlib import Path


def module_files(target: Path, names: list[str], package_root: Path | None = None) -> list[Path]:
    """Files of module ``target`` (a ``.py`` or a package), its parent packages' ``__init__``
    (run by the import too), and ``names`` that are submodules (``from pkg import mod``)."""
    files = []
    if target.with_suffix(".py").is_file():
        files.append(target.with_suffix(".py"))
    elif (target / "__init__.py").is_file():
        files.append(target / "__init__.py")
        files += [target / f"{name}.py" for name in names if (target / f"{name}.py").is_file()]
        files += [target / name / "__init__.py" for name in names if (target / name / "__init__.py").is_file()]
    if files and package_root is not None:
        parent = target.parent
        while parent != package_root and package_root in parent.parents:
            if (parent / "__init__.py").is_file():
                files.append(parent / "__init__.py")
            parent = parent.parent
    return [file.resolve() for file in files]
