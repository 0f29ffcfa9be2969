"""How a failed step is explained to the user: their script's problem, not our stack."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pytest_cursus.results import StepResult


def describe_failure(result: StepResult, *, ran_as_setup: bool = False) -> str:
    failure = result.failure
    if failure is None:
        return f"step {result.step!r} of scenario {result.scenario!r} passed"
    context = " (run as setup of a selected step)" if ran_as_setup else ""
    lines = [f"step {result.step!r} of scenario {result.scenario!r} failed{context}: {failure.message}"]
    if failure.script_traceback:
        lines += ["", "Script traceback:", textwrap.indent(failure.script_traceback.rstrip(), "  ")]
    if failure.kind not in ("expectation", "input_modified"):
        for name, text, path in (
            ("stdout", result.stdout_tail, result.stdout_path),
            ("stderr", result.stderr_tail, result.stderr_path),
        ):
            if text.strip():
                lines += ["", f"Last lines of {name} ({path}):", textwrap.indent(text.rstrip(), "  ")]
    if result.kept_logs is not None:
        # the workspace goes with pytest's basetemp a few runs later; this copy stays
        lines += ["", f"Logs kept in {result.kept_logs} (stdout.log, stderr.log, report.json)"]
    if Path(result.workspace).exists():
        lines += ["", f"Workspace kept for inspection: {result.workspace}"]
    else:
        lines += ["", "The step did not start, so it has no workspace."]
    return "\n".join(lines)


def shown_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (pytest's rootdir) when it is below it, else as it is."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
