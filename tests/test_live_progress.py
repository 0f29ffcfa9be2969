"""Live progress lines while steps run (-v, long steps, -s, xdist, the notebook), the stdout tail of a
failed step, and its logs kept where they outlive pytest's basetemp."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus import run_scenario

CHAIN_SCRIPT = """
import os, time

def main(input_paths, output_paths, environ_vars, job_args):
    time.sleep(float(environ_vars.get("SLEEP", "0")))
    with open(os.path.join(output_paths["out"], "part.csv"), "w") as handle:
        handle.write("id\\n1\\n")
"""

# a ran line: "cursus: [2/3] chain::train passed in 0.4s (peak 31 MB) (as setup)"
RAN = r"in \d+\.\ds \(peak \d+(\.\d)? [MG]B\)"


@pytest.fixture
def chain(project: PipelineProject) -> PipelineProject:
    """prepare -> train -> evaluate, each writing one small table."""
    project.contract(
        "Writer",
        entry_point="writer.py",
        inputs={"upstream": {"path": "/opt/ml/processing/input/up", "required": False}},
    )
    project.script("writer.py", CHAIN_SCRIPT)
    project.scenario(
        "chain",
        """
        steps:
          prepare: {contract: Writer, env: {STEP: prepare}}
          train: {contract: Writer, env: {STEP: train}, inputs: {upstream: prepare.out}}
          evaluate: {contract: Writer, env: {STEP: evaluate}, inputs: {upstream: train.out}}
        """,
    )  # each its own env: same script on the same content would otherwise be one step (docs/caching.md)
    return project


def _cursus_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if line.startswith("cursus: [")]


def test_verbose_run_numbers_every_step_it_runs_including_setup_steps_and_cache_hits(chain: PipelineProject) -> None:
    chain.run("-k", "prepare and not compat").assert_outcomes(passed=1)  # prepare is now in the step cache
    result = chain.run("-v", "-k", "evaluate")
    result.assert_outcomes(passed=2)  # compat[train.out-evaluate.upstream] and evaluate
    lines = _cursus_lines(result)
    assert lines[0] == "cursus: [1/3] chain::prepare cached (as setup)"
    assert lines[1] == "cursus: [2/3] chain::train started (as setup)"
    assert re.fullmatch(rf"cursus: \[2/3\] chain::train passed {RAN} \(as setup\)", lines[2]), lines[2]
    assert lines[3] == "cursus: [3/3] chain::evaluate started"
    assert re.fullmatch(rf"cursus: \[3/3\] chain::evaluate passed {RAN}", lines[4]), lines[4]
    assert len(lines) == 5


def test_verbose_lines_leave_pytests_own_progress_line_intact(chain: PipelineProject) -> None:
    result = chain.run("-v", "--cursus-no-cache", "-k", "prepare and not compat")
    out = result.stdout.lines
    started = out.index("cursus: [1/1] chain::prepare started")
    assert out[started - 1].rstrip().endswith("chain.yaml::prepare"), "the item's line, ended before ours"
    assert out[started + 1].startswith("cursus: [1/1] chain::prepare passed")
    assert re.fullmatch(r"scenarios/chain\.yaml::prepare PASSED +\[100%\]", out[started + 2]), out[started + 2]


def test_a_quiet_run_shows_only_the_steps_that_ran_longer_than_the_threshold(chain: PipelineProject) -> None:
    chain.scenario(
        "chain",
        """
        steps:
          prepare: {contract: Writer}
          train: {contract: Writer, env: {SLEEP: "1.5"}, inputs: {upstream: prepare.out}}
        """,
    )
    report = chain.root / "report.json"
    result = chain.run("--cursus-no-cache", "--cursus-progress-after", "1", "--cursus-json", str(report))
    result.assert_outcomes(passed=3)
    lines = _cursus_lines(result)
    assert any(re.fullmatch(rf"cursus: \[\d/2\] chain::train passed {RAN}", line) for line in lines), lines
    walls = {step["step"]: step["metrics"]["wall_seconds"] for step in json.loads(report.read_text())["steps"]}
    # the quick step's line is there exactly when it too took longer than the threshold (a loaded machine)
    assert any("chain::prepare" in line for line in lines) == (walls["prepare"] > 1)
    assert not any("started" in line for line in lines)


def test_with_s_a_steps_output_is_streamed_prefixed_while_it_runs(chain: PipelineProject) -> None:
    go = chain.root / "go"
    chain.script(
        "talker.py",
        f"""
        import os, sys, time

        def main(input_paths, output_paths, environ_vars, job_args):
            print("first line", flush=True)
            print("to stderr", file=sys.stderr, flush=True)
            deadline = time.monotonic() + 60
            while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
                time.sleep(0.05)
            print("second line: " + ("go seen" if os.path.exists({str(go)!r}) else "no go"), flush=True)
        """,
    )
    chain.contract("Talker", entry_point="talker.py")
    chain.scenario("chain", "steps:\n  talk: {contract: Talker}\n")
    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-s", *chain._args(("--cursus-no-cache",))]
    process = subprocess.Popen(command, cwd=chain.root, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line.rstrip("\n"))
        if line.startswith("[talk] first line"):
            go.touch()  # the step is still waiting for this: the line came while it ran
    assert process.wait(timeout=120) == 0, "\n".join(seen)
    assert "[talk] to stderr" in seen
    assert "[talk] second line: go seen" in seen
    started = seen.index("cursus: [1/1] chain::talk started")
    finished = next(i for i, line in enumerate(seen) if line.startswith("cursus: [1/1] chain::talk passed"))
    assert started < seen.index("[talk] first line") < seen.index("[talk] second line: go seen") < finished


def test_under_xdist_the_controller_prints_the_workers_lines(chain: PipelineProject) -> None:
    result = chain.run_subprocess("-n", "2", "-v", "--cursus-no-cache")
    result.assert_outcomes(passed=5)
    lines = _cursus_lines(result)
    for step in ("prepare", "train", "evaluate"):
        assert any(
            re.fullmatch(rf"cursus: \[\d/3\] chain::{step} (passed {RAN}|shared)( \(as setup\))?", line)
            for line in lines
        ), (step, lines)
    assert sorted({line.split("]")[0] for line in lines}) == ["cursus: [1/3", "cursus: [2/3", "cursus: [3/3"]


# --- a failed step: its stdout, its kept logs ---------------------------------------------------------


PRINTING_CRASHER = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    print("rows seen: 3")
    print("token is " + os.environ["API_TOKEN"])
    raise ValueError("no label column")
"""


