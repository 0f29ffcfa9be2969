"""The project builder the tests share: contracts, scripts and scenarios laid out as in a user's repository.

A module of its own, not conftest.py: test modules import it by name, and `conftest` is the name of
every conftest.py (conftest_examples/ has six), so `from conftest import ...` gets whichever was
imported last.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from schema_agreement import assert_schema_accepts_what_the_loader_accepts


class PipelineProject:
    """Writes contracts, scripts and scenarios the way a user's repository holds them."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.root = pytester.path
        for folder in ("contracts", "scripts", "scenarios"):
            (self.root / folder).mkdir(exist_ok=True)

    def contract(
        self,
        step_type: str,
        *,
        entry_point: str | None = None,
        inputs: dict[str, Any] | None = None,
        outputs: dict[str, Any] | None = None,
        required_env: list[str] | None = None,
        optional_env: dict[str, str] | None = None,
        job_arguments: list[str] | None = None,
    ) -> Path:
        contract = {
            "entry_point": entry_point or f"{_snake(step_type)}.py",
            "inputs": inputs or {},
            "outputs": outputs if outputs is not None else {"out": {"path": "/opt/ml/processing/output"}},
            "arguments": {},
            "job_arguments": [{"flag": f"--{name}", "source": name} for name in job_arguments or []],
            "env_vars": {"required": required_env or [], "optional": optional_env or {}},
        }
        path = self.root / "contracts" / f"{_snake(step_type)}.step.yaml"
        path.write_text(yaml.safe_dump({"step_type": step_type, "contract": contract}, sort_keys=False))
        assert_schema_accepts_what_the_loader_accepts(path)
        return path

    def script(self, filename: str, source: str) -> Path:
        path = self.root / "scripts" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    def scenario(self, name: str, source: str) -> Path:
        """Writes scenarios/<name>.yaml; `contracts:` and `scripts:` default to this project's folders.

        A default is appended below the written lines, so the line numbers an error names are those
        of `source`; write `contracts: []` for a scenario without them. YAML that does not parse to
        a mapping is written as given.
        """
        path = self.root / "scenarios" / f"{name}.yaml"
        text = textwrap.dedent(source)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + self._folder_defaults(text, path.parent))
        assert_schema_accepts_what_the_loader_accepts(path)
        return path

    def _folder_defaults(self, text: str, scenario_dir: Path) -> str:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError:
            return ""
        if not isinstance(document, dict):
            return ""
        missing = [key for key in ("contracts", "scripts") if key not in document]
        lines = [f"{key}: [{Path(os.path.relpath(self.root / key, scenario_dir)).as_posix()}]\n" for key in missing]
        return ("" if not lines or text.endswith("\n") else "\n") + "".join(lines)

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    def step_dir(self, scenario: str, step: str) -> Path:
        return self.workspace / scenario / step

    def _args(self, args: tuple[str, ...]) -> list[str]:
        return [
            "--cursus-scenarios",
            "scenarios",
            "--cursus-workspace",
            str(self.workspace),
            "-p",
            "no:cacheprovider",
            *args,
        ]

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest(*self._args(args))

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """``pytest`` on the project in the background, in a session of its own (so a test can signal
        or kill it and everything below it), its output in ``log``; none of this run's PYTEST_* settings."""
        env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
        with open(log, "wb") as output:
            return subprocess.Popen(
                [sys.executable, "-m", "pytest", *self._args(args)],
                cwd=self.root,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def run_subprocess(self, *args: str, timeout: float | None = None) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*self._args(args), timeout=timeout)


def _snake(name: str) -> str:
    out = ""
    for index, char in enumerate(name):
        if char.isupper() and index and not name[index - 1].isupper():
            out += "_"
        out += char.lower()
    return out
