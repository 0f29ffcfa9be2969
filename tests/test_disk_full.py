"""A full disk is said in one line naming the path and what was being done, never as a wall of
traceback: when the script fills it, when staging data fills it, and when the step cache's disk is
full (the step then keeps its outcome and the cache holds no half entry).

Each test fills a real disk: a tmpfs of 2 MB (tests/small_disk.py), skipped where mounting one is
not permitted.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.execution import child
from pytest_cursus.execution.workspace import WORKSPACE_MARKER
from small_disk import fill, small_disk

# writes 4 MB in 64 KB pieces: more than the 2 MB disk holds
FILLER = """
import os

def write_all(path):
    with open(path, "wb") as handle:
        for _ in range(64):
            handle.write(b"x" * 65536)

def main(input_paths, output_paths, environ_vars, job_args):
    write_all(os.path.join(output_paths["out"], "big.bin"))
"""

# writes 3 MB: fits the workspace on the ordinary disk, not a 2 MB step cache
WRITER = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(output_paths["out"], "big.bin"), "wb") as handle:
        handle.write(os.urandom(3 * 2**20))
"""

READER = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(output_paths["out"], "seen.txt"), "w") as handle:
        handle.write(",".join(sorted(os.listdir(input_paths["DATA"]))))
"""


@pytest.fixture
def workspace_on_small_disk(project: PipelineProject) -> Iterator[PipelineProject]:
    with small_disk(project.workspace):
        yield project


def one_step(project: PipelineProject, script: str, data: str | None = None) -> None:
    inputs = {"DATA": {"path": "/opt/ml/processing/input/data"}} if data else None
    project.contract("Step", entry_point="step.py", inputs=inputs)
    project.script("step.py", script)
    wiring = ", inputs: {DATA: raw}" if data else ""
    project.scenario("full", f"{textwrap.dedent(data or '')}\nsteps:\n  only: {{contract: Step{wiring}}}\n")


def failure_section(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "full::only" in line and line.startswith("_"))
    end = next(i for i, line in enumerate(lines) if i > start and line.startswith("="))
    return lines[start + 1 : end]


def test_a_script_that_fills_the_disk_fails_naming_its_output_directory_and_its_last_frames(
    workspace_on_small_disk: PipelineProject,
) -> None:
    project = workspace_on_small_disk
    one_step(project, FILLER)
    report = project.root / "run.json"
    result = project.run("--cursus-json", str(report))
    result.assert_outcomes(failed=1)
    output = project.step_dir("full", "only") / "output" / "out"
    result.stdout.fnmatch_lines(
        [
            f"step 'only' of scenario 'full' failed: no space left on {output} while the step wrote its outputs "
            "(OSError: [Errno 28] No space left on device)",
            "Script traceback:",
            "*step.py*, line 7, in write_all",
            '*handle.write(b"x" * 65536)',
            "  OSError: [Errno 28] No space left on device",
        ]
    )
    section = failure_section(result.stdout.str())
    assert len(section) < 20, "one line and the script's last frames, not a wall:\n" + "\n".join(section)
    assert not any("see its stderr" in line or "During handling" in line for line in section)
    (step,) = json.loads(report.read_text())["steps"]
    assert step["failure"]["kind"] == "disk_full"
    logs = project.step_dir("full", "only") / "logs"
    assert (logs / "report.json").is_file(), "the child wrote its report in the room it had set aside"
    assert not (logs / "report.json.reserve").exists()


@pytest.mark.parametrize("shape", ["file", "directory"])
def test_staging_an_input_larger_than_the_disk_fails_the_step_naming_the_source_and_the_path(
    workspace_on_small_disk: PipelineProject, shape: str
) -> None:
    project = workspace_on_small_disk
    if shape == "file":
        source = project.root / "raw.bin"
        source.write_bytes(bytes(3 * 2**20))
    else:  # shutil.copytree gathers each file's failure into one shutil.Error
        source = project.root / "raw"
        source.mkdir()
        for index in range(3):
            (source / f"part-{index}.bin").write_bytes(bytes(2**20))
    one_step(project, READER, data=f"data:\n  raw: {{file: ../{source.name}}}")
    result = project.run()
    result.assert_outcomes(failed=1)
    target = project.step_dir("full", "only") / "input" / "DATA"
    result.stdout.fnmatch_lines(
        [
            f"step 'only' of scenario 'full' failed: could not stage input: no space left on {target} "
            f"while copying input 'DATA' from {source}",
        ]
    )
    assert len(failure_section(result.stdout.str())) < 6
    assert "Traceback" not in result.stdout.str()


def test_generating_synthetic_data_on_a_full_disk_fails_the_step_naming_the_source(
    workspace_on_small_disk: PipelineProject,
) -> None:
    project = workspace_on_small_disk
    data = """
    data:
      raw:
        synthetic:
          rows: 200000
          format: csv
          columns: {id: {type: int, unique: true}, amount: {type: float, min: 0, max: 100}}
    """
    one_step(project, READER, data=data)
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*failed: data.raw.synthetic: no space left on {project.workspace / 'full' / '_data' / 'raw'} while "
            "generating its data"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_workspace_whose_disk_is_already_full_fails_the_step_in_one_line(
    workspace_on_small_disk: PipelineProject,
) -> None:
    """A workspace from an earlier run, on a disk that has filled up since."""
    project = workspace_on_small_disk
    (project.workspace / WORKSPACE_MARKER).write_text("created by pytest-cursus\n")
    fill(project.workspace / "filler.bin")
    one_step(project, WRITER)
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"step 'only' of scenario 'full' failed: no space left on {project.step_dir('full', 'only')} while "
            "preparing the step's workspace",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_full_step_cache_warns_and_the_step_keeps_its_passed_outcome(project: PipelineProject) -> None:
    one_step(project, WRITER)
    with small_disk(project.root / "cache") as cache:
        result = project.run("--cursus-cache-dir", str(cache), "-W", "always")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [f"*CacheEntryNotStored: step cache full at {cache}: only not stored (no space left on its disk*"]
        )
        assert list((cache / "tmp").iterdir()) == [], "the half-written entry is removed"
        assert list((cache / "entries").iterdir()) == []


def test_outputs_larger_than_the_cap_are_not_stored_and_nothing_is_copied_first(project: PipelineProject) -> None:
    """The cache is on a 2 MB disk: had the 3 MB outputs been copied before the cap was checked,
    the disk would have filled and said so."""
    one_step(project, WRITER)
    with small_disk(project.root / "cache") as cache:
        result = project.run("--cursus-cache-dir", str(cache), "--cursus-cache-max-mb", "1", "-W", "always")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "*CacheEntryNotStored: only's outputs take 3.0 MB, more than the step cache's cap of 1.0 MB; "
                "not cached (raise --cursus-cache-max-mb, or cache_max_mb of the notebook API, to * or more to "
                "keep them)"
            ]
        )
        assert "step cache full" not in result.stdout.str()
        assert list((cache / "tmp").iterdir()) == [] and list((cache / "entries").iterdir()) == []


def test_a_report_longer_than_the_room_set_aside_is_written_without_its_traceback_head(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", size="1m") as disk:
        report = disk / "report.json"
        child.reserve_report_space(str(report))
        fill(disk / "filler.bin")
        traceback = "\n".join(f"  frame {number} " + "x" * 100 for number in range(4000))  # 400 KB: more than the room
        child.write_report(str(report), {"status": "raised", "traceback": traceback, "return_summary": "big"})
        written = json.loads(report.read_text())
        assert written["traceback"].splitlines() == traceback.splitlines()[-20:]
        assert written["return_summary"] is None and written["status"] == "raised"
        assert sorted(path.name for path in disk.iterdir()) == ["filler.bin", "report.json"], "no reserve, no temp"
