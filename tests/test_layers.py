"""The package's layout holds its rule (docs/architecture.md): each layer imports only from
itself and the layers below it, only ``pytest_cursus.plugin`` imports pytest, no import cycles,
and no module reaches into another's private names.

The contracts live in pyproject.toml ([tool.importlinter]) and are checked by import-linter,
the tool made for it; the same check runs as ``lint-imports`` from the repository root.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "pytest_cursus"


def lint_imports(package_parent: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """import-linter with the repository's contracts, on the package found under ``package_parent``."""
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(REPO / 'pyproject.toml')!r}, no_cache=True, no_logo=True))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,  # import-linter puts the working directory first on sys.path
        env={"PYTHONPATH": str(package_parent), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layers_hold_and_no_import_cycles(tmp_path: Path) -> None:
    result = lint_imports(PACKAGE.parent, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        # a lower layer importing a higher one
        (
            "formats/contracts.py",
            "from pytest_cursus.run import pipeline",
            "pytest_cursus.formats is not allowed to import pytest_cursus.run",
        ),
        # pytest outside the plugin
        ("data/tabular.py", "import pytest", "pytest_cursus.data.tabular -> pytest"),
        # a cycle inside one layer
        (
            "cache/record.py",
            "from pytest_cursus.cache import store",
            "No cycles are allowed in pytest_cursus.cache",
        ),
    ],
)
def test_a_planted_violation_breaks_a_contract(tmp_path: Path, module: str, planted: str, broken: str) -> None:
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "pytest_cursus", ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "pytest_cursus" / module
    target.write_text(target.read_text() + f"\n{planted}\n")
    result = lint_imports(copy, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout


def test_no_module_imports_another_modules_private_names() -> None:
    """A name shared across modules is public; ``_name`` stays inside its module."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_cursus"):
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                private = [name for name in private if not name.startswith("__")]
                if private:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} imports {', '.join(private)}")
    assert found == []


def test_every_sub_package_is_a_layer_of_the_contract() -> None:
    """A new sub-package must be placed in a layer, or the rule silently does not cover it."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: tomli comes with pytest there
        import tomli as tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (layers,) = [contract["layers"] for contract in config["contracts"] if contract["type"] == "layers"]
    placed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    present = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    present |= {path.stem for path in PACKAGE.glob("*.py") if path.name != "__init__.py"}
    assert present == placed
