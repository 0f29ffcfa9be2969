"""Contract items: ``contracts/x.step.yaml::TabularPreprocessing`` (with ``--cursus-contracts DIR``).

Each item finds the contract's entry point, imports it in a child process, checks that ``main``
takes the four arguments, and compares the keys the script reads with the contract
(:mod:`.contract_check`).

Which script a contract checks, first match wins:

1. the script a scenario step using this contract file runs (under ``--cursus-scenarios``;
   the step's ``script:``, or the entry point found in that scenario's ``scripts:`` and
   ``python_path:``), imported as that step imports it, with that step's env;
2. the entry point found in the ``--cursus-scripts`` directories (as ``<dir>/<entry_point>``,
   else the one file of that name below a directory).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_cursus.errors import ConfigError, ConfigErrors, CursusError
from pytest_cursus.formats.contracts import Contract, contract_stem, load_contract
from pytest_cursus.plan.scenario_plan import ScenarioPlan, StepPlan, load_scenario, looks_like_scenario
from pytest_cursus.plugin.items import CursusItem
from pytest_cursus.plugin.session import cursus_session
from pytest_cursus.reporting.failure_text import shown_path


class ContractMismatch(CursusError):
    pass


class ContractNote(pytest.PytestWarning):
    """A disagreement that does not fail the contract item (a declared env var the script never reads)."""


def skip_reason(contract: Contract) -> str | None:
    """Why a contract has no script of ours to check, or None when it has one."""
    if contract.block.container_entrypoint:
        command = " ".join(contract.block.container_entrypoint)
        return (
            f"contract {contract.name} declares container_entrypoint [{command}]: its container runs its own "
            "entrypoint, not a script of ours, so there is nothing to check"
        )
    if contract.entry_point is None:
        return (
            f"contract {contract.name} has no entry_point: its step runs no script of ours (a data-loading or "
            "registration interface), so there is nothing to check"
        )
    return None


@dataclass(frozen=True)
class ScriptUnderCheck:
    script: Path
    module: str | None
    python_path: tuple[Path, ...]
    env: dict[str, str]
    found_by: str  # how it was found, shown in the report


class ContractYamlFile(pytest.File):
    """A ``*.step.yaml`` or ``*.contract.yaml`` file: one item, named after the contract."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            contract = load_contract(self.path)
        except (ConfigError, ConfigErrors) as exc:
            yield InvalidContractItem.from_parent(self, name=contract_stem(self.path), error=exc)
            return
        yield ContractItem.from_parent(self, name=contract.name, contract=contract)


