"""What a script imports, read from its import statements: the scenario's own files it imports
(hashed into the step cache key) and the outside modules it imports when loaded (what the warm
executor preloads). One reading of each file answers both."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pytest_cursus.execution.script_imports import local_files, third_party_modules


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _names(root: Path, paths: list[Path]) -> list[str]:
    return [path.relative_to(root.resolve()).as_posix() for path in paths]


def test_local_modules_imported_inside_functions_are_hashed_but_their_imports_are_not_preloaded(
    tmp_path: Path,
) -> None:
    _write(
        tmp_path,
        {
            "step.py": """
                import numpy
                def main():
                    import lazy_helper
                    import xgboost
            """,
            "lazy_helper.py": "import sklearn\n",
        },
    )
    script = tmp_path / "step.py"
    assert _names(tmp_path, local_files(script, None, [])) == ["lazy_helper.py", "step.py"]
    assert third_party_modules(script, None, []) == ("numpy",), "an import inside main() runs only when called"


def test_relative_imports_inside_a_package_reach_its_modules_for_both_answers(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "src/churn/__init__.py": "",
            "src/churn/features.py": "import scipy.stats\n",
            "src/churn/steps/__init__.py": "",
            "src/churn/steps/build.py": "from ..features import encode\nfrom . import sibling\n",
            "src/churn/steps/sibling.py": "import pyarrow.parquet\n",
        },
    )
    script, roots = tmp_path / "src/churn/steps/build.py", [tmp_path / "src"]
    assert _names(tmp_path, local_files(script, "churn.steps.build", roots)) == [
        "src/churn/__init__.py",
        "src/churn/features.py",
        "src/churn/steps/__init__.py",
        "src/churn/steps/build.py",
        "src/churn/steps/sibling.py",
    ]
    assert set(third_party_modules(script, "churn.steps.build", roots)) == {"scipy.stats", "pyarrow.parquet"}


def test_the_packages_of_a_script_run_by_module_name_are_hashed_and_their_imports_preloaded(tmp_path: Path) -> None:
    # importing churn.steps.build runs churn/__init__.py first: the preloader used to skip it
    _write(
        tmp_path,
        {
            "src/churn/__init__.py": "import boto3\n",
            "src/churn/steps/__init__.py": "",
            "src/churn/steps/build.py": "import json\n",
        },
    )
    script, roots = tmp_path / "src/churn/steps/build.py", [tmp_path / "src"]
    assert "src/churn/__init__.py" in _names(tmp_path, local_files(script, "churn.steps.build", roots))
    assert third_party_modules(script, "churn.steps.build", roots) == ("boto3", "json")


def test_importing_a_submodule_of_a_local_package_runs_the_package_init(tmp_path: Path) -> None:
    # the preloader used to read pkg/sub.py only, not the pkg/__init__.py the import also runs
    _write(tmp_path, {"step.py": "import pkg.sub\n", "pkg/__init__.py": "import pandas\n", "pkg/sub.py": ""})
    script = tmp_path / "step.py"
    assert _names(tmp_path, local_files(script, None, [])) == ["pkg/__init__.py", "pkg/sub.py", "step.py"]
    assert third_party_modules(script, None, []) == ("pandas",)


def test_a_compiled_submodule_of_a_local_package_still_counts_the_package_init(tmp_path: Path) -> None:
    # the step key used to hash nothing for `import pkg.fast` when pkg/fast is an extension module
    _write(tmp_path, {"step.py": "import pkg.fast\n", "pkg/__init__.py": "import pandas\n"})
    (tmp_path / "pkg" / "fast.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    script = tmp_path / "step.py"
    assert _names(tmp_path, local_files(script, None, [])) == ["pkg/__init__.py", "step.py"]
    assert third_party_modules(script, None, []) == ("pandas",)


def test_imports_under_try_except_import_error_count_on_both_branches(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "step.py": """
                try:
                    import ujson as json
                except ImportError:
                    from fallback_json import loads
                if True:
                    import numpy
            """,
            "fallback_json.py": "import simplejson\n",
        },
    )
    script = tmp_path / "step.py"
    assert _names(tmp_path, local_files(script, None, [])) == ["fallback_json.py", "step.py"]
    assert third_party_modules(script, None, []) == ("ujson", "numpy", "simplejson")


def test_import_module_with_a_literal_name_is_an_import(tmp_path: Path) -> None:
    # neither walker read these: editing plugin_step.py did not rerun the step
    _write(
        tmp_path,
        {
            "step.py": """
                import importlib
                from importlib import import_module
                backend = importlib.import_module("pandas")
                def main():
                    steps = import_module("plugin_step")
                    dynamic = importlib.import_module(name_from_config)
            """,
            "plugin_step.py": "",
        },
    )
    script = tmp_path / "step.py"
    assert _names(tmp_path, local_files(script, None, [])) == ["plugin_step.py", "step.py"]
    assert third_party_modules(script, None, []) == ("importlib", "importlib.import_module?", "pandas")


def test_a_local_module_shadows_an_installed_one_of_the_same_name(tmp_path: Path) -> None:
    _write(tmp_path, {"step.py": "import yaml\nfrom pandas import DataFrame\n", "yaml.py": "import requests\n"})
    script = tmp_path / "step.py"
    assert _names(tmp_path, local_files(script, None, [])) == ["step.py", "yaml.py"]
    assert third_party_modules(script, None, []) == ("pandas", "pandas.DataFrame?", "requests")


def test_an_edited_module_is_read_again_in_the_same_process(tmp_path: Path) -> None:
    # the preloader used to remember a script's modules until the script itself changed
    _write(tmp_path, {"step.py": "import helper\n", "helper.py": "import numpy\n"})
    script = tmp_path / "step.py"
    assert third_party_modules(script, None, []) == ("numpy",)
    _write(tmp_path, {"helper.py": "import numpy\nimport second_helper\n", "second_helper.py": "import scipy\n"})
    assert third_party_modules(script, None, []) == ("numpy", "scipy")
    assert _names(tmp_path, local_files(script, None, [])) == ["helper.py", "second_helper.py", "step.py"]


def test_a_script_that_does_not_parse_imports_nothing_but_itself(tmp_path: Path) -> None:
    _write(tmp_path, {"step.py": "import numpy\ndef broken(:\n"})
    script = tmp_path / "step.py"
    assert _names(tmp_path, local_files(script, None, [])) == ["step.py"]
    assert third_party_modules(script, None, []) == ()
