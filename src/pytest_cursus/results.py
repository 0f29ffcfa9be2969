"""What running a step produced: outcome, failure details, metrics and outputs.

One pydantic model, so the same object is shown in the terminal, attached to reports and
written as JSON.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

FailureKind = Literal[
    "exception",  # main() raised
    "disk_full",  # the script ran out of disk space (ENOSPC) while it wrote
    "exit",  # sys.exit(non-zero) or the process exited by itself without a report
    "signal",  # killed by a signal the plugin did not send (segfault, OOM killer)
    "timeout",
    "memory",
    "import",  # the script failed while being imported
    "pip",  # --cursus-pip strict: the script (or its contract) asked for a requirement the environment does not meet
    "no_main",
    "bad_signature",
    "input_modified",
    "wrote_outside",  # wrote to a hard-coded container path on the host
    "expectation",
    "setup",  # the plugin could not prepare the step (data source, staging)
    "hook",  # a pytest_cursus_* hook implementation raised (run/hookspecs.py)
    "executor_lost",  # the warm executor's parent died while the step ran (it is run once more)
]


# how a step's process started (execution/launcher.py)
ExecutorKind = Literal["fresh", "forked", "in_process"]


class SecretMask(Protocol):
    """What replaces secret values in text and in JSON-like values (``secret_env.SecretScrubber``)."""

    def text(self, text: str) -> str: ...

    def value(self, value: Any) -> Any: ...


class StepFailure(BaseModel):
    kind: FailureKind
    message: str
    exception_type: str | None = None
    script_traceback: str | None = None

    def masked(self, mask: SecretMask) -> StepFailure:
        traceback = mask.text(self.script_traceback) if self.script_traceback else self.script_traceback
        return self.model_copy(update={"message": mask.text(self.message), "script_traceback": traceback})


class OutputFile(BaseModel):
    path: str  # relative to the output's directory
    bytes: int
    rows: int | None = None  # data rows of a table file (Parquet from its footer); None: not a table or unreadable


class StepMetrics(BaseModel):
    """What the step's whole process tree used, measured by the parent."""

    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # user + system, every process of the tree
    peak_rss_bytes: int = 0  # of the summed RSS of the tree
    import_seconds: float = 0.0
    main_seconds: float = 0.0
    # bytes passed through read()/write() calls (page cache or not; files, pipes, sockets)
    read_bytes: int = 0
    write_bytes: int = 0
    # bytes that reached the storage layer (often 0 for reads served from the page cache)
    disk_read_bytes: int = 0
    disk_write_bytes: int = 0
    input_bytes: int = 0  # size of the staged inputs
    cpu_count: int = 1  # CPUs the step could use (its affinity), for "could use more cores"
    # (seconds since start, RSS bytes); at most MEMORY_SERIES_POINTS, downsampled keeping peaks
    memory_series: list[tuple[float, int]] = Field(default_factory=list)
    # how the step's process started: "fresh" interpreter, "forked" from the warm executor's
    # preloaded parent, or "in_process" (--cursus-debug: no process of its own)
    executor: ExecutorKind = "fresh"

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_bytes / 2**20

    @property
    def cpu_utilisation(self) -> float:
        """Average cores busy: 1.0 is one core fully used for the whole wall time."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


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
    stdout_tail: str = ""
    # where a failed step's logs were copied, to outlive the workspace (--cursus-keep-logs)
    kept_logs: str | None = None
    metrics: StepMetrics = Field(default_factory=StepMetrics)
    return_summary: Any = None
    cached: bool = False  # taken from the step cache instead of running
    produced_by_run: str | None = None  # for a cached result: the run id that executed the step
    cache_key: str | None = None
    # why it ran rather than came from the step cache: the key parts that changed since its last entry
    # ("script changed", "inputs changed: data_input"), "not in cache", "--cursus-no-cache"
    run_reason: str | None = None
    # what the step did that a container allows but the user should know: writes into its own
    # input copies, pip requirements the environment does not meet
    notes: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    def masked(self, mask: SecretMask) -> StepResult:
        """A copy with secret values masked in what it quotes of the script and its environment:
        the failure, the stderr and stdout tails, the return value and the notes."""
        return self.model_copy(
            update={
                "failure": self.failure.masked(mask) if self.failure else None,
                "stderr_tail": mask.text(self.stderr_tail),
                "stdout_tail": mask.text(self.stdout_tail),
                "return_summary": mask.value(self.return_summary),
                "notes": [mask.text(note) for note in self.notes],
            }
        )

    def output_totals(self) -> dict[str, tuple[int, int, int | None]]:
        """Output name -> (files, bytes, rows); rows is None when no file of it is a readable table."""
        totals: dict[str, tuple[int, int, int | None]] = {}
        for name in self.outputs or self.output_files:
            files = self.output_files.get(name, [])
            counted = [f.rows for f in files if f.rows is not None]
            totals[name] = (len(files), sum(f.bytes for f in files), sum(counted) if counted else None)
        return totals
