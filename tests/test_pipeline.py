"""Pipeline mode: steps run in DAG order, each reading its upstream steps' real outputs."""

from __future__ import annotations

import pytest

from pipeline_project import PipelineProject

DATA_INPUT = {"DATA": {"path": "/opt/ml/processing/input/data"}}

# Appends the step's name to a file outside the workspace, then copies its inputs to its output:
# counting the lines tells how many times each step ran.
COUNTING_SCRIPT = """
import os, shutil

def main(input_paths, output_paths, environ_vars, job_args):
    with open(environ_vars["RUNS_LOG"], "a") as log:
        log.write(environ_vars["STEP"] + "\\n")
    with open(os.path.join(output_paths["out"], environ_vars["STEP"] + ".txt"), "w") as handle:
        handle.write(environ_vars["STEP"])
    for name, path in input_paths.items():
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(output_paths["out"], name))
"""

FAILING_SCRIPT = """
def main(input_paths, output_paths, environ_vars, job_args):
    raise ValueError("the upstream data is broken")
"""

PASSING_SCRIPT = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    open(os.path.join(output_paths["out"], "ok.txt"), "w").write("ok")
"""


def _counting_steps(project: PipelineProject, scenario: str, body: str) -> None:
    """Contracts Source (no input), Relay (DATA), Join (LEFT, RIGHT), all running counting.py."""
    project.contract("Source", entry_point="counting.py")
    project.contract("Relay", entry_point="counting.py", inputs=DATA_INPUT)
    project.contract(
        "Join",
        entry_point="counting.py",
        inputs={"LEFT": {"path": "/opt/ml/processing/input/left"}, "RIGHT": {"path": "/opt/ml/processing/input/right"}},
    )
    project.script("counting.py", COUNTING_SCRIPT)
    runs_log = project.root / "runs.log"
    project.scenario(
        scenario,
        f"""
        defaults:
          env: {{RUNS_LOG: "{runs_log}"}}
        """
        + body,
    )


def _runs(project: PipelineProject) -> list[str]:
    log = project.root / "runs.log"
    return sorted(log.read_text().split()) if log.exists() else []


def test_downstream_input_is_exactly_the_upstream_output(project: PipelineProject) -> None:
    project.contract("Producer", entry_point="producer.py")
    project.contract("Consumer", entry_point="consumer.py", inputs=DATA_INPUT)
    project.script(
        "producer.py",
        """
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            with open(os.path.join(output_paths["out"], "message.txt"), "w") as handle:
                handle.write("written by the producer\\n")
        """,
    )
    project.script(
        "consumer.py",
        """
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            assert os.listdir(input_paths["DATA"]) == ["message.txt"], os.listdir(input_paths["DATA"])
            with open(os.path.join(input_paths["DATA"], "message.txt")) as handle:
                content = handle.read()
            assert content == "written by the producer\\n", repr(content)
            open(os.path.join(output_paths["out"], "seen.txt"), "w").write(content)
        """,
    )
    project.scenario(
        "handover",
        """
        steps:
          produce: {contract: Producer}
          consume: {contract: Consumer, inputs: {DATA: produce.out}}
        """,
    )
    result = project.run("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["*handover.yaml::compat[[]produce.out-consume.DATA[]] PASSED*", "*handover.yaml::consume PASSED*"]
    )
    seen = project.step_dir("handover", "consume") / "output" / "out" / "seen.txt"
    assert seen.read_text() == "written by the producer\n"


def test_subdirectories_and_several_files_survive_the_handover(project: PipelineProject) -> None:
    project.contract("Splitter", entry_point="splitter.py")
    project.contract("Trainer", entry_point="trainer.py", inputs=DATA_INPUT)
    project.script(
        "splitter.py",
        """
        import json, os

        def main(input_paths, output_paths, environ_vars, job_args):
            out = output_paths["out"]
            for split, rows in (("train", 3), ("val", 2), ("test", 1)):
                os.makedirs(os.path.join(out, split))
                for part in range(2):
                    with open(os.path.join(out, split, f"part-{part}.csv"), "w") as handle:
                        handle.write("id\\n" + "".join(f"{split}{part}{n}\\n" for n in range(rows)))
            with open(os.path.join(out, "meta.json"), "w") as handle:
                json.dump({"splits": ["train", "val", "test"]}, handle)
        """,
    )
    project.script(
        "trainer.py",
        """
        import json, os

        def main(input_paths, output_paths, environ_vars, job_args):
            root = input_paths["DATA"]
            found = sorted(
                os.path.relpath(os.path.join(directory, name), root)
                for directory, _, names in os.walk(root)
                for name in names
            )
            expected = sorted(
                [f"{split}/part-{part}.csv" for split in ("train", "val", "test") for part in range(2)] + ["meta.json"]
            )
            assert found == expected, found
            assert open(os.path.join(root, "val", "part-1.csv")).read() == "id\\nval10\\nval11\\n"
            assert json.load(open(os.path.join(root, "meta.json"))) == {"splits": ["train", "val", "test"]}
        """,
    )
    project.scenario(
        "splits",
        """
        steps:
          split: {contract: Splitter}
          train: {contract: Trainer, inputs: {DATA: split.out}}
        """,
    )
    project.run().assert_outcomes(passed=3)


@pytest.fixture
def broken_and_relay(project: PipelineProject) -> None:
    """Contract `Broken` (its script raises) and contract `Relay` (input DATA, its script passes)."""
    project.contract("Broken", entry_point="broken.py")
    project.contract("Relay", entry_point="relay.py", inputs=DATA_INPUT)
    project.script("broken.py", FAILING_SCRIPT)
    project.script("relay.py", PASSING_SCRIPT)


@pytest.mark.usefixtures("broken_and_relay")
def test_failing_upstream_skips_downstream_steps_and_edges_but_not_an_independent_branch(
    project: PipelineProject,
) -> None:
    project.contract("Independent", entry_point="independent.py")
    project.script("independent.py", PASSING_SCRIPT)
    project.scenario(
        "branches",
        """
        steps:
          x: {contract: Broken}
          middle: {contract: Relay, inputs: {DATA: x.out}}
          leaf: {contract: Relay, inputs: {DATA: middle.out}}
          other: {contract: Independent}
        """,
    )
    result = project.run("-v", "-rs")
    # x fails; compat[x..middle], middle, compat[middle..leaf] and leaf are skipped; other passes
    result.assert_outcomes(failed=1, skipped=4, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*branches.yaml::x FAILED*",
            "*branches.yaml::compat[[]x.out-middle.DATA[]] SKIPPED*",
            "*branches.yaml::middle SKIPPED*",
            "*branches.yaml::compat[[]middle.out-leaf.DATA[]] SKIPPED*",
            "*branches.yaml::leaf SKIPPED*",
            "*branches.yaml::other PASSED*",
        ]
    )
    skip_lines = [line for line in result.stdout.lines if line.startswith("SKIPPED [")]
    assert sum(int(line.split("[")[1].split("]")[0]) for line in skip_lines) == 4, skip_lines
    assert all("upstream step 'x' failed" in line for line in skip_lines), skip_lines
    assert not (project.step_dir("branches", "middle") / "logs").exists(), "a skipped step never runs"


def test_k_selected_leaf_runs_its_upstream_steps_as_setup(project: PipelineProject) -> None:
    _counting_steps(
        project,
        "chain",
        """
        steps:
          load: {contract: Source, env: {STEP: load}}
          clean: {contract: Relay, env: {STEP: clean}, inputs: {DATA: load.out}}
          report: {contract: Relay, env: {STEP: report}, inputs: {DATA: clean.out}}
        """,
    )
    result = project.run("-v", "-k", "report and not compat")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*chain.yaml::report PASSED*"])
    for upstream in ("load", "clean"):
        assert (project.step_dir("chain", upstream) / "output" / "out" / f"{upstream}.txt").is_file()
    # the leaf read the real chain: clean's copy of load's output, then its own marker
    delivered = project.step_dir("chain", "report") / "output" / "out" / "DATA"
    assert (delivered / "clean.txt").read_text() == "clean"
    assert (delivered / "DATA" / "load.txt").read_text() == "load"
    assert _runs(project) == ["clean", "load", "report"]


@pytest.mark.usefixtures("broken_and_relay")
def test_upstream_failing_as_setup_of_a_selected_step_errors_it_naming_the_upstream(project: PipelineProject) -> None:
    project.scenario(
        "chain",
        """
        steps:
          load: {contract: Broken}
          report: {contract: Relay, inputs: {DATA: load.out}}
        """,
    )
    result = project.run("-k", "report and not compat")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of chain::report*",
            "*upstream step 'load' failed, so 'report' cannot run*",
            "*step 'load' of scenario 'chain' failed (run as setup of a selected step): ValueError: the upstream data "
            "is broken*",
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str()


def test_diamond_dag_runs_each_step_once(project: PipelineProject) -> None:
    _counting_steps(
        project,
        "diamond",
        """
        steps:
          a: {contract: Source, env: {STEP: a}}
          b: {contract: Relay, env: {STEP: b}, inputs: {DATA: a.out}}
          c: {contract: Relay, env: {STEP: c}, inputs: {DATA: a.out}}
          d: {contract: Join, env: {STEP: d}, inputs: {LEFT: b.out, RIGHT: c.out}}
        """,
    )
    result = project.run()
    result.assert_outcomes(passed=8)  # 4 steps, 4 edges
    assert _runs(project) == ["a", "b", "c", "d"]
    joined = project.step_dir("diamond", "d") / "output" / "out"
    assert (joined / "LEFT" / "DATA" / "a.txt").read_text() == "a"
    assert (joined / "RIGHT" / "DATA" / "a.txt").read_text() == "a"


def test_selecting_the_join_of_a_diamond_runs_the_shared_upstream_once(project: PipelineProject) -> None:
    _counting_steps(
        project,
        "diamond",
        """
        steps:
          a: {contract: Source, env: {STEP: a}}
          b: {contract: Relay, env: {STEP: b}, inputs: {DATA: a.out}}
          c: {contract: Relay, env: {STEP: c}, inputs: {DATA: a.out}}
          join: {contract: Join, env: {STEP: join}, inputs: {LEFT: b.out, RIGHT: c.out}}
        """,
    )
    result = project.run("-v", "-k", "join and not compat")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*diamond.yaml::join PASSED*"])
    assert _runs(project) == ["a", "b", "c", "join"]


def test_scenarios_with_different_names_do_not_share_workspaces(project: PipelineProject) -> None:
    tags = ("first", "second")
    project.contract("Tagger", entry_point="tagger.py")
    project.contract("Checker", entry_point="checker.py", inputs=DATA_INPUT)
    project.script(
        "tagger.py",
        """
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            open(os.path.join(output_paths["out"], "tag.txt"), "w").write(environ_vars["TAG"])
        """,
    )
    project.script(
        "checker.py",
        """
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            tag = open(os.path.join(input_paths["DATA"], "tag.txt")).read()
            assert tag == environ_vars["TAG"], f"read {tag!r} from another scenario"
        """,
    )
    for tag in tags:
        project.scenario(
            tag,
            f"""
            defaults: {{env: {{TAG: {tag}}}}}
            steps:
              make: {{contract: Tagger}}
              check: {{contract: Checker, inputs: {{DATA: make.out}}}}
            """,
        )
    project.run().assert_outcomes(passed=6)
    first, second = (project.step_dir(tag, "make") for tag in tags)
    assert first != second
    for tag in tags:
        assert (project.step_dir(tag, "make") / "output" / "out" / "tag.txt").read_text() == tag