def test_a_failure_shows_the_stdout_tail_and_where_its_logs_are_kept(project: PipelineProject) -> None:
    project.contract("Crasher", entry_point="crasher.py")
    project.script("crasher.py", PRINTING_CRASHER)
    project.scenario("broken", "steps:\n  crash: {contract: Crasher, env: {API_TOKEN: sesame-1234}}\n")
    result = project.run()
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "Last lines of stdout" in text and "  rows seen: 3" in text
    assert "sesame-1234" not in text
    kept = next(line for line in result.stdout.lines if line.startswith("Logs kept in "))
    logs = Path(kept.removeprefix("Logs kept in ").split(" (")[0])
    assert logs == project.root / ".pytest_cache" / "d" / "cursus-logs" / "broken" / "crash"
    shutil.rmtree(project.workspace)  # what pytest does to a basetemp three runs later
    stdout = (logs / "stdout.log").read_text()
    assert "rows seen: 3" in stdout
    assert "sesame-1234" not in stdout and "token is ********" in stdout, "the kept copy is masked"
    assert (logs / "stderr.log").is_file()
    assert json.loads((logs / "report.json").read_text())["exception_message"] == "no label column"


def test_keep_logs_dir_is_used_and_a_step_that_passes_later_drops_its_copy(project: PipelineProject) -> None:
    project.contract("Flaky", entry_point="flaky.py")
    project.script(
        "flaky.py",
        """
        def main(input_paths, output_paths, environ_vars, job_args):
            print("mood:", environ_vars["MOOD"])
            if environ_vars["MOOD"] == "bad":
                raise RuntimeError("bad mood")
        """,
    )
    project.scenario("moody", "steps:\n  flaky: {contract: Flaky, env: {MOOD: bad}}\n")
    kept = project.root / "kept"
    project.run("--cursus-keep-logs", str(kept)).assert_outcomes(failed=1)
    assert (kept / "moody" / "flaky" / "stdout.log").read_text() == "mood: bad\n"
    project.scenario("moody", "steps:\n  flaky: {contract: Flaky, env: {MOOD: good}}\n")
    project.run("--cursus-keep-logs", str(kept)).assert_outcomes(passed=1)
    assert not (kept / "moody" / "flaky").exists(), "logs of a failure that is no longer the latest run"


# --- the notebook -----------------------------------------------------------------------------------------


def test_run_scenario_prints_a_line_on_stderr_as_each_step_starts_and_finishes(
    chain: PipelineProject, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run_scenario(chain.root / "scenarios" / "chain.yaml", no_cache=True, workspace=tmp_path / "ws")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cursus: ")]
    assert [line.split(" in ")[0] for line in lines] == [
        "cursus: [1/3] chain::prepare started",
        "cursus: [1/3] chain::prepare passed",
        "cursus: [2/3] chain::train started",
        "cursus: [2/3] chain::train passed",
        "cursus: [3/3] chain::evaluate started",
        "cursus: [3/3] chain::evaluate passed",
    ]
    assert os.listdir(tmp_path / "ws")
