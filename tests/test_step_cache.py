"""The step cache: an unchanged step is not run again; any change reruns it and its downstream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from pipeline_project import PipelineProject

# Each script appends its step name to RUN_LOG, outside the workspace, so tests count real runs.
STEP_SCRIPT = """
import os
{imports}

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.environ["RUN_LOG"], "a") as log:
        log.write(environ_vars["STEP_NAME"] + "\\n")
    source = input_paths.get("DATA")
    text = open(os.path.join(source, os.listdir(source)[0])).read() if source and os.path.exists(source) else "seed"
    with open(os.path.join(output_paths["out"], "data.txt"), "w") as handle:
        handle.write(text + "|" + environ_vars["STEP_NAME"] + "|" + str(job_args.mode){extra})
"""

SCENARIO = """
defaults:
  env: {{RUN_LOG: {log}}}
data:
  raw: {{file: ../raw.txt}}
steps:
  a: {{contract: StepA, env: {{STEP_NAME: a}}, job_args: {{mode: x}}, inputs: {{DATA: raw}}}}
  b: {{contract: StepB, env: {{STEP_NAME: b}}, job_args: {{mode: x}}, inputs: {{DATA: a.out}}}}
  c: {{contract: StepC, env: {{STEP_NAME: c}}, job_args: {{mode: x}}, inputs: {{DATA: b.out}}}}
