"""Each step runs in its own child process; whatever the script does, the run reports it clearly."""

from __future__ import annotations

import os
import textwrap

import psutil
import pytest

from pipeline_project import PipelineProject


def _with_script(project: PipelineProject, source: str, scenario_extra: str = "") -> PipelineProject:
    project.script("writer.py", source)
    project.scenario(
        "single",
        textwrap.dedent(scenario_extra) + "steps:\n  only:\n    contract: Writer\n",
    )
    return project


def _no_internal_error(result: pytest.RunResult) -> None:
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_script_raising_shows_its_own_traceback_stderr_and_workspace(one_step: PipelineProject) -> None:
    _with_script(
        one_step,
        """
        import sys

        def helper(x):
            return x / 0

        def main(input_paths, output_paths, environ_vars, job_args):
            print("about to divide", file=sys.stderr)
            helper(1)
        """,
    )
    result = one_step.run()
    result.assert_outcomes(failed=1)
    _no_internal_error(result)
    result.stdout.fnmatch_lines(
        [
            "*step 'only' of scenario 'single' failed: ZeroDivisionError: division by zero",
            "*Script traceback:",
            '*File "*writer.py", line 9, in main',
            '*File "*writer.py", line 5, in helper',
            "*Last lines of stderr*",
            "*about to divide",
            "*Workspace kept for inspection: *single*only",
        ]
    )
    output = result.stdout.str()
    assert "child.py" not in output and "_pytest" not in output, "only the script's frames are shown"


def test_sys_exit_zero_inside_main_is_success(one_step: PipelineProject) -> None:
    _with_script(one_step, "import sys\n\ndef main(i, o, e, j):\n    sys.exit(0)\n")
    one_step.run().assert_outcomes(passed=1)


def test_sys_exit_one_is_a_failure_that_says_so(one_step: PipelineProject) -> None:
    _with_script(one_step, "import sys\n\ndef main(i, o, e, j):\n    sys.exit(1)\n")
    result = one_step.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*main() called sys.exit(1): exit code 1 means failure*"])


def test_os_exit_is_reported_with_its_code(one_step: PipelineProject) -> None:
    _with_script(one_step, "import os\n\ndef main(i, o, e, j):\n    os._exit(3)\n")
    result = one_step.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*exited with code 3 before main() returned*"])


def test_script_killed_by_a_signal_names_the_signal(one_step: PipelineProject) -> None:
    _with_script(one_step, "import os, signal\n\ndef main(i, o, e, j):\n    os.kill(os.getpid(), signal.SIGSEGV)\n")
    result = one_step.run()
    result.assert_outcomes(failed=1)
    _no_internal_error(result)
    result.stdout.fnmatch_lines(["*was killed by SIGSEGV before main() returned*"])


def test_timeout_kills_the_whole_process_tree(one_step: PipelineProject) -> None:
    pid_file = one_step.root / "grandchild.pid"
    _with_script(
        one_step,
        f"""
        import subprocess, sys, time

        def main(i, o, e, j):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            open({str(pid_file)!r}, "w").write(str(child.pid))
            time.sleep(600)
        """,
        "defaults: {timeout: 1}\n",
    )
    result = one_step.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*exceeded its timeout of 1s (killed after *s with its whole process tree)*"])
    grandchild = int(pid_file.read_text())
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE


def test_memory_limit_kills_the_step_and_reports_the_peak(one_step: PipelineProject) -> None:
    _with_script(
        one_step,
        """
        import time

        def main(i, o, e, j):
            hoard = []
            for _ in range(200):
                hoard.append(bytearray(20 * 2**20))  # touched pages: real RSS
                time.sleep(0.02)
        """,
        "defaults: {max_memory_mb: 150}\n",
    )
    result = one_step.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*exceeded its memory limit of 150 MB (peak RSS of its process tree reached * MB; killed)*"]
    )


