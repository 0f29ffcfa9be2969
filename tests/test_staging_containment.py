"""Staging cannot run away or be fooled: one session per workspace, a step whose inputs changed
while the run used them is not stored, a ``file:`` source is keyed and copied through the same
symlinks, loops and special files are refused, and staging ends with the step's timeout."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.data.s3.access import S3Access, S3Settings
from pytest_cursus.data.s3.uri import S3Limits, S3Uri
from pytest_cursus.execution.workspace import (
    StagingDeadline,
    StagingTimeout,
    WorkspaceInUse,
    claim_workspace,
    fingerprint,
    hold_workspace,
    release_workspace,
    stage_input,
)
from s3_fixtures import FaultProxy, S3Bucket

COPY_SCRIPT = """
import os, shutil

def main(input_paths, output_paths, environ_vars, job_args):
    shutil.copytree(input_paths["DATA"], os.path.join(output_paths["out"], "copy"))
"""


def copying_step(project: PipelineProject, source: str, *, timeout: float | None = None) -> None:
    """Scenario `one`, step `s`: copies its input `DATA` (from source `raw`) to its output."""
    project.contract("Step", entry_point="step.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script("step.py", COPY_SCRIPT)
    limit = f", timeout: {timeout}" if timeout is not None else ""
    project.scenario("one", f"data:\n  raw: {source}\nsteps:\n  s: {{contract: Step, inputs: {{DATA: raw}}{limit}}}\n")


# --- one session per workspace -----------------------------------------------------------------

WAITING_SCRIPT = """
import os, time