class ContractItem(CursusItem):
    """Checks one contract against its entry-point script."""

    def __init__(self, *, contract: Contract, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.contract = contract
        self.add_marker("cursus")
        self.add_marker("cursus_contract")

    def setup(self) -> None:
        # skipped in setup, so the skip is reported at the contract file (plugin/hooks.py)
        reason = skip_reason(self.contract)
        if reason is not None:
            pytest.skip(reason)

    def runtest(self) -> None:
        from pytest_cursus.checks.contract_check import check_script
        from pytest_cursus.execution.import_check import check_import
        from pytest_cursus.execution.pip_guard import CursusPipWarning

        under_check = self.locate_script()
        rootdir = self.config.rootpath
        problems: list[str] = []
        imported = check_import(
            under_check.script,
            self.contract,
            module=under_check.module,
            python_path=under_check.python_path,
            env=under_check.env,
            workdir=cursus_session(self.config).workspace_root() / "_contracts" / self.contract.name,
            launcher=cursus_session(self.config).launcher(),
            pip=cursus_session(self.config).options.pip,
        )
        for note in imported.notes:  # what a container's pip would have installed: the check still passes
            warnings.warn(CursusPipWarning(note), stacklevel=1)
            self.user_properties.append(("cursus_note", note))
        if imported.problem is not None:
            text = imported.problem
            if imported.traceback:
                text += "\n\n  Script traceback:\n" + _indent(imported.traceback.rstrip(), 4)
            elif imported.stderr_tail.strip():
                text += "\n\n  Last lines of stderr:\n" + _indent(imported.stderr_tail.rstrip(), 4)
            problems.append(text)
        findings = check_script(under_check.script, self.contract)
        problems += [finding.render(rootdir) for finding in findings if finding.level == "error"]
        notes = [finding for finding in findings if finding.level == "note"]
        self.user_properties += [("cursus_contract_note", note.render(rootdir)) for note in notes]
        if problems:
            problems += [note.render(rootdir) for note in notes]  # shown with the errors, marked "note:"
            raise ContractMismatch(
                f"contract {self.contract.name} ({shown_path(self.contract.path, rootdir)}) and its script "
                f"{shown_path(under_check.script, rootdir)} ({under_check.found_by}) disagree:\n"
                + "\n".join(f"  - {_indent(problem, 4).lstrip()}" for problem in problems)
            )
        self.user_properties.append(("cursus_main_signature", imported.signature or ""))
        for note in notes:  # a passing item shows its notes as warnings located at the script's line
            warnings.warn_explicit(
                ContractNote(f"contract {self.contract.name}: {note.message}"), ContractNote, str(note.path), note.line
            )

    def locate_script(self) -> ScriptUnderCheck:
        """The script to check; see the module docstring for the rule."""
        for plan in _scenario_plans(self.config):
            for step in plan.steps.values():
                if step.contract.path.resolve() == self.contract.path.resolve():
                    return _from_step(plan, step, self.config.rootpath)
        options = cursus_session(self.config).options
        wanted = self.contract.entry_point
        if wanted is None:  # setup() skips such a contract before its script is looked for
            raise ContractMismatch(f"contract {self.contract.name} has no entry_point: there is no script to check")
        for root in options.scripts:
            if (root / wanted).is_file():
                return self._standalone((root / wanted).resolve())
        matches = sorted(
            {
                path.resolve()
                for root in options.scripts
                if root.is_dir()
                for path in root.rglob(Path(wanted).name)
                if path.is_file()
            }
        )
        if len(matches) == 1:
            return self._standalone(matches[0])
        if len(matches) > 1:
            listed = ", ".join(str(shown_path(path, self.config.rootpath)) for path in matches)
            raise ContractMismatch(
                f"entry point {wanted!r} of contract {self.contract.name} is ambiguous in --cursus-scripts: {listed}"
            )
        searched = (
            ", ".join(str(shown_path(root, self.config.rootpath)) for root in options.scripts)
            or "no --cursus-scripts directory"
        )
        raise ContractMismatch(
            f"entry point {wanted!r} of contract {self.contract.name} "
            f"({shown_path(self.contract.path, self.config.rootpath)}) "
            f"not found: searched {searched}, and no scenario under --cursus-scenarios uses this contract; "
            "add the scripts directory with --cursus-scripts DIR"
        )

    def _standalone(self, script: Path) -> ScriptUnderCheck:
        env = {name: "" for name in self.contract.required_env}
        env.update(self.contract.optional_env)
        return ScriptUnderCheck(script, None, (), env, "found in --cursus-scripts")

    def explain(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
        if isinstance(excinfo.value, ContractMismatch):
            return str(excinfo.value)
        return super().explain(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.contract.line - 1, f"contract {self.contract.name}"


class InvalidContractItem(CursusItem):
    """Stands for a contract file that could not be read."""

    def __init__(self, *, error: ConfigError | ConfigErrors, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Without the traceback of the load: explain() says all there is, while pytest would format
        # that traceback first, repr'ing every frame's arguments (a parsed document among them),
        # and keep its frames alive for the whole session.
        self.error = error.with_traceback(None)
        self.add_marker("cursus")
        self.add_marker("cursus_contract")

    def runtest(self) -> None:
        raise self.error

    def explain(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
        if isinstance(excinfo.value, (ConfigError, ConfigErrors)):
            return f"invalid contract:\n{excinfo.value.render(self.config.rootpath)}"
        return None

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"invalid contract {self.path.name}"


def _from_step(plan: ScenarioPlan, step: StepPlan, rootdir: Path) -> ScriptUnderCheck:
    env = {name: "" for name in step.contract.required_env}
    env.update(step.env)
    return ScriptUnderCheck(
        step.script,
        step.module,
        step.python_path,
        env,
        f"run by step {step.name!r} of {shown_path(plan.path, rootdir)}",
    )


def _scenario_plans(config: pytest.Config) -> list[ScenarioPlan]:
    """Every valid scenario under ``--cursus-scenarios``, read once per session."""
    state = cursus_session(config)
    if state.scenario_plans is None:
        options = state.options
        files: set[Path] = set()
        for root in options.scenarios:
            candidates = [root] if root.is_file() else [*root.rglob("*.yaml"), *root.rglob("*.yml")]
            files.update(path.resolve() for path in candidates if looks_like_scenario(path))
        plans = []
        for path in sorted(files):
            try:
                plans.append(load_scenario(path, options.plan_options(), state.file_lookups()))
            except (ConfigError, ConfigErrors):
                continue  # reported by the scenario's own item
        state.scenario_plans = plans
    return state.scenario_plans


def _indent(text: str, spaces: int) -> str:
    return text.replace("\n", "\n" + " " * spaces)
