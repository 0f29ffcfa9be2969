"""The notebook API: run_scenario / run_step on real scenarios, results as text, HTML and DataFrames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline_project import PipelineProject
from pytest_cursus import run_scenario, run_step
from pytest_cursus.errors import ConfigErrors
from pytest_cursus.notebook.api import NOT_FOR_NOTEBOOK, NOTEBOOK_OPTIONS
from pytest_cursus.notebook.results import NotTabularError
from pytest_cursus.run.options import OPTIONS

SPLITTER = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    rows = open(os.path.join(input_paths["data"], "part-00000.csv")).read().splitlines()
    for split, part in (("train", rows[1:4]), ("test", rows[4:])):
        os.makedirs(os.path.join(output_paths["out"], split))
        with open(os.path.join(output_paths["out"], split, "part.csv"), "w") as handle:
            handle.write("\\n".join([rows[0], *part]) + "\\n")
"""

SUMMER = """
import json, os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(output_paths["out"], "total.json"), "w") as handle:
        json.dump({"steps": 2}, handle)
"""

CRASHER = """
def helper(value):
    return 1 / value

def main(input_paths, output_paths, environ_vars, job_args):
    helper(0)
"""


@pytest.fixture
def two_steps(project: PipelineProject) -> Path:
    """split (data -> out: train/ and test/ CSV) then total (reads split.out, writes JSON)."""
    project.contract("Split", entry_point="split.py", inputs={"data": {"path": "/opt/ml/processing/input/data"}})
    project.contract("Total", entry_point="total.py", inputs={"data": {"path": "/opt/ml/processing/input/data"}})
    project.script("split.py", SPLITTER)
    project.script("total.py", SUMMER)
    return project.scenario(
        "pair",
        """
        data:
          rows:
            synthetic:
              rows: 10
              seed: 1
              format: csv
              columns:
                id: {type: int, unique: true}
                value: {type: float, min: 0, max: 1}
        steps:
          split: {contract: Split, inputs: {data: rows}}
          total: {contract: Total, inputs: {data: split.out}}
        """,
    )


