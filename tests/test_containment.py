"""The plugin touches only what is its own: a workspace it did not create is refused, and a
symlink a script plants never leads it to change a user's file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pipeline_project import PipelineProject

PLANTING_SCRIPT = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(output_paths["out"], "data.txt"), "w") as handle:
        handle.write("ok")
    os.symlink(environ_vars["TARGET"], os.path.join(output_paths["out"], "planted"))
    os.symlink(environ_vars["TARGET"], os.path.join(input_paths["DATA"], "planted"))
    os.symlink(os.path.dirname(environ_vars["TARGET"]), os.path.join(input_paths["DATA"], "planted_dir"))
"""


def one_step(project: PipelineProject, script: str, env: str = "{}") -> None:
    (project.root / "raw.txt").write_text("raw")
    project.contract("Step", entry_point="step.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script("step.py", script)
    project.scenario(
        "one",
        f"data:\n  raw: {{file: ../raw.txt}}\nsteps:\n  s: {{contract: Step, env: {env}, inputs: {{DATA: raw}}}}\n",
    )


def test_a_symlink_the_script_planted_does_not_change_the_mode_of_its_target(
    project: PipelineProject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("user_files")
    target = outside / "precious.txt"
    target.write_text("mine")
    target.chmod(0o444)
    outside.chmod(0o555)
    try:
        one_step(project, PLANTING_SCRIPT, env=f"{{TARGET: {target}}}")
        project.run("--cursus-no-cache").assert_outcomes(passed=1)
        project.run("--cursus-no-cache").assert_outcomes(passed=1)  # the second run clears the first's directory
        assert stat.S_IMODE(target.stat().st_mode) == 0o444
        assert stat.S_IMODE(outside.stat().st_mode) == 0o555
        assert target.read_text() == "mine"
    finally:
        outside.chmod(0o755)


def test_an_existing_directory_the_plugin_did_not_create_is_refused_as_workspace(project: PipelineProject) -> None:
    one_step(project, "def main(input_paths, output_paths, environ_vars, job_args):\n    pass\n")
    users = project.root / "users_dir"
    (users / "one" / "s").mkdir(parents=True)
    keep = users / "one" / "s" / "notes.txt"
    keep.write_text("do not delete")
    result = project.pytester.runpytest(
        "--cursus-scenarios", "scenarios", "--cursus-workspace", str(users), "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--cursus-workspace*{users} is an existing directory that pytest-cursus did not create*new or empty*"]
    )
    assert keep.read_text() == "do not delete"


def test_a_workspace_the_plugin_created_is_reused_run_after_run(project: PipelineProject) -> None:
    one_step(project, "def main(input_paths, output_paths, environ_vars, job_args):\n    pass\n")
    project.run().assert_outcomes(passed=1)
    assert (project.workspace / ".cursus-workspace").is_file()
    project.run("--cursus-no-cache").assert_outcomes(passed=1)


def test_clearing_a_directory_outside_a_plugin_workspace_is_refused(tmp_path: Path) -> None:
    from pytest_cursus.execution.workspace import ForeignDirectory, StepWorkspace, claim_workspace

    step = StepWorkspace.for_step(tmp_path / "not_ours", "scenario", "step")
    step.root.mkdir(parents=True)
    (step.root / "file.txt").write_text("x")
    with pytest.raises(ForeignDirectory, match="not inside a workspace pytest-cursus created"):
        step.reset()
    assert (step.root / "file.txt").exists()
    claim_workspace(tmp_path / "ours")
    ours = StepWorkspace.for_step(tmp_path / "ours", "scenario", "step")
    ours.root.mkdir(parents=True)
    (ours.root / "stale.txt").write_text("x")
    ours.reset()
    assert sorted(path.name for path in ours.root.iterdir()) == ["input", "logs", "output"]
