"""Running one step: stage its inputs, start its child process, supervise it, judge the result."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_cursus.errors import is_disk_full
from pytest_cursus.execution.in_process import run_in_process
from pytest_cursus.execution.launcher import FreshInterpreterLauncher, LaunchSpec, StepLauncher
from pytest_cursus.execution.pip_guard import check_framework_requirements, pip_findings
from pytest_cursus.execution.preload import preload_candidates
from pytest_cursus.execution.protocol import ChildReport, ChildRequest, read_report
from pytest_cursus.execution.step_progress import LogFollower, SilentProgress, StepProgress
from pytest_cursus.execution.supervisor import ProcessOutcome, ProcessSupervisor
from pytest_cursus.execution.workspace import (
    Fingerprint,
    StagingDeadline,
    StagingError,
    StagingTimeout,
    StepWorkspace,
    claim_workspace,
    copy_fingerprint,
    describe_changes,
    fingerprint,
    is_file_channel,
    make_read_only,
    make_writable,
    stage_input,
    stat_snapshot,
)
from pytest_cursus.formats.contract_files import ChannelSpec
from pytest_cursus.plan.scenario_plan import ChannelView, StepPlan
from pytest_cursus.results import ExecutorKind, OutputFile, StepFailure, StepMetrics, StepResult
from pytest_cursus.secret_env import SecretScrubber, mask_env, secret_names

STDERR_TAIL_LINES = 30
STDOUT_TAIL_LINES = 20  # print() debugging: what the script said last before it failed
_TAIL_BYTES = 64 * 1024
# rows of text tables are counted by streaming them; past this size a file's rows stay unknown
MAX_COUNTED_TEXT_BYTES = 1 << 30


class StepRunner:
    """Runs steps one at a time, each in its own child process and workspace."""

    def __init__(
        self,
        workspace_root: Path,
        launcher: StepLauncher | None = None,
        supervisor: ProcessSupervisor | None = None,
        progress: StepProgress | None = None,
    ) -> None:
        self.workspace_root = workspace_root
        self.launcher = launcher or FreshInterpreterLauncher()
        self.supervisor = supervisor or ProcessSupervisor()
        self.progress = progress or SilentProgress()
        self._claimed = False

    def run(
        self,
        step: StepPlan,
        input_data: Mapping[str, Path],
        *,
        in_process: bool = False,
        deadline: StagingDeadline | None = None,
    ) -> StepResult:
        """Run the script; ``input_data`` maps each wired input to the data presented at its path.

        The result says whether the script ran cleanly; ``expect:`` is judged by the caller, so
        that cached outputs are judged the same way.

        ``in_process`` (``--cursus-debug``) calls ``main()`` in this process, so a debugger
        works; an exception of the script then propagates, and no limit is enforced.

        Staging the inputs must end by ``deadline`` (the caller's, when it made the data: the step's
        timeout from when it began; else the step's timeout from now).

        The workspace root is claimed first (created and marked, or refused when it is someone
        else's directory), so a runner used on its own deletes only step directories of its own.
        """
        if not self._claimed:
            claim_workspace(self.workspace_root)
            self._claimed = True
        deadline = deadline or StagingDeadline(step.timeout)
        result = self._run(step, input_data, in_process, deadline)
        if result.failure is not None and result.failure.kind == "executor_lost":
            # the warm executor's parent died under the step, not because of it: once more
            return self._run(step, input_data, in_process, StagingDeadline(step.timeout))
        return result

    def _run(
        self, step: StepPlan, input_data: Mapping[str, Path], in_process: bool, deadline: StagingDeadline
    ) -> StepResult:
        """One attempt, in a workspace made afresh: stage, launch, measure, judge, post-check."""
        workspace = StepWorkspace.for_step(self.workspace_root, step.scenario, step.name)
        files = _StepFiles.of(step, workspace)
        result = files.unfinished_result(step)
        try:
            workspace.reset()
            framework = check_framework_requirements(step.contract.block.framework_requirements)
            unmet_framework, _ = pip_findings(step.name, framework)
            if unmet_framework and step.pip == "strict":
                result.failure = _pip_failure(unmet_framework)
                return result
            result.notes += unmet_framework
            staged = _stage(step, files, input_data, deadline)
        except StagingTimeout as exc:
            # what was copied is in this step's own workspace, which every run empties first
            result.failure = StepFailure(
                kind="timeout", message=f"{exc}; raise 'timeout:' on the step if this is expected"
            )
            return result
        except StagingError as exc:
            result.failure = StepFailure(kind="setup", message=f"could not stage input: {exc}")
            return result
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            writing = f" (writing {exc.filename})" if exc.filename else ""
            result.failure = StepFailure(
                kind="setup", message=f"no space left on {workspace.root} while preparing the step's workspace{writing}"
            )
            return result
        outcome, executor = self._launch(step, files, in_process)
        report = read_report(files.report_file)
        result.stderr_tail = tail(files.stderr)
        result.stdout_tail = tail(files.stdout, STDOUT_TAIL_LINES)
        result.metrics = _measure(outcome, report, staged.input_bytes, executor)
        result.return_summary = report.return_summary if report else None
        failure = judge(step, outcome, report, output_dir=files.output_dir)
        unmet_pins, pip_notes = pip_findings(step.name, report.pip_requests if report else [])
        if unmet_pins and step.pip == "strict" and outcome.killed_for is None:
            failure = _pip_failure(unmet_pins)  # the script's own failure, if any, followed from pip's exit code 1
        else:
            result.notes += unmet_pins
        result.notes += pip_notes
        leftovers = _leftover_note(
            step.name, [*(report.leftover_processes if report else []), *outcome.leftover_processes]
        )
        if leftovers is not None:
            result.notes.append(leftovers)
        # whatever the verdict: it tidies the workspace and host
        misbehaviour = _post_check(step, files, staged, input_data, result.notes)
        result.failure = failure if failure is not None else misbehaviour
        result.output_files = {name: list_files(path) for name, path in files.outputs.items()}
        result.outcome = "passed" if result.failure is None else "failed"
        # the child masked its report; the stderr tail and the notes (pip's arguments) are masked here
        return result.masked(SecretScrubber.for_step(step.env, step.secrets))

    def _launch(self, step: StepPlan, files: _StepFiles, in_process: bool) -> tuple[ProcessOutcome, ExecutorKind]:
        """Run the staged step to its end: a child process within the step's limits, or ``main()`` here."""
        if in_process:
            try:
                outcome = run_in_process(files.request_file, child_environment(step.env), files.workspace.root)
            except BaseException:
                # the script's exception goes to the debugger; its workspace stays removable
                make_writable(files.workspace.input_dir)
                raise
            return outcome, "in_process"
        process = self.launcher.launch(
            LaunchSpec(
                request_file=files.request_file,
                env=child_environment(step.env),
                cwd=files.workspace.root,
                stdout=files.stdout,
                stderr=files.stderr,
                preload=preload_candidates(step.script, step.module, step.python_path),
            )
        )
        memory = int(step.max_memory_mb * 2**20) if step.max_memory_mb else None
        if not self.progress.streams_output:
            return self.supervisor.supervise(process, timeout=step.timeout, max_memory_bytes=memory), process.executor
        mask = SecretScrubber.for_step(step.env, step.secrets)
        progress = self.progress
        with LogFollower(
            [files.stdout, files.stderr], lambda line: progress.output_line(step.scenario, step.name, mask.text(line))
        ):
            outcome = self.supervisor.supervise(process, timeout=step.timeout, max_memory_bytes=memory)
        return outcome, process.executor


@dataclass(frozen=True)
class _StepFiles:
    """Where one run of a step finds its inputs, puts its outputs and keeps its logs."""

    workspace: StepWorkspace
    inputs: dict[str, Path]  # input name -> local path the script reads
    outputs: dict[str, Path]  # output name -> local path the script writes

    @classmethod
    def of(cls, step: StepPlan, workspace: StepWorkspace) -> _StepFiles:
        contract = step.contract
        return cls(
            workspace,
            {name: workspace.input_path(name, channel.path) for name, channel in contract.inputs.items()},
            {name: workspace.output_path(name, channel.path) for name, channel in contract.outputs.items()},
        )

    @property
    def output_dir(self) -> Path:
        """Where the step writes: its one output's path, or the directory holding all of them."""
        if len(self.outputs) == 1:
            (path,) = self.outputs.values()
            return path if path.is_dir() else path.parent
        return self.workspace.output_dir

    @property
    def request_file(self) -> Path:
        return self.workspace.logs_dir / "request.json"

    @property
    def report_file(self) -> Path:
        return self.workspace.logs_dir / "report.json"

    @property
    def stdout(self) -> Path:
        return self.workspace.logs_dir / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.workspace.logs_dir / "stderr.log"

    def unfinished_result(self, step: StepPlan) -> StepResult:
        """The result as it stands before the step runs: failed, until the run says otherwise."""
        return StepResult(
            scenario=step.scenario,
            step=step.name,
            outcome="failed",
            workspace=str(self.workspace.root),
            outputs={name: str(path) for name, path in self.outputs.items()},
            stdout_path=str(self.stdout),
            stderr_path=str(self.stderr),
        )


@dataclass(frozen=True)
class _StagedInputs:
    """What staging recorded to check, after the run, that the script kept to its own paths."""

    sources_before: dict[str, Fingerprint]  # input name -> its source's content (user data, upstream outputs)
    # the step's own copies: by content with inputs_read_only (a write fails the step), else by
    # file metadata (a write is a note)
    inputs_before: Mapping[str, tuple[Any, ...]]  # relative path -> (size, ...)
    container_paths: ContainerPathWatch

    @property
    def input_bytes(self) -> int:
        return sum(entry[0] for entry in self.inputs_before.values())


def _stage(
    step: StepPlan, files: _StepFiles, input_data: Mapping[str, Path], deadline: StagingDeadline
) -> _StagedInputs:
    """Copy the inputs in (writable, unless ``inputs_read_only``), make the outputs' directories and
    write ``request.json``."""
    contract = step.contract
    sources_before = {}
    for name, data in input_data.items():
        check_time = deadline.checker(f"input {name!r} of step {step.name!r} ({data})")
        check_time()
        sources_before[name] = fingerprint(data, check_time)
        try:
            stage_input(
                data, files.inputs[name], as_file=is_file_channel(contract.inputs[name].path), check_time=check_time
            )
        except OSError as exc:  # shutil.Error too: copytree gathers its failures into one
            if not is_disk_full(exc):
                raise
            raise StagingError(
                f"no space left on {files.inputs[name]} while copying input {name!r} from {data}"
            ) from None
        view = step.input_views.get(name)
        if view is not None and view.file is not None and not (files.inputs[name] / view.file).exists():
            held = sorted(str(p.relative_to(files.inputs[name])) for p in files.inputs[name].rglob("*") if p.is_file())
            raise StagingError(
                f"input {name!r} points the script at {view.file!r} inside the channel, but its data ({data}) "
                f"holds no such file; it holds: {', '.join(held[:20]) or '(nothing)'}"
            )
    for name, path in files.outputs.items():
        (path.parent if is_file_channel(contract.outputs[name].path) else path).mkdir(parents=True, exist_ok=True)
    if step.inputs_read_only:
        make_read_only(files.workspace.input_dir)
    staged = _StagedInputs(
        sources_before=sources_before,
        inputs_before=(copy_fingerprint if step.inputs_read_only else stat_snapshot)(files.workspace.input_dir),
        container_paths=ContainerPathWatch.of(contract.inputs.values(), contract.outputs.values()),
    )
    files.request_file.write_text(_child_request(step, files).model_dump_json(indent=2), encoding="utf-8")
    return staged


def _child_request(step: StepPlan, files: _StepFiles) -> ChildRequest:
    # request.json is a file anyone may read: secret values reach the child through its
    # process environment only, and the child takes them from there
    return ChildRequest(
        step=step.name,
        script=str(step.script),
        module=step.module,
        python_path=[str(p) for p in step.python_path],
        input_paths=_as_the_script_sees(files.inputs, step.input_views),
        output_paths=_as_the_script_sees(files.outputs, step.output_views),
        environ_vars=mask_env(step.env, step.secrets),
        secret_env=secret_names(step.env, step.secrets),
        secret_mask=sorted(step.secrets.mask),
        secret_exempt=sorted(step.secrets.exempt),
        job_args=dict(step.job_args),
        report_path=str(files.report_file),
        pip=step.pip,
    )


def _as_the_script_sees(paths: Mapping[str, Path], views: Mapping[str, ChannelView]) -> dict[str, str]:
    """Channel name -> local path, re-keyed and pointed at a file inside where the scenario says so."""
    seen = {}
    for name, path in paths.items():
        view = views.get(name)
        seen[view.key if view else name] = view.path(str(path)) if view else str(path)
    return seen


def _measure(
    outcome: ProcessOutcome, report: ChildReport | None, input_bytes: int, executor: ExecutorKind
) -> StepMetrics:
    """What the step used: the supervisor's measures, with the child's own timings and RSS where it reported."""
    return StepMetrics(
        wall_seconds=outcome.wall_seconds,
        cpu_seconds=outcome.cpu_seconds,
        peak_rss_bytes=max(outcome.peak_rss_bytes, report.rss_at_exit_bytes if report else 0),
        import_seconds=report.import_seconds if report else 0.0,
        main_seconds=report.main_seconds if report else 0.0,
        read_bytes=outcome.read_bytes,
        write_bytes=outcome.write_bytes,
        disk_read_bytes=outcome.disk_read_bytes,
        disk_write_bytes=outcome.disk_write_bytes,
        input_bytes=input_bytes,
        cpu_count=available_cpus(),
        memory_series=outcome.memory_series,
        executor=executor,
    )


def _leftover_note(step: str, leftovers: list[Mapping[str, Any]]) -> str | None:
    """What the step left running when its process ended, all of it killed: what a container's end
    does too, and what a plain ``python script.py`` on this machine would not."""
    named = {int(process["pid"]): str(process["command"]) for process in leftovers}
    if not named:
        return None
    count = f"{len(named)} process{'es' if len(named) > 1 else ''}"
    listed = "; ".join(f"pid {pid}: {command}" for pid, command in named.items())
    return (
        f"step {step!r} left {count} running when its process ended ({listed}); killed, as the end of a "
        "container's entry process ends everything in it (outside a container it would have kept running)"
    )


def _pip_failure(unmet_pins: list[str]) -> StepFailure:
    return StepFailure(
        kind="pip",
        message="; ".join(unmet_pins) + " (--cursus-pip strict: nothing was installed; install the version the "
        "script asks for in the test environment, or run with --cursus-pip check to carry on with what is installed)",
    )


def _post_check(
    step: StepPlan, files: _StepFiles, staged: _StagedInputs, input_data: Mapping[str, Path], notes: list[str]
) -> StepFailure | None:
    """Whether the script wrote where it must not: container paths on this machine, the sources of
    its inputs, or (with ``inputs_read_only``) its own copies of them; a write into its own copies
    is otherwise appended to ``notes``, as a container allows it.

    Always runs to the end, whatever the verdict: it makes the inputs writable again and removes
    what the script created at container paths.
    """
    input_dir = files.workspace.input_dir
    changes = describe_changes(
        staged.inputs_before, (copy_fingerprint if step.inputs_read_only else stat_snapshot)(input_dir)
    )
    changed_sources = {
        name: changed
        for name, source in input_data.items()
        if (changed := _source_changes(staged.sources_before[name], source))
    }
    make_writable(input_dir)
    written = staged.container_paths.created()
    staged.container_paths.remove_created(written)
    if written:
        return StepFailure(
            kind="wrote_outside",
            message=f"step {step.name!r} wrote to container path(s) {', '.join(written)} on this machine instead "
            "of the local paths it was given; use input_paths[...]/output_paths[...] rather than hard-coded "
            "/opt/ml/... paths (the plugin maps them to the step's workspace). What it created was removed.",
        )
    if changed_sources:
        described = "; ".join(
            f"{name} at {input_data[name]}: {', '.join(changed)}" for name, changed in changed_sources.items()
        )
        return StepFailure(
            kind="input_modified",
            message=f"the data behind step {step.name!r}'s inputs changed while it ran ({described}); the user's "
            "data and other steps' outputs must never change: the script was given its own copy at "
            "input_paths[...], so something wrote to the source itself",
        )
    if changes and step.inputs_read_only:
        return StepFailure(
            kind="input_modified",
            message=f"step {step.name!r} wrote into its input directory ({'; '.join(changes)} under "
            f"{input_dir}). Inputs are read-only: write to output_paths[...] instead.",
        )
    if changes:
        notes.append(
            f"step {step.name!r} wrote into its own copy of its inputs ({'; '.join(changes)} under {input_dir}); "
            "allowed, as in a SageMaker container, whose inputs are local copies (the sources are unchanged); "
            "set inputs_read_only: true to make this a failure"
        )
    return None


def _source_changes(before: Fingerprint, source: Path) -> list[str]:
    try:
        return describe_changes(before, fingerprint(source))
    except StagingError as exc:  # it now holds a loop or a fifo: changed all the same
        return [str(exc)]


class ContainerPathWatch:
    """Notices a script that writes to its contract's container paths on the host itself."""

    def __init__(self, existed: dict[str, bool]) -> None:
        self.existed = existed

    @classmethod
    def of(cls, *channel_groups: Iterable[ChannelSpec]) -> ContainerPathWatch:
        paths: set[str] = set()
        for channels in channel_groups:
            for channel in channels:
                current = PurePosixPath(channel.path)
                while str(current) != "/":
                    paths.add(str(current))
                    current = current.parent
        return cls({path: os.path.lexists(path) for path in sorted(paths)})

    def created(self) -> list[str]:
        """The topmost container paths that did not exist before the step and do now."""
        new = [path for path, existed in self.existed.items() if not existed and os.path.lexists(path)]
        return [path for path in new if not any(path.startswith(other + "/") for other in new)]

    def remove_created(self, paths: list[str]) -> None:
        for path in paths:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def judge(
    step: StepPlan, outcome: ProcessOutcome, report: ChildReport | None, *, output_dir: Path | None = None
) -> StepFailure | None:
    """Why the step failed, in the user's terms, or None when it succeeded; ``output_dir`` (where
    the step writes) is named when the disk was full."""
    if outcome.killed_for == "timeout":
        return StepFailure(
            kind="timeout",
            message=f"step {step.name!r} exceeded its timeout of {step.timeout:g}s (killed after "
            f"{outcome.wall_seconds:.1f}s with its whole process tree); "
            "raise 'timeout:' on the step if this is expected",
        )
    if outcome.killed_for == "memory":
        return StepFailure(
            kind="memory",
            message=f"step {step.name!r} exceeded its memory limit of {step.max_memory_mb:g} MB "
            f"(peak RSS of its process tree reached {outcome.peak_rss_bytes / 2**20:.0f} MB; killed); "
            "raise 'max_memory_mb:' on the step if this is expected",
        )
    if report is None and outcome.parent_lost:
        return StepFailure(
            kind="executor_lost",
            message=f"the warm executor's parent process died while step {step.name!r} ran, and the step with it "
            "(not the script's doing, unless it kills its parent); rerun, or use --cursus-no-preload",
        )
    if report is None:
        if outcome.signal_name:
            return StepFailure(
                kind="signal",
                message=f"the process of step {step.name!r} was killed by {outcome.signal_name} "
                "before main() returned (a crash in native code, or the system's OOM killer); see its stderr",
            )
        if output_dir is not None and _disk_is_full(output_dir):
            return StepFailure(
                kind="disk_full",
                message=f"the process of step {step.name!r} exited with code {outcome.exit_status} before main() "
                f"returned, and there is no space left on {output_dir}: the full disk may have stopped it before it "
                "could write its report (its stderr, on the same disk, may be empty for the same reason)",
            )
        return StepFailure(
            kind="exit",
            message=f"the process of step {step.name!r} exited with code {outcome.exit_status} before main() "
            "returned (os._exit() or a crash); see its stderr",
        )
    if report.succeeded:
        return None
    if report.status == "raised" and report.no_space:
        return StepFailure(
            kind="disk_full",
            message=f"{_where_the_disk_filled(step, output_dir)} ({report.exception_type}: {report.exception_message})",
            exception_type=report.exception_type,
            script_traceback=report.traceback,
        )
    if report.status == "raised":
        return StepFailure(
            kind="exception",
            message=f"{report.exception_type}: {report.exception_message}",
            exception_type=report.exception_type,
            script_traceback=report.traceback,
        )
    if report.status == "import_failed":
        return StepFailure(
            kind="import",
            message=report.import_failure(step.script, step.module),
            exception_type=report.exception_type,
            script_traceback=report.traceback,
        )
    if report.status == "exited":
        return StepFailure(kind="exit", message=f"{report.detail}: exit code {report.exit_code} means failure")
    if report.status in ("no_main", "bad_signature"):
        return StepFailure(kind=report.status, message=report.detail or report.status)
    return StepFailure(kind="exit", message=f"unexpected child status {report.status}")


# free space below which a disk counts as the one that filled up: what the child's report left of the
# room it had set aside, or what a script that removed its half-written file gave back
_NEARLY_FULL_BYTES = 64 * 2**20


def _disk_is_full(path: Path) -> bool:
    try:
        info = os.statvfs(path)
    except OSError:
        return False
    free = info.f_bavail * info.f_frsize
    return free < _NEARLY_FULL_BYTES or free < info.f_blocks * info.f_frsize // 100


def _where_the_disk_filled(step: StepPlan, output_dir: Path | None) -> str:
    if output_dir is None or _disk_is_full(output_dir):
        return f"no space left on {output_dir or 'the disk'} while the step wrote its outputs"
    info = os.statvfs(output_dir)
    free = info.f_bavail * info.f_frsize / 2**20
    return (
        f"no space left on a disk step {step.name!r} wrote to; the disk of its outputs ({output_dir}) has "
        f"{free:,.0f} MB free now, so the full one may be another (a temporary directory?)"
    )


def child_environment(step_env: Mapping[str, str]) -> dict[str, str]:
    """The process environment: ours, plus the step's variables (scripts read os.environ too)."""
    env = dict(os.environ)
    for name in [name for name in env if name.startswith("PYTEST_")]:
        del env[name]  # the script is not a pytest test; don't let it think it is
    env.update(step_env)
    return env


def tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def list_files(path: Path) -> list[OutputFile]:
    """Every file of an output with its size, and its rows when it is a table file."""
    if path.is_file():
        return [_output_file(path, path.name)]
    if not path.is_dir():
        return []
    files = []
    for directory, _, names in os.walk(path):
        for name in names:
            file = Path(directory, name)
            files.append(_output_file(file, str(file.relative_to(path))))
    return sorted(files, key=lambda f: f.path)


def _output_file(file: Path, relative: str) -> OutputFile:
    size = file.stat().st_size
    return OutputFile(path=relative, bytes=size, rows=_rows(file, size))


def _rows(file: Path, size: int) -> int | None:
    from pytest_cursus.data.tabular import UnreadableTableError, count_rows, tabular_format

    fmt = tabular_format(file)
    if fmt is None or size == 0 or (fmt.kind != "parquet" and size > MAX_COUNTED_TEXT_BYTES):
        return None
    try:
        return count_rows(file)
    except (UnreadableTableError, OSError):
        return None  # an unreadable table is the edge check's to report, not the listing's