def test_writing_into_the_input_directory_with_inputs_read_only_fails_and_names_the_file(
    project: PipelineProject,
) -> None:
    project.contract("Writer", entry_point="writer.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script(
        "writer.py",
        """
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            try:
                with open(os.path.join(input_paths["DATA"], "sneaky.csv"), "w") as handle:
                    handle.write("x")
            except PermissionError:
                raise  # a non-root user is stopped by the read-only mode already
        """,
    )
    source = project.root / "data.csv"
    source.write_text("a,b\n1,2\n")
    project.scenario(
        "single",
        """
        data: {raw: {file: ../data.csv}}
        steps:
          only: {contract: Writer, inputs: {DATA: raw}, inputs_read_only: true}
        """,
    )
    result = project.run()
    result.assert_outcomes(failed=1)
    if os.geteuid() == 0:
        result.stdout.fnmatch_lines(
            ["*wrote into its input directory (added DATA/sneaky.csv under *)*write to output_paths*"]
        )
    else:
        result.stdout.fnmatch_lines(["*PermissionError*"])
    assert source.read_text() == "a,b\n1,2\n", "the user's data is never changed"
    assert not (project.root / "sneaky.csv").exists()


def test_script_without_main_is_reported(one_step: PipelineProject) -> None:
    _with_script(one_step, "def run(i, o, e, j):\n    pass\n")
    result = one_step.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*writer.py defines no main() function (functions defined: run)*"])


def test_main_with_a_wrong_signature_is_reported_with_its_line(one_step: PipelineProject) -> None:
    _with_script(one_step, "\n\ndef main(input_paths, output_paths):\n    pass\n")
    result = one_step.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*main(input_paths, output_paths) at *writer.py:3 cannot be called as main(input_paths, output_paths, "
            "environ_vars, job_args): too many positional arguments*"
        ]
    )


def test_import_error_in_the_script_shows_where(one_step: PipelineProject) -> None:
    _with_script(one_step, "import not_a_real_module_xyz\n\ndef main(i, o, e, j):\n    pass\n")
    result = one_step.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*importing *writer.py failed: ModuleNotFoundError: No module named 'not_a_real_module_xyz'*",
            '*File "*writer.py", line 1*',
        ]
    )


def test_main_block_is_never_run(one_step: PipelineProject) -> None:
    _with_script(
        one_step,
        """
        def main(input_paths, output_paths, environ_vars, job_args):
            pass

        if __name__ == "__main__":
            raise SystemExit("the __main__ block must not run")
        """,
    )
    one_step.run().assert_outcomes(passed=1)


def test_logger_is_passed_when_main_accepts_one_and_is_callable_and_a_logger(one_step: PipelineProject) -> None:
    _with_script(
        one_step,
        """
        def main(input_paths, output_paths, environ_vars, job_args, logger=None):
            logger("called like print")
            logger.info("called like logging")
            logger.warning("a warning")
        """,
    )
    result = one_step.run()
    result.assert_outcomes(passed=1)
    stderr = (one_step.step_dir("single", "only") / "logs" / "stderr.log").read_text()
    assert "called like print" in stderr and "called like logging" in stderr and "WARNING" in stderr


def test_environ_vars_reach_os_environ_as_strings(project: PipelineProject) -> None:
    project.contract(
        "Writer",
        entry_point="writer.py",
        required_env=["LABEL_FIELD"],
        optional_env={"TRAIN_RATIO": "0.7", "KEEP": "yes"},
    )
    project.script(
        "writer.py",
        """
        import json, os

        def main(input_paths, output_paths, environ_vars, job_args):
            seen = {k: (environ_vars[k], os.environ[k]) for k in ("LABEL_FIELD", "TRAIN_RATIO", "KEEP", "FLAG")}
            with open(os.path.join(output_paths["out"], "env.json"), "w") as handle:
                json.dump(seen, handle)
        """,
    )
    project.scenario(
        "single",
        """
        defaults:
          env: {TRAIN_RATIO: 0.8, LABEL_FIELD: default_label, FLAG: true}
        steps:
          only:
            contract: Writer
            env: {LABEL_FIELD: label}
        """,
    )
    project.run().assert_outcomes(passed=1)
    import json

    seen = json.loads((project.step_dir("single", "only") / "output" / "out" / "env.json").read_text())
    assert seen == {
        "LABEL_FIELD": ["label", "label"],  # step env wins over defaults
        "TRAIN_RATIO": ["0.8", "0.8"],  # defaults win over the contract's optional default
        "KEEP": ["yes", "yes"],  # contract default used when nothing overrides it
        "FLAG": ["true", "true"],
    }