"""


class Chain:
    """A three-step chain a -> b -> c whose runs are counted."""

    def __init__(self, project: PipelineProject) -> None:
        self.project = project
        self.log = project.root / "runs.log"
        (project.root / "raw.txt").write_text("raw-v1")
        for name in "abc":
            project.contract(
                f"Step{name.upper()}",
                entry_point=f"step_{name}.py",
                inputs={"DATA": {"path": "/opt/ml/processing/input/data"}},
                job_arguments=["mode"],
            )
            self.write_script(name)
        project.scenario("chain", SCENARIO.format(log=self.log))

    def write_script(self, name: str, imports: str = "", extra: str = "") -> None:
        self.project.script(f"step_{name}.py", STEP_SCRIPT.format(imports=imports, extra=extra))

    def run(self, *args: str) -> pytest.RunResult:
        self.log.write_text("")
        return self.project.run("-v", *args)

    def runs(self) -> list[str]:
        return self.log.read_text().split()

    def edit_scenario(self, old: str, new: str) -> None:
        path = self.project.root / "scenarios" / "chain.yaml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))


@pytest.fixture
def chain(project: PipelineProject) -> Chain:
    chain = Chain(project)
    first = chain.run()
    first.assert_outcomes(passed=5)
    assert chain.runs() == ["a", "b", "c"]
    return chain


def test_an_unchanged_pipeline_is_not_run_again(chain: Chain) -> None:
    result = chain.run()
    result.assert_outcomes(passed=5)
    assert chain.runs() == []
    result.stdout.fnmatch_lines(["*chain.yaml::a CACHED*", "*chain.yaml::b CACHED*", "*chain.yaml::c CACHED*"])


def test_editing_a_script_reruns_that_step_and_its_downstream_only(chain: Chain) -> None:
    chain.write_script("b", extra=" + '!'")
    chain.run().assert_outcomes(passed=5)
    assert chain.runs() == ["b", "c"]


def test_editing_a_module_the_script_imports_reruns_the_step(chain: Chain) -> None:
    chain.project.script("shared_helpers.py", "FACTOR = 1\n")
    chain.write_script("b", imports="import shared_helpers", extra=" + str(shared_helpers.FACTOR)")
    chain.run().assert_outcomes(passed=5)
    chain.project.script("shared_helpers.py", "FACTOR = 2\n")
    chain.run().assert_outcomes(passed=5)
    assert chain.runs() == ["b", "c"]
    assert (
        (chain.project.step_dir("chain", "c") / "output" / "out" / "data.txt").read_text().startswith("raw-v1|a|x|b|x2")
    )


def test_editing_an_unrelated_file_beside_the_scripts_reruns_nothing(chain: Chain) -> None:
    chain.project.script("unrelated.py", "X = 1\n")
    chain.run().assert_outcomes(passed=5)
    assert chain.runs() == []


def test_editing_the_contract_reruns_the_step_and_leaves_downstream_cached_when_its_outputs_are_the_same(
    chain: Chain,
) -> None:
    chain.project.contract(
        "StepB",
        entry_point="step_b.py",
        inputs={"DATA": {"path": "/opt/ml/processing/input/data"}},
        job_arguments=["mode"],
        optional_env={"NEW": "1"},
    )
    chain.run().assert_outcomes(passed=5)
    assert chain.runs() == ["b"]  # b writes what it wrote before: c's key, made from its content, is unchanged


def test_changing_env_reruns_the_step(chain: Chain) -> None:
    chain.edit_scenario("env: {STEP_NAME: b}", "env: {STEP_NAME: b, EXTRA: y}")
    chain.run().assert_outcomes(passed=5)
    assert chain.runs() == ["b"]  # EXTRA does not change what b writes: c stays cached


def test_changing_job_args_reruns_the_step(chain: Chain) -> None:
    chain.edit_scenario("env: {STEP_NAME: b}, job_args: {mode: x}", "env: {STEP_NAME: b}, job_args: {mode: y}")
    chain.run().assert_outcomes(passed=5)
    assert chain.runs() == ["b", "c"]


def test_changing_the_input_data_reruns_everything_that_reads_it(chain: Chain) -> None:
    (chain.project.root / "raw.txt").write_text("raw-v2")
    chain.run().assert_outcomes(passed=5)
    assert chain.runs() == ["a", "b", "c"]


def _reported(result_file: Path) -> dict[str, dict[str, object]]:
    """Step name -> its record in a --cursus-json file."""
    return {step["step"]: step for step in json.loads(result_file.read_text())["steps"]}


def test_an_upstream_rerun_with_identical_outputs_leaves_its_downstream_cached(chain: Chain) -> None:
    script = chain.project.root / "scripts" / "step_a.py"
    script.write_text(script.read_text() + "# a comment: the key changes, the output does not\n")
    result = chain.run("--cursus-json", "run.json")
    result.assert_outcomes(passed=5)
    assert chain.runs() == ["a"]
    result.stdout.fnmatch_lines(["*chain.yaml::a PASSED*", "*chain.yaml::b CACHED*", "*chain.yaml::c CACHED*"])
    steps = _reported(chain.project.root / "run.json")
    assert (steps["a"]["cached"], steps["a"]["run_reason"]) == (False, "script changed")
    assert (steps["b"]["cached"], steps["b"]["run_reason"]) == (True, None)
    assert (steps["c"]["cached"], steps["c"]["run_reason"]) == (True, None)
    result.stdout.fnmatch_lines(
        [
            "why steps ran (key parts changed since the step's last cache entry):",
            "  chain::a: ran: script changed",
            "  chain::b: cached: inputs unchanged though a ran",
        ]
    )


def test_an_upstream_output_change_reruns_its_downstream_and_says_which_input_changed(chain: Chain) -> None:
    chain.write_script("a", extra=" + '!'")
    result = chain.run("--cursus-json", "run.json")
    result.assert_outcomes(passed=5)
    assert chain.runs() == ["a", "b", "c"]
    steps = _reported(chain.project.root / "run.json")
    assert [steps[name]["run_reason"] for name in "abc"] == [
        "script changed",
        "inputs changed: DATA",
        "inputs changed: DATA",
    ]
    result.stdout.fnmatch_lines(["*chain::b: ran: inputs changed: DATA"])


def test_a_step_run_for_the_first_time_or_under_no_cache_says_so(project: PipelineProject) -> None:
    chain = Chain(project)
    result = chain.run("--cursus-json", "run.json")
    assert [step["run_reason"] for step in _reported(project.root / "run.json").values()] == ["not in cache"] * 3
    assert "why steps ran" not in result.stdout.str()  # a first run: nothing to explain
    chain.run("--cursus-no-cache", "--cursus-json", "run.json").assert_outcomes(passed=5)
    assert [step["run_reason"] for step in _reported(project.root / "run.json").values()] == ["--cursus-no-cache"] * 3


def test_plugin_version_is_part_of_the_key(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_cursus.cache.key

    monkeypatch.setattr(pytest_cursus.cache.key, "__version__", "999.0")
    chain.run().assert_outcomes(passed=5)
    assert chain.runs() == ["a", "b", "c"]


def test_no_cache_option_runs_every_step(chain: Chain) -> None:
    chain.run("--cursus-no-cache").assert_outcomes(passed=5)
    assert chain.runs() == ["a", "b", "c"]


def test_cache_clear_empties_the_cache(project: PipelineProject) -> None:
    chain = Chain(project)

    # not project.run(): that turns the cacheprovider off, and the step cache lives in .pytest_cache
    def run(*args: str) -> pytest.RunResult:
        return project.pytester.runpytest(
            "--cursus-scenarios", "scenarios", "--cursus-workspace", str(project.workspace), *args
        )

    chain.log.write_text("")
    run().assert_outcomes(passed=5)
    run().assert_outcomes(passed=5)
    assert chain.runs() == ["a", "b", "c"]
    assert list((project.root / ".pytest_cache" / "d" / "cursus-steps" / "entries").iterdir())
    chain.log.write_text("")
    run("--cache-clear").assert_outcomes(passed=5)
    assert chain.runs() == ["a", "b", "c"]


def test_a_failed_step_is_not_cached(chain: Chain) -> None:
    chain.write_script("c", extra=" + str(1 / 0)")
    chain.run().assert_outcomes(passed=4, failed=1)
    chain.run().assert_outcomes(passed=4, failed=1)
    assert chain.runs() == ["c"]


def test_expect_is_checked_again_on_cached_outputs(chain: Chain) -> None:
    chain.edit_scenario("inputs: {DATA: b.out}}", "inputs: {DATA: b.out}, expect: {out: {files: [missing.csv]}}}")
    result = chain.run()
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*output 'out': no file matches 'missing.csv'; found data.txt*"])
    assert chain.runs() == [], "expectations do not change outputs: nothing reruns"


def test_k_on_a_warm_cache_runs_only_the_changed_leaf(chain: Chain) -> None:
    chain.write_script("c", extra=" + '!'")
    result = chain.run("scenarios/chain.yaml::c", "-rA")
    result.assert_outcomes(passed=1)
    assert chain.runs() == ["c"]
    result.stdout.fnmatch_lines(["*upstream steps produced as setup of this item: a (cached), b (cached)*"])


def test_k_on_a_cold_cache_runs_the_upstream_once_as_setup_and_says_so(project: PipelineProject) -> None:
    chain = Chain(project)
    result = chain.run("scenarios/chain.yaml::c", "-rA")
    result.assert_outcomes(passed=1)
    assert chain.runs() == ["a", "b", "c"]
    result.stdout.fnmatch_lines(["*upstream steps produced as setup of this item: a (passed), b (passed)*"])


def test_last_failed_reruns_only_the_failed_step_with_upstream_from_cache(project: PipelineProject) -> None:
    chain = Chain(project)
    flag = project.root / "fixed"
    chain.write_script("c", extra=f" + ('' if os.path.exists({str(flag)!r}) else str(1 / 0))")
    args = ("--cursus-scenarios", "scenarios", "--cursus-workspace", str(project.workspace), "-p", "no:xdist")
    chain.log.write_text("")
    project.pytester.runpytest(*args).assert_outcomes(passed=4, failed=1)
    flag.write_text("")
    chain.log.write_text("")
    result = project.pytester.runpytest(*args, "--lf")
    result.assert_outcomes(passed=1)
    assert chain.runs() == ["c"]


def _fan(project: PipelineProject, leaves: int) -> Path:
    """A scenario `fan`: a step `source` (taking a second) read by `leaf0`...; returns the log of its runs."""
    log = project.root / "runs.log"
    project.contract("Source", entry_point="source.py")
    project.contract("Leaf", entry_point="leaf.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script(
        "source.py",
        "import os, time\n\ndef main(i, o, e, j):\n    open(os.environ['RUN_LOG'], 'a').write('source\\n')\n"
        "    time.sleep(1)\n    open(os.path.join(o['out'], 'x.txt'), 'w').write('x')\n",
    )
    project.script("leaf.py", "import os\n\ndef main(i, o, e, j):\n    assert os.listdir(i['DATA']) == ['x.txt']\n")
    steps = "\n".join(f"  leaf{n}: {{contract: Leaf, inputs: {{DATA: source.out}}}}" for n in range(leaves))
    project.scenario(
        "fan",
        f"defaults: {{env: {{RUN_LOG: {log}}}}}\nsteps:\n  source: {{contract: Source}}\n{steps}\n",
    )
    return log


def test_a_shared_upstream_runs_once_across_xdist_workers(project: PipelineProject) -> None:
    log = _fan(project, leaves=6)
    result = project.run_subprocess("-n", "2", "-k", "leaf and not compat")
    result.assert_outcomes(passed=6)
    assert log.read_text().split() == ["source"]


def test_a_step_another_worker_ran_in_this_session_is_shared_not_cached(project: PipelineProject) -> None:
    chain = Chain(project)
    # every worker runs every item: of the two items of each step, one runs it and the other gets its outputs
    result = project.run_subprocess("-n", "2", "--dist", "each", "-v", "--cursus-no-cache")
    result.assert_outcomes(passed=10)
    assert sorted(chain.runs()) == ["a", "b", "c"]
    for step in "abc":
        item = f"scenarios/chain.yaml::{step}"
        statuses = [line.split()[-2] for line in result.stdout.lines if line.split()[-1:] == [item] and "[gw" in line]
        assert sorted(statuses) == ["PASSED", "SHARED"], result.stdout.str()
    assert "CACHED" not in result.stdout.str()


def test_an_upstream_another_worker_ran_for_its_items_is_noted_as_shared(project: PipelineProject) -> None:
    log = _fan(project, leaves=4)
    # four leaves and two workers: each worker's first leaf needs `source` as its setup
    result = project.run_subprocess("-n", "2", "-k", "leaf and not compat", "-rA", "--cursus-no-cache")
    result.assert_outcomes(passed=4)
    assert log.read_text().split() == ["source"]
    notes = sorted(line for line in result.stdout.lines if line.startswith("upstream steps produced as setup"))
    assert notes == [
        "upstream steps produced as setup of this item: source (passed)",
        "upstream steps produced as setup of this item: source (shared)",
    ]


OUTCOME_SCENARIOS = {
    "good": """
        steps:
          a: {contract: StepA, env: {STEP_NAME: a}, job_args: {mode: x}, inputs: {DATA: raw}}
          b: {contract: StepB, env: {STEP_NAME: b}, job_args: {mode: x}, inputs: {DATA: a.out}}
          c: {contract: StepC, env: {STEP_NAME: c}, job_args: {mode: x}, inputs: {DATA: b.out}}
    """,
    "broken": """
        steps:
          a: {contract: StepA, env: {STEP_NAME: a}, job_args: {mode: x}, inputs: {DATA: raw}}
          crash: {contract: Crash, inputs: {DATA: a.out}}
          after: {contract: StepC, env: {STEP_NAME: after}, job_args: {mode: x}, inputs: {DATA: crash.out}}
          beside: {contract: StepB, env: {STEP_NAME: beside}, job_args: {mode: x}, inputs: {DATA: a.out}}
    """,
    "invalid": """
        steps:
          a: {contract: NoSuchContract}
    """,
}


def _outcomes(xml_file: Path) -> dict[str, str]:
    outcomes = {}
    for case in ElementTree.parse(xml_file).getroot().iter("testcase"):
        children = {child.tag for child in case}
        outcome = next((tag for tag in ("failure", "error", "skipped") if tag in children), "passed")
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return outcomes


@pytest.mark.parametrize("dist", ["load", "loadscope", "loadfile", "loadgroup", "worksteal"])
def test_parallel_runs_give_the_serial_outcomes(project: PipelineProject, dist: str) -> None:
    chain = Chain(project)
    project.contract("Crash", entry_point="crash.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script("crash.py", "def main(i, o, e, j):\n    raise ValueError('planted')\n")
    header = f"defaults: {{env: {{RUN_LOG: {chain.log}}}}}\ndata: {{raw: {{file: ../raw.txt}}}}\n"
    for name, steps in OUTCOME_SCENARIOS.items():
        project.scenario(name, header + __import__("textwrap").dedent(steps))
    serial = project.run_subprocess("-p", "no:xdist", f"--junitxml={project.root / 'serial.xml'}", "--cursus-no-cache")
    parallel = project.run_subprocess(
        "-n", "2", f"--dist={dist}", f"--junitxml={project.root / 'parallel.xml'}", "--cursus-no-cache"
    )
    assert serial.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED
    serial_outcomes = _outcomes(project.root / "serial.xml")
    assert (
        "failure" in serial_outcomes.values()
        and "skipped" in serial_outcomes.values()
        and "error" in serial_outcomes.values()
    )
    assert _outcomes(project.root / "parallel.xml") == serial_outcomes


def test_a_run_killed_half_way_leaves_a_usable_cache(project: PipelineProject) -> None:
    chain = Chain(project)
    started = project.root / "b-started"
    chain.write_script(
        "b",
        imports="import time",
        extra=f" + ('' if open({str(started)!r}, 'w') is None else '') + ('' if time.sleep(30) else '')",
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--cursus-scenarios",
        "scenarios",
        "--cursus-workspace",
        str(project.workspace),
        "-p",
        "no:xdist",
        "-p",
        "no:cacheprovider",
    ]
    process = subprocess.Popen(
        command, cwd=project.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, "step b never started"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    cache = project.root / ".pytest_cache" / "d" / "cursus-steps"
    assert [entry.name for entry in (cache / "entries").iterdir() if (entry / "record.json").exists()], (
        "a's entry is complete"
    )
    chain.write_script("b")
    result = chain.run()
    result.assert_outcomes(passed=5)
    assert chain.runs() == ["b", "c"]


def test_an_entry_without_its_record_is_a_miss_and_is_replaced(chain: Chain) -> None:
    entries = chain.project.root / ".pytest_cache" / "d" / "cursus-steps" / "entries"
    for entry in entries.iterdir():
        (entry / "record.json").unlink()
    chain.run().assert_outcomes(passed=5)
    assert chain.runs() == ["a", "b", "c"]
    assert all((entry / "record.json").exists() for entry in entries.iterdir())


def test_under_xdist_the_controller_caps_the_cache(chain: Chain) -> None:
    (chain.project.root / "raw.txt").write_text("x" * 200_000)
    chain.project.run_subprocess("-n", "2", "--cursus-cache-max-mb", "0.5").assert_outcomes(passed=5)
    entries = chain.project.root / ".pytest_cache" / "d" / "cursus-steps" / "entries"
    sizes = sum(f.stat().st_size for f in entries.rglob("*") if f.is_file())
    assert 0 < sizes <= 0.5 * 2**20 + 50_000, "the workers ran the steps; the controller, which outlives them, evicted"


def test_the_cache_is_capped_by_size_evicting_least_recently_used(chain: Chain) -> None:
    (chain.project.root / "raw.txt").write_text("x" * 200_000)  # each step's output is ~200 kB
    chain.run("--cursus-cache-max-mb", "0.5").assert_outcomes(passed=5)
    entries = chain.project.root / ".pytest_cache" / "d" / "cursus-steps" / "entries"
    kept = [entry for entry in entries.iterdir()]
    sizes = sum(f.stat().st_size for entry in kept for f in entry.rglob("*") if f.is_file())
    assert sizes <= 0.5 * 2**20 + 50_000  # records are small
    assert 0 < len(kept) < 6


def test_eviction_counts_an_entry_with_an_unreadable_record_as_empty_and_goes_on(tmp_path: Path) -> None:
    from pytest_cursus.cache.store import OutputCache

    cache = OutputCache(tmp_path, "run", max_bytes=100)
    for name, record, age in (("old", '{"bytes": 80}', 30), ("broken", "{not json", 20), ("new", '{"bytes": 80}', 10)):
        entry = cache.entries_dir / name
        (entry / "outputs").mkdir(parents=True)
        (entry / "record.json").write_text(record)
        os.utime(entry, (time.time() - age, time.time() - age))
    assert cache.evict() == ["old"]
    assert sorted(entry.name for entry in cache.entries_dir.iterdir()) == ["broken", "new"]
