"""The two files a step's child process reads and writes: ``request.json`` and ``report.json``.

The parent validates both with these models; the child reads and writes them with the plain
``json`` module so that starting a step costs no pydantic import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ChildStatus = Literal["returned", "exited", "raised", "import_failed", "no_main", "bad_signature", "checked"]


class ChildRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: str
    script: str
    module: str | None = None
    python_path: list[str] = Field(default_factory=list)
    input_paths: dict[str, str]
    output_paths: dict[str, str]
    environ_vars: dict[str, str]  # secret values masked: the child reads them from its environment
    secret_env: list[str] = Field(default_factory=list)
    # the scenario's `secrets:`: the child masks what it reports by the same rule (secret_env.SecretNames)
    secret_mask: list[str] = Field(default_factory=list)
    secret_exempt: list[str] = Field(default_factory=list)
    job_args: dict[str, Any]
    report_path: str
    check_only: bool = False  # import the script and check main()'s signature without calling it
    pip: Literal["check", "strict", "allow"] = "check"  # what a pip install the script runs does


class ChildReport(BaseModel):
    """What happened inside the child, as far as Python could tell before it exited."""

    model_config = ConfigDict(extra="ignore")

    status: ChildStatus
    exit_code: int | None = None
    exception_type: str | None = None
    exception_message: str | None = None
    traceback: str | None = None
    # the exception was a full disk (ENOSPC, in it or its chain); the traceback then holds only the
    # script's last frames (execution/child.py)
    no_space: bool = False
    detail: str | None = None
    # an import that failed outside the script: the package whose __init__.py failed, and the
    # file and line of the failed import (execution/child.py)
    failed_package: str | None = None
    imported_by: str | None = None
    return_summary: Any = None
    import_seconds: float = 0.0
    main_seconds: float = 0.0
    # the child's own RSS when main() had returned: a floor for the peak of a step that ended
    # before the supervisor's first sample (a forked step can take a millisecond)
    rss_at_exit_bytes: int = 0
    # what the script asked pip for, and whether the environment meets it (execution/pip_guard.py)
    pip_requests: list[dict[str, Any]] = Field(default_factory=list)
    # processes the script left running when main() was done, killed by the child before it
    # exited: {"pid", "command"} each (execution/process_lifetime.py)
    leftover_processes: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "returned" or (self.status == "exited" and self.exit_code == 0)

    def import_failure(self, script: Path | str, module: str | None) -> str:
        """``importing <script> failed: ...`` for an ``import_failed`` report, naming the package whose
        ``__init__.py`` failed and the file that imported a missing module."""
        what = f"{script} (as {module})" if module else str(script)
        where = f" in {self.failed_package}" if self.failed_package else ""
        by = f", imported by {self.imported_by}" if self.imported_by else ""
        return f"importing {what} failed{where}: {self.exception_type}: {self.exception_message}{by}"


def read_report(path: Path) -> ChildReport | None:
    """The child's ``report.json``, or None when it wrote none (it died first) or a broken one."""
    try:
        return ChildReport.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None