def main(input_paths, output_paths, environ_vars, job_args):
    open(environ_vars["STARTED"], "w").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(environ_vars["RELEASE"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    open(os.path.join(output_paths["out"], "done.txt"), "w").close()
"""


def test_a_second_session_on_a_workspace_in_use_is_refused_naming_the_first(project: PipelineProject) -> None:
    started, release = project.root / "started", project.root / "release"
    project.contract("Wait", entry_point="wait.py")
    project.script("wait.py", WAITING_SCRIPT)
    project.scenario("hold", f"steps:\n  w: {{contract: Wait, env: {{STARTED: {started}, RELEASE: {release}}}}}\n")
    command = [sys.executable, "-m", "pytest", *project._args(("-p", "no:randomly", "--cursus-no-cache"))]
    first = subprocess.Popen(command, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the first session never started its step"

        second = project.run_subprocess("--cursus-no-cache")

        assert second.ret == pytest.ExitCode.USAGE_ERROR
        second.stderr.fnmatch_lines(
            [
                f"*--cursus-workspace / cursus_workspace: the workspace {project.workspace} is in use by another "
                f"pytest-cursus session (pid {first.pid} on *); two sessions in one workspace would delete and "
                "regenerate each other's step directories and data: wait for that session to end, or give this one "
                "a workspace of its own",
            ]
        )
    finally:
        release.touch()
        output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output.decode()
    # the first session's step was left alone, and once it has ended the workspace is free again
    assert (project.step_dir("hold", "w") / "output" / "out" / "done.txt").is_file()
    project.run_subprocess("--cursus-no-cache").assert_outcomes(passed=1)


def test_a_workspace_held_by_another_process_is_refused_and_free_once_it_ends(tmp_path: Path) -> None:
    workspace = claim_workspace(tmp_path / "ws")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from pytest_cursus.execution.workspace import hold_workspace; "
            "hold_workspace(Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()",
            str(workspace),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(WorkspaceInUse, match=f"the workspace {workspace} is in use .*pid {holder.pid} on "):
            hold_workspace(workspace)
    finally:
        holder.communicate("")  # its end releases the lock, as a killed session's does
    assert hold_workspace(workspace) is True
    assert hold_workspace(workspace) is False  # this process holds it already: its own parts are let in
    release_workspace(workspace)


# --- a step whose inputs changed during the run is not stored ----------------------------------

EDITING_SCRIPT = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    flag = environ_vars["EDIT_ONCE"]
    if os.path.exists(flag):  # writes to the user's file itself, once: as another session would
        os.unlink(flag)
        with open(environ_vars["SOURCE"], "w") as handle:
            handle.write("edited")
    open(os.path.join(output_paths["out"], "done.txt"), "w").close()
"""

READING_SCRIPT = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    text = open(os.path.join(input_paths["DATA"], "raw.txt")).read()
    with open(os.path.join(output_paths["out"], "seen.txt"), "w") as handle:
        handle.write(text)
"""


def test_a_step_whose_input_changed_after_its_key_was_made_is_not_stored(project: PipelineProject) -> None:
    raw, flag = project.root / "raw.txt", project.root / "edit-once"
    raw.write_text("original")
    flag.touch()
    data = {"DATA": {"path": "/opt/ml/processing/input/data"}}
    project.contract("Edit", entry_point="edit.py", inputs=data)
    project.contract("Read", entry_point="read.py", inputs=data)
    project.script("edit.py", EDITING_SCRIPT)
    project.script("read.py", READING_SCRIPT)
    project.scenario(
        "changing",
        f"""
        data:
          raw: {{file: ../raw.txt}}
        steps:
          edit: {{contract: Edit, env: {{EDIT_ONCE: {flag}, SOURCE: {raw}}}, inputs: {{DATA: raw}}}}
          read: {{contract: Read, inputs: {{DATA: raw}}}}
        """,
    )
    # `edit` changes raw.txt under the run: `read`'s key was worked out from "original", it ran on "edited"
    first = project.run("-p", "no:randomly", "-W", "default")
    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines(
        [
            "*InputsChangedDuringRun: step 'read' of scenario 'changing': its input data changed between the key "
            "being worked out and the end of the step (input 'DATA' from data.raw.file: changed raw.txt)*",
        ]
    )
    raw.write_text("original")

    second = project.run("-p", "no:randomly", "-v")

    # nothing was stored for "original" that was made from "edited": `read` runs again, on "original"
    second.assert_outcomes(passed=2)
    assert "changing.yaml::read CACHED" not in second.stdout.str()
    assert (project.step_dir("changing", "read") / "output" / "out" / "seen.txt").read_text() == "original"


# --- file: sources through symlinks ------------------------------------------------------------


def test_editing_a_file_in_a_symlinked_subdirectory_of_a_source_reruns_the_step(project: PipelineProject) -> None:
    (project.root / "elsewhere").mkdir()
    (project.root / "elsewhere" / "part.csv").write_text("a\n1\n")
    (project.root / "raw").mkdir()
    (project.root / "raw" / "main.csv").write_text("a\n0\n")
    (project.root / "raw" / "linked").symlink_to(project.root / "elsewhere", target_is_directory=True)
    copying_step(project, "{file: ../raw}")
    project.run().assert_outcomes(passed=1)

    (project.root / "elsewhere" / "part.csv").write_text("a\n2\n")
    second = project.run("-v")

    second.assert_outcomes(passed=1)
    assert "one.yaml::s CACHED" not in second.stdout.str()
    copied = project.step_dir("one", "s") / "output" / "out" / "copy" / "linked" / "part.csv"
    assert copied.read_text() == "a\n2\n"


def test_the_key_and_the_copy_see_the_same_files_through_symlinks(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (tmp_path / "elsewhere" / "deeper").mkdir(parents=True)
    (tmp_path / "elsewhere" / "deeper" / "x.csv").write_text("x")
    (tmp_path / "one.csv").write_text("one")
    source.mkdir()
    (source / "own.csv").write_text("own")
    (source / "linked_dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (source / "linked_file.csv").symlink_to(tmp_path / "one.csv")
    target = tmp_path / "copy"

    stage_input(source, target, as_file=False)

    assert fingerprint(source) == fingerprint(target)
    assert sorted(fingerprint(source)) == ["linked_dir/deeper/x.csv", "linked_file.csv", "own.csv"]


def test_a_symlink_loop_in_a_source_is_refused_naming_the_source_the_link_and_the_loop(
    project: PipelineProject,
) -> None:
    (project.root / "raw" / "inner").mkdir(parents=True)
    (project.root / "raw" / "a.csv").write_text("a\n1\n")
    (project.root / "raw" / "inner" / "back").symlink_to("..", target_is_directory=True)
    copying_step(project, "{file: ../raw}")

    result = project.run()

    result.assert_outcomes(failed=1)
    raw = project.root / "raw"
    result.stdout.fnmatch_lines(
        [
            f"*data.raw.file: {raw}: the symlink {raw}/inner/back -> .. leads back to {raw}, "
            "a directory it is inside of (a loop*"
        ]
    )
    assert not (project.step_dir("one", "s") / "input" / "DATA" / "inner" / "back").exists()


def test_a_character_device_as_source_is_refused_not_read_for_ever(project: PipelineProject) -> None:
    copying_step(project, "{file: /dev/zero}")

    result = project.run_subprocess(timeout=120)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*data.raw.file: /dev/zero is a character device, not a regular file or a directory*"])


def test_a_fifo_inside_a_source_directory_is_refused_naming_it(project: PipelineProject) -> None:
    (project.root / "raw").mkdir()
    (project.root / "raw" / "a.csv").write_text("a\n1\n")
    os.mkfifo(project.root / "raw" / "pipe")
    copying_step(project, "{file: ../raw}")

    result = project.run_subprocess(timeout=120)

    result.assert_outcomes(failed=1)
    raw = project.root / "raw"
    result.stdout.fnmatch_lines([f"*data.raw.file: {raw}: {raw}/pipe is a fifo (named pipe), not a regular file*"])


# --- staging within the step's timeout ----------------------------------------------------------


def test_generating_data_past_the_step_timeout_fails_the_step_and_leaves_no_partial_data(
    project: PipelineProject,
) -> None:
    source = "{synthetic: {rows: 50000000, seed: 1, columns: {a: {type: float}, b: {type: int, min: 0, max: 9}}}}"
    copying_step(project, source, timeout=1)
    started = time.monotonic()

    result = project.run_subprocess("-p", "no:randomly", timeout=300)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*staging data.raw.synthetic exceeded the step timeout of 1 s*"])
    assert time.monotonic() - started < 60
    assert not (project.workspace / "one" / "_data" / "raw").exists()


def test_reading_a_big_file_source_past_the_step_timeout_fails_the_step(project: PipelineProject) -> None:
    with open(project.root / "big.bin", "wb") as handle:
        handle.truncate(32 << 30)  # sparse: 32 GiB that take no disk, and many seconds to read
    copying_step(project, "{file: ../big.bin}", timeout=3)

    result = project.run_subprocess(timeout=300)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*staging data.raw.file exceeded the step timeout of 3 s*"])  # hashing it for the key


def test_a_copy_stopped_by_the_deadline_leaves_no_file_behind(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"\x01" * (48 << 20))  # data, not holes: copied in several timed chunks
    ticks = iter([0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    deadline = StagingDeadline(5, clock=lambda: next(ticks))

    with pytest.raises(StagingTimeout, match="staging the source exceeded the step timeout of 5 s"):
        stage_input(source, tmp_path / "copy", as_file=False, check_time=deadline.checker("the source"))

    assert list((tmp_path / "copy").iterdir()) == []


def test_a_download_past_the_staging_deadline_is_stopped_and_leaves_no_partial_object(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    for index in range(4):
        s3_bucket.put(f"data/part-{index}.bin", os.urandom(300_000))
    slow = fault_proxy(delay=0.15)  # several seconds for the whole prefix
    settings = S3Settings(
        endpoint_url=slow.endpoint, cache_dir=tmp_path / "cache", progress=io.StringIO(), concurrency=1
    )
    access = S3Access(settings)
    deadline = StagingDeadline(0.5)
    started = time.monotonic()

    with pytest.raises(StagingTimeout, match="staging data.raw.s3 exceeded the step timeout of 0.5 s"):
        access.download(
            S3Uri.parse(s3_bucket.uri("data/")),
            S3Limits(),
            tmp_path / "data",
            check_time=deadline.checker("data.raw.s3"),
        )

    assert time.monotonic() - started < 30
    # what the download cache holds is whole objects only (the parts in flight finish): no temporary file
    cached = [p for p in (tmp_path / "cache" / "objects").rglob("*") if p.is_file()]
    assert all(p.stat().st_size == 300_000 for p in cached), [(p.name, p.stat().st_size) for p in cached]
    assert len(cached) < 4
