"""Importing a script in a child process and checking its ``main`` without running it.

The same child entry point as a step (``execution/child.py``) with ``check_only`` set: the
script is imported as a step would import it (by dotted name under a ``python_path`` root, or by
file), ``main`` is looked up and bound to the four arguments, and the child stops there.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from pytest_cursus.checks.missing_package import install_hint
from pytest_cursus.execution.launcher import FreshInterpreterLauncher, LaunchSpec, StepLauncher
from pytest_cursus.execution.pip_guard import check_framework_requirements, pip_findings
from pytest_cursus.execution.preload import preload_candidates
from pytest_cursus.execution.protocol import ChildReport, ChildRequest, read_report
from pytest_cursus.execution.step_runner import child_environment, tail
from pytest_cursus.execution.supervisor import ProcessOutcome, ProcessSupervisor
from pytest_cursus.formats.contracts import Contract
from pytest_cursus.plan.script_module import script_import
from pytest_cursus.secret_env import SecretScrubber, mask_env, secret_names

IMPORT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ImportCheck:
    """What the child saw: ``problem`` is None when the script imports and ``main`` fits."""

    problem: str | None
    signature: str | None = None
    traceback: str | None = None
    stderr_tail: str = ""
    import_seconds: float = 0.0
    # what importing it asked pip for that the environment does not meet, or could not check
    # (a problem instead under --cursus-pip strict)
    notes: tuple[str, ...] = ()


def check_import(
    script: Path,
    contract: Contract,
    *,
    module: str | None,
    python_path: tuple[Path, ...],
    env: Mapping[str, str],
    workdir: Path,
    timeout: float = IMPORT_TIMEOUT_S,
    launcher: StepLauncher | None = None,
    pip: str = "check",
) -> ImportCheck:
    """Import ``script`` in a child process under ``workdir`` (emptied first) and inspect ``main``.

    Without a ``module`` (a script found in ``--cursus-scripts``) it is imported as a step would
    import it: by its dotted name when it lives in a package (plan/script_module.py)."""
    if module is None:
        imported = script_import(script, python_path)
        module, python_path = imported.module, imported.python_path
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    request = _check_request(script, contract, module, python_path, env, report_path=workdir / "report.json")
    request.pip = pip  # type: ignore[assignment]  # one of PIP_POLICIES, checked by the option
    request_file = workdir / "request.json"
    request_file.write_text(request.model_dump_json(indent=2), encoding="utf-8")
    stderr = workdir / "stderr.log"
    process = (launcher or FreshInterpreterLauncher()).launch(
        LaunchSpec(
            request_file=request_file,
            env=child_environment(env),
            cwd=workdir,
            stdout=workdir / "stdout.log",
            stderr=stderr,
            preload=preload_candidates(script, module, python_path),
        )
    )
    outcome = ProcessSupervisor().supervise(process, timeout=timeout, max_memory_bytes=None)
    report = read_report(workdir / "report.json")
    hint = None
    if report is not None and report.exception_type == "ModuleNotFoundError":
        roots = (script.parent, *python_path)
        hint = install_hint(report.exception_message or "", contract.block.framework_requirements, roots)
    # the child masked its report; what the script printed while imported is masked here
    verdict = _verdict(script, module, timeout, outcome, report, SecretScrubber.for_step(env).text(tail(stderr)), hint)
    framework = check_framework_requirements(contract.block.framework_requirements)
    unmet_pins, others = pip_findings(contract.name, framework + (report.pip_requests if report else []))
    if unmet_pins and pip == "strict":
        return replace(verdict, problem="; ".join(unmet_pins) + " (--cursus-pip strict)")
    return replace(verdict, notes=(*unmet_pins, *others))


def _check_request(
    script: Path,
    contract: Contract,
    module: str | None,
    python_path: tuple[Path, ...],
    env: Mapping[str, str],
    *,
    report_path: Path,
) -> ChildRequest:
    return ChildRequest(
        step=contract.name,
        script=str(script),
        module=module,
        python_path=[str(path) for path in python_path],
        # never opened: main() is not called
        input_paths={name: channel.path for name, channel in contract.inputs.items()},
        output_paths={name: channel.path for name, channel in contract.outputs.items()},
        # as a step's request.json: secret values reach the child through its environment only
        environ_vars=mask_env(env),
        secret_env=secret_names(env),
        job_args={argument.attribute: argument.default for argument in contract.job_arguments},
        report_path=str(report_path),
        check_only=True,
    )


def _verdict(
    script: Path,
    module: str | None,
    timeout: float,
    outcome: ProcessOutcome,
    report: ChildReport | None,
    stderr_tail: str,
    hint: str | None = None,
) -> ImportCheck:
    """What the check found, in the user's terms: ``problem`` is None when the script passed."""
    if outcome.killed_for == "timeout":
        return ImportCheck(
            f"importing {script} did not finish within {timeout:g}s (killed): does it do work at import time?",
            stderr_tail=stderr_tail,
        )
    if report is None:
        return ImportCheck(
            f"the process importing {script} ended before it could report "
            f"({outcome.signal_name or f'exit code {outcome.exit_status}'}); see its stderr",
            stderr_tail=stderr_tail,
        )
    if report.status == "checked":
        return ImportCheck(None, signature=report.detail, import_seconds=report.import_seconds)
    if report.status == "import_failed":
        return ImportCheck(
            report.import_failure(script, module) + (f": {hint}" if hint else ""),
            traceback=report.traceback,
            stderr_tail=stderr_tail,
        )
    if report.status == "exited":
        return ImportCheck(f"{script}: {report.detail} (exit code {report.exit_code})", stderr_tail=stderr_tail)
    return ImportCheck(report.detail or f"{script}: {report.status}", stderr_tail=stderr_tail)