def test_job_args_is_a_namespace_named_after_the_flags(project: PipelineProject) -> None:
    project.contract("Writer", entry_point="writer.py", job_arguments=["job_type", "max-depth"])
    project.script(
        "writer.py",
        """
        import argparse, os

        def main(input_paths, output_paths, environ_vars, job_args):
            assert isinstance(job_args, argparse.Namespace)
            with open(os.path.join(output_paths["out"], "args.txt"), "w") as handle:
                handle.write(f"{job_args.job_type}|{job_args.max_depth}")
        """,
    )
    project.scenario(
        "single",
        """
        steps:
          only: {contract: Writer, job_args: {job_type: training}}
        """,
    )
    project.run().assert_outcomes(passed=1)
    assert (project.step_dir("single", "only") / "output" / "out" / "args.txt").read_text() == "training|None"


def test_every_declared_name_is_present_and_unwired_optional_inputs_do_not_exist(project: PipelineProject) -> None:
    project.contract(
        "Writer",
        entry_point="writer.py",
        inputs={
            "DATA": {"path": "/opt/ml/processing/input/data"},
            "SIGNATURE": {"path": "/opt/ml/processing/input/signature", "required": False},
        },
        outputs={"out": {"path": "/opt/ml/processing/output"}, "model": {"path": "/opt/ml/model"}},
    )
    project.script(
        "writer.py",
        """
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            assert set(input_paths) == {"DATA", "SIGNATURE"}, input_paths
            assert set(output_paths) == {"out", "model"}, output_paths
            assert os.path.isdir(input_paths["DATA"])
            assert not os.path.exists(input_paths["SIGNATURE"])  # channel not mounted
            assert all(os.path.isdir(p) for p in output_paths.values())
            assert not input_paths["DATA"].startswith("/opt/ml"), "container paths are mapped to the workspace"
        """,
    )
    project.scenario(
        "single",
        """
        data: {raw: {text: "a,b"}}
        steps:
          only: {contract: Writer, inputs: {DATA: raw}}
        """,
    )
    project.run().assert_outcomes(passed=1)


def test_file_container_path_is_presented_as_a_file(project: PipelineProject) -> None:
    project.contract(
        "Writer", entry_point="writer.py", inputs={"hp": {"path": "/opt/ml/input/data/config/hyperparameters.json"}}
    )
    project.script(
        "writer.py",
        """
        import json

        def main(input_paths, output_paths, environ_vars, job_args):
            assert input_paths["hp"].endswith("hyperparameters.json")
            assert json.load(open(input_paths["hp"])) == {"eta": 0.1}
        """,
    )
    (project.root / "hp.json").write_text('{"eta": 0.1}')
    project.scenario(
        "single",
        """
        data: {hp: {file: ../hp.json}}
        steps:
          only: {contract: Writer, inputs: {hp: hp}}
        """,
    )
    project.run().assert_outcomes(passed=1)


def test_package_script_with_relative_imports_runs_by_module_name(project: PipelineProject) -> None:
    package = project.root / "src" / "pipe"
    (package / "steps").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "processing.py").write_text("def double(x):\n    return 2 * x\n")
    (package / "steps" / "__init__.py").write_text("")
    (package / "steps" / "build.py").write_text(
        "import os\nfrom ..processing import double\n\n"
        "def main(input_paths, output_paths, environ_vars, job_args):\n"
        "    open(os.path.join(output_paths['out'], 'x.txt'), 'w').write(str(double(21)))\n"
    )
    project.contract("Writer", entry_point="build.py")
    project.scenario(
        "single",
        """
        contracts: [../contracts]
        scripts: [../src]
        python_path: [../src]
        steps:
          only: {contract: Writer}
        """,
    )
    project.run().assert_outcomes(passed=1)
    assert (project.step_dir("single", "only") / "output" / "out" / "x.txt").read_text() == "42"


def test_multiprocessing_pool_inside_a_script_works_and_leaves_no_process(one_step: PipelineProject) -> None:
    _with_script(
        one_step,
        """
        import multiprocessing, os

        def square(x):
            return x * x

        def main(input_paths, output_paths, environ_vars, job_args):
            with multiprocessing.Pool(2) as pool:
                total = sum(pool.map(square, range(10)))
            open(os.path.join(output_paths["out"], "total.txt"), "w").write(str(total))
        """,
    )
    one_step.run().assert_outcomes(passed=1)
    assert (one_step.step_dir("single", "only") / "output" / "out" / "total.txt").read_text() == "285"


