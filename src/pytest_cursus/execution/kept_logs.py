"""A failed step's logs, copied where they outlive its workspace.

A workspace lives under pytest's basetemp, of which pytest keeps the last three: the workspace a
failure points at is gone a few runs later. The logs of each failed step are copied to
``<root>/<scenario>/<step>/`` (``--cursus-keep-logs``; docs/execution.md says where by default),
secret values masked, as everything else the plugin stores of a step. A step that passes has its
copy removed: the directory holds the logs of the steps whose latest run failed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pytest_cursus.results import SecretMask, StepResult

KEPT_FILES = ("stdout.log", "stderr.log", "report.json", "request.json")


def keep_logs(result: StepResult, root: Path, mask: SecretMask) -> Path | None:
    """Copy the logs of ``result``'s workspace to ``root``/<scenario>/<step>/, replacing an earlier
    copy of the same step; None when the step has no logs (it never started) or they cannot be copied."""
    logs = Path(result.workspace) / "logs"
    if not logs.is_dir():
        return None
    target = root / result.scenario / result.step
    try:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in KEPT_FILES:
            if (logs / name).is_file():
                _copy_masked(logs / name, target / name, mask)
    except OSError:
        return None  # a full or read-only disk: the failure still points at the workspace
    return target


def _copy_masked(source: Path, target: Path, mask: SecretMask) -> None:
    """Line by line, so a log of any size is copied in bounded memory; the bytes that are not
    UTF-8 are kept as they are."""
    with open(source, "rb") as reading, open(target, "wb") as writing:
        for line in reading:
            text = line.decode("utf-8", errors="surrogateescape")
            writing.write(mask.text(text).encode("utf-8", errors="surrogateescape"))


def drop_kept_logs(root: Path, scenario: str, step: str) -> None:
    """Remove the logs kept of an earlier failure of a step that has now passed."""
    target = root / scenario / step
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
