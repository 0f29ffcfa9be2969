"""Telling a script that expects another file layout from a script that fails on the data.

A step run on generated data fails with a layout mismatch when its failure names a path inside a
generated input (as staged in the step's workspace, ``<workspace>/input/<name>/...``, or where it
was generated) that the generated data does not hold: ``FileNotFoundError: .../DATA/train/x.csv``
when the schema wrote ``DATA/part-00000.csv``. The fix is a ``layout:`` in that input's ``data:``
schema, not a change to the script. Fuzzing also asks that every script run failed the same way
(exception type and message): a failure that does not depend on the rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pytest_cursus.results import StepResult

_QUOTED = re.compile(r"""'([^']+)'|"([^"]+)\"""")
ADVICE = "docs/contracts.md"


def missing_input_path(result: StepResult, generated: Mapping[str, Path]) -> tuple[str, str] | None:
    """``(input name, path)`` when the failure names a path inside a generated input that was not generated."""
    failure = result.failure
    if result.passed or failure is None:
        return None
    staged = Path(result.workspace) / "input"
    for match in _QUOTED.finditer(failure.message):
        named = match.group(1) or match.group(2)
        for name, directory in generated.items():
            for root in (staged / name, directory):
                relative = _inside(named, root)
                if relative is not None and not (directory / relative).exists():
                    return name, named
    return None


def layout_advice(name: str, path: str, exception_type: str | None, *, fuzzing: bool) -> str:
    which = "every generated dataset failed the same way before reading any row" if fuzzing else "the step failed"
    return (
        f"{which} ({exception_type or 'error'}: {path}): the script expects a layout the schema of input {name} "
        f"does not describe; add `layout:` to its data: schema ({ADVICE})"
    )


def isolation_layout_mismatch(result: StepResult, generated: Mapping[str, Path]) -> str | None:
    """The layout advice for an isolation run's failure, or None."""
    found = missing_input_path(result, generated)
    if found is None or result.failure is None:
        return None
    return layout_advice(*found, result.failure.exception_type, fuzzing=False)


def fuzz_layout_mismatch(results: list[StepResult], generated: Mapping[str, Path]) -> str | None:
    """The layout advice when every script run failed alike (same exception, same message) on a missing input path."""
    if not results or any(result.passed for result in results) or len({_shape(result) for result in results}) != 1:
        return None
    found = missing_input_path(results[-1], generated)
    if found is None:
        return None
    return layout_advice(*found, results[-1].failure.exception_type, fuzzing=True)  # type: ignore[union-attr]


def _shape(result: StepResult) -> tuple[str | None, str]:
    # the exception type and its message without the run's own directories (each run has its own)
    failure = result.failure
    assert failure is not None
    return failure.exception_type, failure.message.replace(result.workspace, "<workspace>")


def _inside(named: str, root: Path) -> Path | None:
    try:
        return Path(named).relative_to(root)
    except ValueError:
        return None