def test_megabytes_of_logs_are_captured_to_files(one_step: PipelineProject) -> None:
    _with_script(
        one_step,
        """
        import sys

        def main(i, o, e, j):
            for n in range(100_000):
                print(f"log line {n} " + "x" * 40)
            print("last stderr line", file=sys.stderr)
            raise RuntimeError("after the logs")
        """,
    )
    result = one_step.run()
    result.assert_outcomes(failed=1)
    stdout_log = one_step.step_dir("single", "only") / "logs" / "stdout.log"
    assert stdout_log.stat().st_size > 4_000_000
    assert "log line 99999" in stdout_log.read_text()
    assert "log line 5" not in result.stdout.str(), "stdout is kept in the file, not dumped into the report"


def test_return_value_is_recorded_not_required(one_step: PipelineProject) -> None:
    _with_script(
        one_step,
        """
        import pandas as pd

        def main(i, o, e, j):
            return {"train": pd.DataFrame({"a": [1, 2, 3]}), "note": "ok"}
        """,
    )
    one_step.run().assert_outcomes(passed=1)
    import json

    report = json.loads((one_step.step_dir("single", "only") / "logs" / "report.json").read_text())
    assert report["return_summary"] == {"train": "DataFrame 3x1", "note": "ok"}


def test_a_crashing_step_does_not_stop_the_other_scenarios(one_step: PipelineProject) -> None:
    one_step.script("crash.py", "import os\n\ndef main(i, o, e, j):\n    os.abort()\n")
    one_step.contract("Crash", entry_point="crash.py")
    one_step.scenario("crashing", "steps:\n  boom: {contract: Crash}\n")
    result = one_step.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*killed by SIGABRT*"])


HARD_CODED_ROOT = "/opt/cursus-hard-coded"  # not /opt/ml: steps of other tests running at once watch that one


@pytest.mark.skipif(os.path.lexists(HARD_CODED_ROOT), reason=f"{HARD_CODED_ROOT} exists on this machine")
def test_writing_to_a_hard_coded_container_path_fails_and_is_cleaned_up(project: PipelineProject) -> None:
    project.contract("Writer", entry_point="writer.py", outputs={"out": {"path": f"{HARD_CODED_ROOT}/output"}})
    _with_script(
        project,
        f"""
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            os.makedirs("{HARD_CODED_ROOT}/output", exist_ok=True)
            open("{HARD_CODED_ROOT}/output/result.csv", "w").write("a\\n1\\n")
        """,
    )
    result = project.run()
    result.assert_outcomes(failed=1)
    if os.geteuid() == 0:
        result.stdout.fnmatch_lines(
            [f"*wrote to container path(s) {HARD_CODED_ROOT} on this machine instead of the local paths it was given*"]
        )
    else:
        result.stdout.fnmatch_lines(["*PermissionError*"])
    assert not os.path.lexists(HARD_CODED_ROOT)


LATE_WRITER_ROOT = "/opt/cursus-late-writer"  # a container path of its own: other tests write /opt/ml at once


@pytest.mark.skipif(os.path.lexists(LATE_WRITER_ROOT), reason=f"{LATE_WRITER_ROOT} exists on this machine")
def test_a_script_failing_after_writing_to_a_container_path_reports_its_error_and_is_cleaned_up(
    project: PipelineProject,
) -> None:
    project.contract("Writer", entry_point="writer.py", outputs={"out": {"path": f"{LATE_WRITER_ROOT}/output"}})
    _with_script(
        project,
        f"""
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            try:
                os.makedirs("{LATE_WRITER_ROOT}/output", exist_ok=True)
            except PermissionError:
                pass  # a non-root user cannot write there: the failure below is then the only one
            raise RuntimeError("failed after writing")
        """,
    )
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*step 'only' of scenario 'single' failed: RuntimeError: failed after writing"])
    assert "wrote to container path" not in result.stdout.str(), "the script's own failure is the one reported"
    assert not os.path.lexists(LATE_WRITER_ROOT), "what it created is removed even though the step failed"
