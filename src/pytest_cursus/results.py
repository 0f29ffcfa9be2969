"""What running a step produced: outcome, failure details, metrics and outputs.

One pydantic model, so the same object is shown in the terminal, attached to reports and
written as JSON.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

FailureKind = Literal[
    "exception",  # main() raised
    "exit",  # sys.exit(non-zero) or the process exited by itself without a report
    "signal",  # killed by a signal the plugin did not send (segfault, OOM killer)
    "timeout",
    "memory",
    "import",  # the script failed while being imported
    "no_main",
    "bad_signature",
    "input_modified",
    "expectation",
    "setup",  # the plugin could not prepare the step (data source, staging)
]


class StepFailure(BaseModel):
    kind: FailureKind
    message: str
    exception_type: str | None = None
    script_traceback: str | None = None


class OutputFile(BaseModel):
    path: str  # relative to the output's directory
    bytes: int


class StepMetrics(BaseModel):
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    import_seconds: float = 0.0
    main_seconds: float = 0.0
    memory_series: list[tuple[float, int]] = Field(default_factory=list)

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_bytes / 2**20


class StepResult(BaseModel):
    scenario: str
    step: str
    outcome: Literal["passed", "failed"]
    failure: StepFailure | None = None
    workspace: str
    outputs: dict[str, str] = Field(default_factory=dict)  # output name -> local path
    output_files: dict[str, list[OutputFile]] = Field(default_factory=dict)
    stdout_path: str | None = None
    stderr_path: str | None = None
    stderr_tail: str = ""
    metrics: StepMetrics = Field(default_factory=StepMetrics)
    return_summary: Any = None
    cached: bool = False  # taken from the step cache instead of running
    cache_key: str | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"