def test_run_scenario_runs_every_step_in_dag_order(two_steps: Path, tmp_path: Path) -> None:
    result = run_scenario(two_steps, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")

    assert result.passed
    assert [step.name for step in result] == ["split", "total"]
    assert (tmp_path / "ws" / "pair" / "split" / "output").is_dir()  # the plugin's workspace layout


def test_outputs_are_paths_and_read_gives_every_table_as_one_dataframe(two_steps: Path, tmp_path: Path) -> None:
    result = run_scenario(two_steps, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")
    out = result["split"].outputs["out"]

    assert Path(out) == tmp_path / "ws" / "pair" / "split" / "output" / "out"
    assert (out / "train" / "part.csv").is_file()
    frame = out.read()
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == (10, 2)
    assert list(frame.columns) == ["id", "value"]
    assert out.read("train/*").shape == (3, 2)


def test_read_of_an_output_without_tables_says_what_it_holds(two_steps: Path, tmp_path: Path) -> None:
    result = run_scenario(two_steps, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")

    with pytest.raises(
        NotTabularError, match=r"output 'out' of step 'total' holds no table file \(it has: total.json\)"
    ):
        result["total"].outputs["out"].read()


def test_a_second_run_takes_unchanged_steps_from_the_cache(two_steps: Path, tmp_path: Path) -> None:
    run_scenario(two_steps, workspace=tmp_path / "ws1", cache_dir=tmp_path / "cache")
    again = run_scenario(two_steps, workspace=tmp_path / "ws2", cache_dir=tmp_path / "cache")
    forced = run_scenario(two_steps, workspace=tmp_path / "ws3", cache_dir=tmp_path / "cache", no_cache=True)

    assert [step.cached for step in again] == [True, True]
    assert [step.cached for step in forced] == [False, False]
    assert again["split"].outputs["out"].read().shape == (10, 2)


def test_run_step_produces_its_upstream_and_lists_it(two_steps: Path, tmp_path: Path) -> None:
    step = run_step(two_steps, "total", workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")

    assert step.passed
    assert list(step.upstream) == ["split"]
    assert step.upstream["split"].record.as_setup
    assert "split (setup)" in str(step)


def test_run_step_on_a_result_reruns_with_its_options(two_steps: Path, tmp_path: Path) -> None:
    result = run_scenario(two_steps, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")
    step = run_step(result, "total")

    assert step.cached  # same cache, same key
    assert (tmp_path / "cache" / "entries") in step.outputs["out"].path.parents


def test_the_text_form_is_a_table_of_steps_with_metrics(two_steps: Path, tmp_path: Path) -> None:
    text = repr(run_scenario(two_steps, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache"))

    assert text.splitlines()[0].startswith("scenario pair (")
    assert "2 passed" in text.splitlines()[0]
    header = next(line for line in text.splitlines() if line.startswith("step"))
    assert ["outcome", "cached", "wall", "CPU", "peak", "MB", "rows", "out"] == header.split()[1:]
    assert any(line.startswith("split") and "passed" in line and "10" in line for line in text.splitlines())


def test_the_html_form_has_the_dag_coloured_by_outcome_and_a_step_table(two_steps: Path, tmp_path: Path) -> None:
    html = run_scenario(two_steps, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")._repr_html_()

    assert '<svg xmlns="http://www.w3.org/2000/svg" class="cursus-dag"' in html
    assert '<g class="cursus-node" data-step="split" data-outcome="passed" data-kind="step">' in html
    assert '<path class="cursus-edge"' in html  # split -> total
    assert '<table class="cursus-metrics cursus-steps">' in html
    assert "<td><b>total</b></td>" in html


def test_a_failing_step_shows_its_script_traceback_and_skips_downstream(
    project: PipelineProject, two_steps: Path, tmp_path: Path
) -> None:
    project.script("split.py", CRASHER)
    result = run_scenario(two_steps, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")

    assert not result.passed
    assert result["split"].outcome == "failed"
    assert result["total"].outcome == "skipped"
    assert [step.name for step in result.failed] == ["split"]
    text = str(result)
    assert "ZeroDivisionError: division by zero" in text
    assert "in helper" in text and "return 1 / value" in text  # the script's own frames
    assert "upstream step 'split' failed" in text
    html = result._repr_html_()
    assert 'data-step="split" data-outcome="failed"' in html
    assert 'data-step="total" data-outcome="skipped"' in html
    assert "<h4>Script traceback</h4>" in html and "return 1 / value" in html
    with pytest.raises(KeyError, match="step 'total' has no outputs: upstream step 'split' failed"):
        result["total"].outputs["out"]


def test_unknown_names_say_what_exists(two_steps: Path, tmp_path: Path) -> None:
    result = run_scenario(two_steps, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")

    with pytest.raises(
        KeyError, match=r"scenario 'pair' has no step 'totl' \(did you mean total\?\); its steps are: split, total"
    ):
        result["totl"]
    with pytest.raises(
        KeyError, match=r"step 'split' has no output 'outs' \(did you mean out\?\); its outputs are: out"
    ):
        result["split"].outputs["outs"]
    with pytest.raises(KeyError, match=r"has no step 'totl' \(did you mean total\?\)"):
        run_step(two_steps, "totl", workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")


def test_an_invalid_scenario_raises_the_message_pytest_shows(project: PipelineProject) -> None:
    path = project.scenario("broken", "steps:\n  only: {contract: Nowhere}\n")

    with pytest.raises(ConfigErrors, match=r"broken.yaml:2: steps.only.contract: .*Nowhere"):
        run_scenario(path)


def test_a_missing_scenario_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run_scenario\\(\\): scenario file .*nothere.yaml does not exist"):
        run_scenario(tmp_path / "nothere.yaml")


def test_a_misspelt_option_is_a_type_error_with_a_suggestion(two_steps: Path) -> None:
    with pytest.raises(
        TypeError,
        match=r"run_scenario\(\) got an unexpected keyword argument 'timout' \(did you mean timeout\?\); "
        r"options are: cache_dir, ",
    ):
        run_scenario(two_steps, timout=5)


def test_a_pytest_only_option_says_why_it_is_not_taken(two_steps: Path) -> None:
    with pytest.raises(
        TypeError, match="run_step\\(\\) does not take mode=: the notebook API runs steps in pipeline mode"
    ):
        run_step(two_steps, "split", mode="isolation")


@pytest.mark.parametrize("name", sorted(NOTEBOOK_OPTIONS))
def test_every_option_rejects_a_value_of_the_wrong_type_naming_it(two_steps: Path, name: str) -> None:
    wrong = 3 if NOTEBOOK_OPTIONS[name].kind in ("paths", "path", "choice", "flag") else [3]
    with pytest.raises(TypeError, match=rf"run_scenario\(\): expected {name} to be .*, but got {name}="):
        run_scenario(two_steps, **{name: wrong})


def test_a_value_out_of_range_is_a_value_error_naming_the_keyword(two_steps: Path) -> None:
    with pytest.raises(ValueError, match=r"run_scenario\(\): timeout=-1: expected a positive number"):
        run_scenario(two_steps, timeout=-1)
    with pytest.raises(ValueError, match=r"source='cloud': expected one of synthetic, local, s3"):
        run_scenario(two_steps, source="cloud")


def test_every_option_of_the_table_is_taken_or_explained() -> None:
    assert set(NOTEBOOK_OPTIONS) | set(NOT_FOR_NOTEBOOK) == {spec.name for spec in OPTIONS}
    assert not set(NOTEBOOK_OPTIONS) & set(NOT_FOR_NOTEBOOK)


def test_the_default_cache_is_the_one_pytest_uses_for_the_project(project: PipelineProject, two_steps: Path) -> None:
    project.pytester.makeini("[pytest]\n")  # the project's rootdir, as pytest finds it
    project.run_subprocess()  # pytest --cursus-scenarios scenarios (with its default cache)

    result = run_scenario(two_steps, workspace=project.root / "nb")

    assert [step.cached for step in result] == [True, True]
    assert (project.root / ".pytest_cache" / "d" / "cursus-steps" / "entries").is_dir()


def test_without_a_pytest_configuration_a_notebook_in_the_repository_shares_pytests_cache(
    project: PipelineProject, two_steps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No pytest.ini/pyproject/setup.py: pytest's rootdir is where it was started; the repository's
    top is what pytest (started there) and a notebook in a sub-directory both find."""
    (project.root / ".git").mkdir()
    project.run_subprocess()  # from the project's root
    notebooks = project.root / "notebooks"
    notebooks.mkdir()
    monkeypatch.chdir(notebooks)  # where Jupyter starts a kernel: the notebook's directory

    result = run_scenario(two_steps, workspace=project.root / "nb")

    assert [step.cached for step in result] == [True, True]
    assert not (project.root / "scenarios" / ".pytest_cache").exists()


def test_without_a_pytest_configuration_or_a_repository_pytest_and_a_notebook_started_in_the_project_agree(
    project: PipelineProject, two_steps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.run_subprocess()
    monkeypatch.chdir(project.root)

    result = run_scenario(two_steps, workspace=project.root / "nb")

    assert [step.cached for step in result] == [True, True]


def test_the_project_directory_follows_pytests_rootdir_then_the_repository_then_the_working_directory(
    tmp_path: Path,
) -> None:
    from pytest_cursus.project_root import project_dir

    scenario = tmp_path / "repo" / "pipelines" / "scenarios" / "pair.yaml"
    scenario.parent.mkdir(parents=True)
    scenario.write_text("steps: {}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    assert project_dir(scenario, cwd=elsewhere) == scenario.parent  # nothing to go by
    assert project_dir(scenario, cwd=tmp_path / "repo") == tmp_path / "repo"  # under the working directory
    (tmp_path / "repo" / ".git").mkdir()
    assert project_dir(scenario, cwd=elsewhere) == tmp_path / "repo"
    (tmp_path / "repo" / "pipelines" / "pytest.ini").write_text("[pytest]\n")
    assert project_dir(scenario, cwd=elsewhere) == tmp_path / "repo" / "pipelines"  # pytest's own rootdir


def test_importing_the_package_does_not_import_the_engine() -> None:
    code = (
        "import sys, pytest_cursus\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'pytest_cursus.run.pipeline') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "[]"


INTERRUPTED_SCRIPT = """
import os, subprocess, sys, time

def main(input_paths, output_paths, environ_vars, job_args):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(environ_vars["PID_FILE"], "w").write(f"{os.getpid()} {child.pid}")
    time.sleep(600)
"""


def test_interrupting_a_notebook_run_leaves_no_step_process_behind(project: PipelineProject, tmp_path: Path) -> None:
    import signal
    import time

    import psutil

    pid_file = tmp_path / "pids"
    project.contract("Sleeper", entry_point="sleeper.py", optional_env={"PID_FILE": str(pid_file)})
    project.script("sleeper.py", INTERRUPTED_SCRIPT)
    scenario = project.scenario("nap", "steps:\n  nap: {contract: Sleeper}\n")
    code = (
        "from pytest_cursus import run_scenario\n"
        "try:\n"
        f"    run_scenario({str(scenario)!r}, workspace={str(tmp_path / 'ws')!r}, "
        f"cache_dir={str(tmp_path / 'cache')!r})\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    kernel = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    )  # as a Jupyter kernel runs a cell
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and len(pid_file.read_text().split()) == 2):
        assert time.monotonic() < deadline and kernel.poll() is None, "the step never started"
        time.sleep(0.05)
    step_processes = [psutil.Process(int(pid)) for pid in pid_file.read_text().split()]

    kernel.send_signal(signal.SIGINT)  # what "interrupt the kernel" sends
    out, _ = kernel.communicate(timeout=120)  # a hang guard: under load the kernel took over 30 s

    assert out.strip() == "interrupted"
    _, alive = psutil.wait_procs(step_processes, timeout=5)
    assert alive == []
