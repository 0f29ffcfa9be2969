"""The warm executor: steps forked from a parent that imported their third-party modules once,
with every guarantee of a fresh interpreter per step (docs/execution.md, "The warm executor")."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from pipeline_project import PipelineProject
from pytest_cursus.execution.preload import NOT_FORK_SAFE, needs_fresh_interpreter, preload_candidates
from pytest_cursus.execution.step_runner import StepRunner, child_environment
from pytest_cursus.execution.warm_executor import CursusExecutorWarning, WarmForkLauncher
from pytest_cursus.plan.scenario_plan import load_scenario

DEATH_LIMIT_S = 5
STARTUP_LIMIT_S = 60


def _json_steps(project: PipelineProject, path: Path) -> dict[str, dict]:
    document = json.loads(path.read_text())
    return {step["step"]: step for step in document["steps"]}


def _observations(project: PipelineProject, scenario: str, step: str) -> dict:
    return json.loads((project.step_dir(scenario, step) / "output" / "out" / "seen.json").read_text())


# --- no state leaks from one step to the next ------------------------------------------------

LEAKER = """
import json, os, signal, sys, threading, time
import email.mime.text  # a module the warm parent preloads (stdlib, outside the scenario)
import numpy
import local_state

def main(input_paths, output_paths, environ_vars, job_args):
    seen = {
        "preloaded_flag": getattr(email.mime.text, "CURSUS_LEAK", None),
        "numpy_printoptions": numpy.get_printoptions()["precision"],
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "cwd_is_workspace": os.getcwd().endswith(os.path.join(environ_vars["STEP"])),
        "leaked_env": os.environ.get("CURSUS_LEAKED_ENV"),
        "threads": threading.active_count(),
        "local_imports": local_state.IMPORTS,
        "sys_path_leak": "/cursus/leaked/path" in sys.path,
        "random": numpy.random.rand(),
        "ppid": os.getppid(),
    }
    with open(os.path.join(output_paths["out"], "seen.json"), "w") as handle:
        json.dump(seen, handle)
    # now leak everything a script can
    email.mime.text.CURSUS_LEAK = environ_vars["STEP"]
    numpy.set_printoptions(precision=2)
    signal.signal(signal.SIGTERM, lambda *args: None)
    os.chdir("/")
    os.environ["CURSUS_LEAKED_ENV"] = environ_vars["STEP"]
    threading.Thread(target=time.sleep, args=(600,), daemon=False).start()
    sys.path.append("/cursus/leaked/path")
    local_state.IMPORTS += 1
"""

LOCAL_STATE = """
IMPORTS = 1
"""


@pytest.fixture
def leaky_chain(project: PipelineProject) -> PipelineProject:
    project.contract(
        "Leaker",
        entry_point="leaker.py",
        inputs={"previous": {"path": "/opt/ml/processing/input/previous", "required": False}},
    )
    project.script("leaker.py", LEAKER)
    project.script("local_state.py", LOCAL_STATE)
    project.scenario(
        "leaks",
        """
        steps:
          first: {contract: Leaker, env: {STEP: first}}
          second: {contract: Leaker, env: {STEP: second}, inputs: {previous: first.out}}
          third: {contract: Leaker, env: {STEP: third}, inputs: {previous: second.out}}
        """,
    )
    return project


def test_no_state_leaks_from_one_forked_step_to_the_next(leaky_chain: PipelineProject) -> None:
    report = leaky_chain.root / "run.json"
    result = leaky_chain.run_subprocess("--cursus-json", str(report))
    result.assert_outcomes(passed=5)
    steps = _json_steps(leaky_chain, report)
    assert {steps[name]["metrics"]["executor"] for name in ("first", "second", "third")} == {"forked"}
    seen = [_observations(leaky_chain, "leaks", name) for name in ("second", "third")]
    for observed in seen:
        assert observed["preloaded_flag"] is None, "a preloaded module's globals leaked"
        assert observed["numpy_printoptions"] == 8, "numpy's print options leaked"
        assert observed["sigterm_default"], "a signal handler leaked"
        assert observed["cwd_is_workspace"], "the working directory leaked"
        assert observed["leaked_env"] is None, "an environment variable leaked"
        assert observed["threads"] == 1, "a thread leaked"
        assert observed["local_imports"] == 1, "the script's own module was not imported afresh"
        assert not observed["sys_path_leak"], "sys.path leaked"
    first = _observations(leaky_chain, "leaks", "first")
    assert len({first["random"], *(observed["random"] for observed in seen)}) == 3, (
        "numpy's global generator is reseeded per step"
    )
    assert first["ppid"] == seen[0]["ppid"] == seen[1]["ppid"], "all three forked from one warm parent"


def test_a_step_leaving_a_non_daemon_thread_still_ends(leaky_chain: PipelineProject) -> None:
    # each step of leaky_chain starts a 600 s non-daemon thread: the step must end anyway
    started = time.monotonic()
    leaky_chain.run_subprocess().assert_outcomes(passed=5)
    assert time.monotonic() - started < 300


# --- limits and the process tree -------------------------------------------------------------

TREE_SCRIPT = """
import os, subprocess, sys, time

def main(input_paths, output_paths, environ_vars, job_args):
    open(environ_vars["PID_FILE"], "w").write(str(os.getpid()))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    open(environ_vars["GRANDCHILD_PID_FILE"], "w").write(str(child.pid))
    if environ_vars["MODE"] == "hang":
        time.sleep(600)
    hog = []
    while True:
        hog.append(bytearray(20 * 2**20))
        time.sleep(0.01)
"""


@pytest.mark.parametrize("mode", ["hang", "memory"])
def test_timeout_and_memory_limit_kill_the_forked_step_and_its_whole_tree(project: PipelineProject, mode: str) -> None:
    pid_file, grandchild_file = project.root / "step.pid", project.root / "grandchild.pid"
    project.contract("Tree", entry_point="tree.py")
    project.script("tree.py", TREE_SCRIPT)
    project.scenario(
        "limits",
        f"""
        steps:
          tree:
            contract: Tree
            timeout: {3 if mode == "hang" else 120}
            max_memory_mb: {200 if mode == "memory" else 4000}
            env: {{PID_FILE: "{pid_file}", GRANDCHILD_PID_FILE: "{grandchild_file}", MODE: {mode}}}
        """,
    )
    report = project.root / "run.json"
    result = project.run_subprocess("--cursus-json", str(report))
    result.assert_outcomes(failed=1)
    expected = "exceeded its timeout of 3s" if mode == "hang" else "exceeded its memory limit of 200 MB"
    result.stdout.fnmatch_lines([f"*{expected}*"])
    assert _json_steps(project, report)["tree"]["metrics"]["executor"] == "forked"
    for path in (pid_file, grandchild_file):
        assert (
            not psutil.pid_exists(int(path.read_text()))
            or psutil.Process(int(path.read_text())).status() == psutil.STATUS_ZOMBIE
        )


POOL_SCRIPT = """
import multiprocessing, os, subprocess, sys
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

def square(x):
    return x * x

def main(input_paths, output_paths, environ_vars, job_args):
    with multiprocessing.Pool(2) as pool:
        squares = pool.map(square, range(10))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        spawned = pool.map(square, range(3))
    product = np.ones((400, 400)) @ np.ones((400, 400))  # OpenBLAS' threads, after fork
    table = pa.table({"x": np.arange(200_000)})
    path = os.path.join(output_paths["out"], "x.parquet")
    pq.write_table(table, path)
    total = pq.read_table(path, use_threads=True).column("x").to_numpy().sum()  # arrow's pool
    rerun = subprocess.run([sys.executable, __file__, "--as-child"], capture_output=True, text=True, check=True)
    with open(os.path.join(output_paths["out"], "result.txt"), "w") as handle:
        handle.write(f"{sum(squares)} {sum(spawned)} {product[0, 0]:.0f} {total} {rerun.stdout.strip()}")

if __name__ == "__main__" and "--as-child" in sys.argv:
    print("child ran")
"""


def test_pool_fork_spawn_blas_and_arrow_threads_work_in_a_forked_step(project: PipelineProject) -> None:
    project.contract("Pool", entry_point="pool_step.py")
    project.script("pool_step.py", POOL_SCRIPT)
    project.scenario(
        "pool",
        "steps:\n  a: {contract: Pool}\n  b: {contract: Pool, env: {RUN: b}}\n",
    )
    report = project.root / "run.json"
    project.run_subprocess("--cursus-json", str(report)).assert_outcomes(passed=2)
    for step in ("a", "b"):
        assert (
            project.step_dir("pool", step) / "output" / "out" / "result.txt"
        ).read_text() == "285 5 400 19999900000 child ran"
        assert _json_steps(project, report)[step]["metrics"]["executor"] == "forked"


# --- falling back, and a warm parent that dies -------------------------------------------------

FAILS_WITHOUT_ITS_ENV = """
import os
if "TENANT" not in os.environ:
    raise RuntimeError("TENANT must be set before importing tenant_config")
TENANT = os.environ["TENANT"]
"""


def test_a_failing_preload_import_falls_back_to_fresh_interpreters_with_a_warning(
    project: PipelineProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = project.root / "site-packages-like"
    site.mkdir()
    (site / "tenant_config.py").write_text(FAILS_WITHOUT_ITS_ENV)
    monkeypatch.setenv("PYTHONPATH", str(site))
    project.contract("Tenant", entry_point="tenant_step.py")
    project.script(
        "tenant_step.py",
        """
        import os
        import tenant_config

        def main(input_paths, output_paths, environ_vars, job_args):
            open(os.path.join(output_paths["out"], "tenant.txt"), "w").write(tenant_config.TENANT)
        """,
    )
    project.scenario(
        "tenant",
        "steps:\n  load: {contract: Tenant, env: {TENANT: acme}}\n",
    )
    report = project.root / "run.json"
    result = project.run_subprocess("--cursus-json", str(report))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*CursusExecutorWarning: preloading tenant_config failed: RuntimeError: TENANT must be set*fresh "
            "interpreters*"
        ]
    )
    assert _json_steps(project, report)["load"]["metrics"]["executor"] == "fresh"
    assert (project.step_dir("tenant", "load") / "output" / "out" / "tenant.txt").read_text() == "acme"


def test_a_module_starting_threads_at_import_is_left_to_the_steps(
    project: PipelineProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = project.root / "site-packages-like"
    site.mkdir()
    (site / "telemetry_agent.py").write_text(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(600,), daemon=True, name='flusher').start()\nVALUE = 42\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    project.contract("Agent", entry_point="agent_step.py")
    project.script(
        "agent_step.py",
        """
        import os, threading
        import telemetry_agent

        def main(input_paths, output_paths, environ_vars, job_args):
            names = sorted(thread.name for thread in threading.enumerate())
            open(os.path.join(output_paths["out"], "seen.txt"), "w").write(f"{telemetry_agent.VALUE} {names}")
        """,
    )
    project.scenario(
        "agent",
        "steps:\n  one: {contract: Agent}\n  two: {contract: Agent, env: {X: '2'}}\n",
    )
    report = project.root / "run.json"
    result = project.run_subprocess("--cursus-json", str(report))
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*telemetry_agent is not preloaded: it starts threads when imported (flusher)*"])
    for step in ("one", "two"):
        assert _json_steps(project, report)[step]["metrics"]["executor"] == "forked"
        assert (
            project.step_dir("agent", step) / "output" / "out" / "seen.txt"
        ).read_text() == "42 ['MainThread', 'flusher']", "imported by the step itself"


def test_a_preload_import_that_kills_the_parent_falls_back_after_one_restart(
    project: PipelineProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = project.root / "site-packages-like"
    site.mkdir()
    (site / "crashy.py").write_text("import os\nos._exit(3)  # as a segfaulting C extension would end the process\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    project.contract("Crashy", entry_point="crashy_step.py")
    project.script(
        "crashy_step.py",
        "try:\n    import crashy\nexcept Exception:\n    crashy = None\n\ndef main(i, o, e, j):\n    pass\n",
    )
    project.scenario(
        "crashy",
        "steps:\n  one: {contract: Crashy}\n  two: {contract: Crashy, env: {X: '2'}}\n",
    )
    report = project.root / "run.json"
    result = project.run_subprocess(
        "--cursus-json", str(report), "-W", "always::pytest_cursus.execution.warm_executor.CursusExecutorWarning"
    )
    result.stdout.fnmatch_lines(
        [
            "*was lost: it died while importing*crashy*starting it again*",
            "*died twice while starting one step while importing*crashy*fresh interpreters*",
        ]
    )
    assert "did not answer" not in result.stdout.str()
    # a fresh interpreter runs the script's own `import crashy`: the step ends the same way it would in production
    assert {step["metrics"]["executor"] for step in _json_steps(project, report).values() if step["metrics"]} == {
        "fresh"
    }


def test_a_step_done_before_the_first_sample_still_has_a_wall_time_and_a_peak(tmp_path: Path) -> None:
    step = _scenario_plan(tmp_path, "def main(i, o, e, j):\n    pass\n")
    launcher = WarmForkLauncher(base_env=child_environment({}), workdir=tmp_path / "warm")
    runner = StepRunner(tmp_path / "ws", launcher=launcher)
    try:
        metrics = [runner.run(step, {}).metrics for _ in range(10)]
    finally:
        launcher.close()
    assert all(m is not None and m.executor == "forked" for m in metrics)
    assert all(m.peak_rss_bytes > 5 * 2**20 for m in metrics), "at least the RSS the child had when main() returned"
    assert all(m.wall_seconds > 0.0005 for m in metrics), "from the fork, not from after the launch round trip"


def test_no_preload_starts_every_step_in_a_fresh_interpreter(one_step: PipelineProject) -> None:
    report = one_step.root / "run.json"
    one_step.run_subprocess("--cursus-no-preload", "--cursus-json", str(report)).assert_outcomes(passed=1)
    assert _json_steps(one_step, report)["only"]["metrics"]["executor"] == "fresh"


def test_a_step_setting_a_load_time_variable_starts_fresh(project: PipelineProject) -> None:
    project.contract("Threads", entry_point="threads.py")
    project.script(
        "threads.py",
        """
        import os
        import numpy

        def main(input_paths, output_paths, environ_vars, job_args):
            open(os.path.join(output_paths["out"], "n.txt"), "w").write(os.environ["OMP_NUM_THREADS"])
        """,
    )
    project.scenario(
        "threads",
        "steps:\n  one: {contract: Threads, env: {OMP_NUM_THREADS: '1'}}\n",
    )
    report = project.root / "run.json"
    project.run_subprocess("--cursus-json", str(report)).assert_outcomes(passed=1)
    assert _json_steps(project, report)["one"]["metrics"]["executor"] == "fresh", (
        "native libraries read OMP_NUM_THREADS when loaded"
    )


PARENT_KILLER = """
import os, signal, time

def main(input_paths, output_paths, environ_vars, job_args):
    marker = environ_vars["MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").write(str(os.getppid()))
        os.kill(os.getppid(), signal.SIGKILL)  # the warm parent dies under this step
        time.sleep(30)
    with open(os.path.join(output_paths["out"], "parent.txt"), "w") as handle:
        handle.write(str(os.getppid()))
"""


def test_a_warm_parent_dying_mid_step_is_restarted_and_the_step_run_again(project: PipelineProject) -> None:
    marker = project.root / "killed-parent.pid"
    project.contract("Killer", entry_point="killer.py")
    project.script("killer.py", PARENT_KILLER)
    project.script(
        "after.py",
        "import os\ndef main(input_paths, output_paths, environ_vars, job_args):\n"
        "    open(os.path.join(output_paths['out'], 'parent.txt'), 'w').write(str(os.getppid()))\n",
    )
    project.contract(
        "After", entry_point="after.py", inputs={"previous": {"path": "/opt/ml/processing/input/previous"}}
    )
    project.scenario(
        "dying",
        f"""
        steps:
          victim: {{contract: Killer, env: {{MARKER: "{marker}"}}}}
          after: {{contract: After, inputs: {{previous: victim.out}}}}
        """,
    )
    result = project.run_subprocess("-W", "always::pytest_cursus.execution.warm_executor.CursusExecutorWarning")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*warm parent process (pid*) was lost: it died*starting it again*"])
    killed = int(marker.read_text())
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == psutil.STATUS_ZOMBIE
    rerun_parent = int((project.step_dir("dying", "victim") / "output" / "out" / "parent.txt").read_text())
    after_parent = int((project.step_dir("dying", "after") / "output" / "out" / "parent.txt").read_text())
    assert rerun_parent == after_parent != killed, "both ran in the restarted parent"


def _scenario_plan(root: Path, script: str, name: str = "s") -> object:
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "contracts").mkdir(exist_ok=True)
    (root / "scripts" / f"{name}.py").write_text(textwrap.dedent(script))
    (root / "contracts" / f"{name}.step.yaml").write_text(
        f"step_type: {name.upper()}\ncontract:\n  entry_point: {name}.py\n  inputs: {{}}\n"
        f"  outputs: {{out: {{path: /opt/ml/processing/output}}}}\n"
    )
    (root / f"{name}.yaml").write_text(
        f"contracts: [contracts]\nscripts: [scripts]\nsteps:\n  {name}: {{contract: {name.upper()}}}\n"
    )
    return load_scenario(root / f"{name}.yaml").steps[name]


def test_a_warm_parent_that_died_between_steps_is_started_again(tmp_path: Path) -> None:
    step = _scenario_plan(
        tmp_path,
        "import os\ndef main(i, o, e, j):\n    open(os.path.join(o['out'], 'ppid'), 'w').write(str(os.getppid()))\n",
    )
    launcher = WarmForkLauncher(base_env=child_environment({}), workdir=tmp_path / "warm")
    runner = StepRunner(tmp_path / "ws", launcher=launcher)
    try:
        assert runner.run(step, {}).passed
        first_parent = launcher.parent_pid
        assert first_parent is not None
        os.kill(first_parent, signal.SIGKILL)
        psutil.Process(first_parent).wait(DEATH_LIMIT_S)
        with pytest.warns(CursusExecutorWarning, match="was lost: it died between two steps"):
            result = runner.run(step, {})
        assert result.passed and result.metrics is not None and result.metrics.executor == "forked"
        assert launcher.parent_pid not in (None, first_parent)
        assert (tmp_path / "ws" / "s" / "s" / "output" / "out" / "ppid").read_text() == str(launcher.parent_pid)
    finally:
        launcher.close()


def test_a_forked_step_holds_no_descriptor_of_the_plugin(tmp_path: Path) -> None:
    # e.g. the warm parent's control socket: a step's daemon would keep it open after the parent died
    step = _scenario_plan(
        tmp_path,
        """
        import os
        def main(i, o, e, j):
            fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
            targets = [os.readlink(f"/proc/self/fd/{fd}") for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")]
            open(os.path.join(o["out"], "fds.txt"), "w").write("\\n".join(targets))
        """,
    )
    launcher = WarmForkLauncher(base_env=child_environment({}), workdir=tmp_path / "warm")
    try:
        assert StepRunner(tmp_path / "ws", launcher=launcher).run(step, {}).passed
    finally:
        launcher.close()
    targets = (tmp_path / "ws" / "s" / "s" / "output" / "out" / "fds.txt").read_text().splitlines()
    assert targets == [
        "/dev/null",
        str(tmp_path / "ws" / "s" / "s" / "logs" / "stdout.log"),
        str(tmp_path / "ws" / "s" / "s" / "logs" / "stderr.log"),
    ]


def test_closing_the_launcher_ends_the_warm_parent(tmp_path: Path) -> None:
    step = _scenario_plan(tmp_path, "def main(i, o, e, j):\n    pass\n")
    launcher = WarmForkLauncher(base_env=child_environment({}), workdir=tmp_path / "warm")
    assert StepRunner(tmp_path / "ws", launcher=launcher).run(step, {}).passed
    parent = psutil.Process(launcher.parent_pid)
    launcher.close()
    parent.wait(DEATH_LIMIT_S)
    assert not parent.is_running()


def test_a_started_parent_is_the_one_the_first_step_forks_from(tmp_path: Path) -> None:
    step = _scenario_plan(
        tmp_path,
        "import os\ndef main(i, o, e, j):\n    open(os.path.join(o['out'], 'ppid'), 'w').write(str(os.getppid()))\n",
    )
    launcher = WarmForkLauncher(base_env=child_environment({}), workdir=tmp_path / "warm")
    try:
        launcher.start()
        launcher.start()  # a second start is a no-op
        started = launcher.parent_pid
        assert started is not None and launcher.starts == 1
        assert StepRunner(tmp_path / "ws", launcher=launcher).run(step, {}).passed
        assert (tmp_path / "ws" / "s" / "s" / "output" / "out" / "ppid").read_text() == str(started)
    finally:
        launcher.close()


def test_the_warm_parent_is_started_before_the_first_step_is_set_up_but_not_for_collect_only(
    one_step: PipelineProject,
) -> None:
    one_step.pytester.makeconftest(
        """
        from pytest_cursus.plugin.session import cursus_session

        def pytest_runtest_setup(item):
            launcher = cursus_session(item.config).started_launcher
            with open("parent_at_setup.txt", "a") as record:
                record.write(f"{getattr(launcher, 'parent_pid', None)}\\n")
        """
    )
    one_step.run_subprocess("--collect-only", "-q").assert_outcomes()
    assert list(one_step.workspace.rglob("warm-parent.log")) == []
    one_step.run_subprocess().assert_outcomes(passed=1)
    assert (one_step.root / "parent_at_setup.txt").read_text().strip().isdigit()


def test_killing_pytest_leaves_neither_the_warm_parent_nor_the_step_running(project: PipelineProject) -> None:
    step_pid, parent_pid = project.root / "step.pid", project.root / "parent.pid"
    project.contract("Sleeper", entry_point="sleeper.py")
    project.script(
        "sleeper.py",
        f"""
        import os, time
        def main(input_paths, output_paths, environ_vars, job_args):
            open("{parent_pid}", "w").write(str(os.getppid()))
            open("{step_pid}", "w").write(str(os.getpid()))
            time.sleep(600)
        """,
    )
    project.scenario("sleepy", "steps:\n  nap: {contract: Sleeper, timeout: 600}\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--cursus-scenarios",
            "scenarios",
            "--cursus-workspace",
            str(project.workspace),
            "-p",
            "no:cacheprovider",
        ],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    watched: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while not (step_pid.exists() and step_pid.read_text()) and time.monotonic() < deadline:
            assert process.poll() is None, "pytest ended before the step started"
            time.sleep(0.05)
        watched = [psutil.Process(int(parent_pid.read_text())), psutil.Process(int(step_pid.read_text()))]
        os.killpg(process.pid, signal.SIGKILL)  # no cleanup code of pytest's runs
        process.wait()
        gone, alive = psutil.wait_procs(watched, timeout=DEATH_LIMIT_S)
        assert not alive, f"outlived pytest: {[p.pid for p in alive]}"
    finally:
        for survivor in watched:
            if survivor.is_running():
                survivor.kill()


# --- which modules are preloaded -------------------------------------------------------------


def test_preload_candidates_are_the_scripts_top_level_third_party_imports(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    (scripts / "mypkg").mkdir(parents=True)
    (scripts / "mypkg" / "__init__.py").write_text("import scipy.stats\nfrom . import inner\n")
    (scripts / "mypkg" / "inner.py").write_text("import pyarrow.parquet as pq\n")
    (scripts / "pandas_helpers.py").write_text("import sklearn\n")
    (scripts / "yaml.py").write_text("# a local module named like an installed one: it shadows it\n")
    script = scripts / "step.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, json
            import numpy as np
            from pandas import DataFrame
            import mypkg
            import pandas_helpers
            import yaml
            import torch
            try:
                import ujson
            except ImportError:
                ujson = None

            def main(input_paths, output_paths, environ_vars, job_args):
                import xgboost  # run time only: not preloaded
            """
        )
    )
    found = preload_candidates(script, None, ())
    assert found[:4] == ("os", "json", "numpy", "pandas")
    assert "pandas.DataFrame?" in found, "a from-import name may be a submodule"
    assert {"scipy.stats", "pyarrow.parquet", "sklearn", "ujson"} <= set(found), (
        "followed into the script's own modules"
    )
    assert not {"mypkg", "pandas_helpers", "yaml"} & set(found), "the scenario's own modules are never preloaded"
    assert "torch" not in found and "torch" in NOT_FORK_SAFE
    assert "xgboost" not in found


def test_load_time_variables_that_differ_from_the_parent_need_a_fresh_interpreter() -> None:
    parent = {"OMP_NUM_THREADS": "4", "HOME": "/root"}
    assert needs_fresh_interpreter({"OMP_NUM_THREADS": "1", "ALPHA": "x"}, parent) == ["OMP_NUM_THREADS"]
    assert needs_fresh_interpreter({"OMP_NUM_THREADS": "4", "MKL_ANYTHING": "1"}, parent) == ["MKL_ANYTHING"]
    assert needs_fresh_interpreter({"LEARNING_RATE": "0.1"}, parent) == []


# --- --cursus-debug --------------------------------------------------------------------------


def test_debug_runs_the_step_in_pytest_so_pdb_stops_in_the_script(project: PipelineProject) -> None:
    project.contract("Crasher", entry_point="crasher.py")
    project.script(
        "crasher.py",
        """
        import os
        def main(input_paths, output_paths, environ_vars, job_args):
            cursus_local_variable = "visible to the debugger"
            raise ValueError("inspect me")
        """,
    )
    project.scenario("debugging", "steps:\n  crash: {contract: Crasher}\n")
    child = project.pytester.spawn_pytest(
        f"--cursus-scenarios scenarios --cursus-workspace {project.workspace} -p no:cacheprovider --cursus-debug --pdb",
        expect_timeout=60,
    )
    child.expect("ValueError: inspect me")
    child.expect(r"\(Pdb\)")
    child.sendline("p cursus_local_variable")
    child.expect("visible to the debugger")
    child.sendline("c")
    child.expect("1 failed")
    child.wait()


def test_debug_breakpoint_in_a_script_stops_in_the_pytest_process(project: PipelineProject) -> None:
    project.contract("Paused", entry_point="paused.py")
    project.script(
        "paused.py",
        """
        import os
        def main(input_paths, output_paths, environ_vars, job_args):
            where = os.getcwd()
            breakpoint()
            open(os.path.join(output_paths["out"], "after.txt"), "w").write("resumed")
        """,
    )
    project.scenario("debugging", "steps:\n  pause: {contract: Paused}\n")
    child = project.pytester.spawn_pytest(
        f"--cursus-scenarios scenarios --cursus-workspace {project.workspace} -p no:cacheprovider --cursus-debug",
        expect_timeout=60,
    )
    child.expect(r"\(Pdb\)")
    child.sendline("p where")
    child.expect("pause")  # the step's own workspace is the working directory
    child.sendline("c")
    child.expect("1 passed")
    child.wait()
    assert (project.step_dir("debugging", "pause") / "output" / "out" / "after.txt").read_text() == "resumed"


def test_debug_leaves_no_trace_in_the_pytest_process_between_steps(project: PipelineProject) -> None:
    project.contract("Mutator", entry_point="mutator.py")
    project.script("counter_module.py", "COUNT = 0\n")
    project.script(
        "mutator.py",
        """
        import os
        import counter_module

        def main(input_paths, output_paths, environ_vars, job_args):
            counter_module.COUNT += 1
            os.environ["CURSUS_DEBUG_LEAK"] = "yes"
            open(os.path.join(output_paths["out"], "count.txt"), "w").write(str(counter_module.COUNT))
        """,
    )
    project.scenario(
        "debugging",
        "steps:\n  one: {contract: Mutator}\n  two: {contract: Mutator}\n",
    )
    project.pytester.makeconftest(
        """
        import os
        def pytest_runtest_teardown(item):
            assert "CURSUS_DEBUG_LEAK" not in os.environ, "the step's environment stayed in pytest's"
        """
    )
    report = project.root / "run.json"
    project.run_subprocess("--cursus-debug", "--cursus-json", str(report)).assert_outcomes(passed=2)
    for step in ("one", "two"):
        assert (project.step_dir("debugging", step) / "output" / "out" / "count.txt").read_text() == "1"
        assert _json_steps(project, report)[step]["metrics"]["executor"] == "in_process"


def test_debug_leaves_the_inputs_of_a_step_that_raised_writable(project: PipelineProject) -> None:
    project.contract("Source", entry_point="source.py")
    project.script(
        "source.py",
        "import os\ndef main(i, o, e, j):\n    open(os.path.join(o['out'], 'x.csv'), 'w').write('a\\n1\\n')\n",
    )
    project.contract("Reader", entry_point="reader.py", inputs={"data": {"path": "/opt/ml/processing/input/data"}})
    project.script("reader.py", "def main(i, o, e, j):\n    raise ValueError('debug me')\n")
    project.scenario(
        "debugging",
        "steps:\n  source: {contract: Source}\n  reader: {contract: Reader, inputs: {data: source.out}}\n",
    )
    result = project.run_subprocess("--cursus-debug", "-k", "reader and not compat")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ValueError: debug me*"])
    staged = project.step_dir("debugging", "reader") / "input" / "data" / "x.csv"
    # mode bits, not os.access: root may write anything
    assert staged.stat().st_mode & stat.S_IWUSR and staged.parent.stat().st_mode & stat.S_IWUSR


def test_a_debug_failure_shows_the_script_frames_only(project: PipelineProject) -> None:
    project.contract("Crasher", entry_point="crasher.py")
    project.script(
        "crasher.py",
        """
        def check(ratio):
            raise ValueError(f"ratio must be below 1, got {ratio}")

        def main(input_paths, output_paths, environ_vars, job_args):
            check(1.7)
        """,
    )
    project.scenario("debugging", "steps:\n  crash: {contract: Crasher}\n")
    result = project.run_subprocess("--cursus-debug")
    result.assert_outcomes(failed=1)
    lines = result.stdout.lines
    failure = lines[lines.index(next(line for line in lines if "FAILURES" in line)) :]
    failure = failure[: failure.index(next(line for line in failure[1:] if line.startswith("=====")))]
    shown = "\n".join(failure)
    assert "check(1.7)" in shown and "scripts/crasher.py:6: " in failure  # main()'s frame, then check()'s
    assert "E       ValueError: ratio must be below 1, got 1.7" in failure
    assert "scripts/crasher.py:3: ValueError" in failure
    for machinery in ("/pluggy/", "/_pytest/", "/pytest_cursus/"):  # their frames, by their files' paths
        assert machinery not in shown
    assert len(failure) < 30, shown


def test_debug_with_xdist_is_a_usage_error(one_step: PipelineProject) -> None:
    result = one_step.run_subprocess("--cursus-debug", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cursus-debug*cannot be combined with -n*"])


def test_each_xdist_worker_has_its_own_warm_parent(project: PipelineProject) -> None:
    project.contract("Parent", entry_point="parent.py")
    project.script(
        "parent.py",
        "import os\ndef main(i, o, e, j):\n    open(os.path.join(o['out'], 'ppid'), 'w').write(str(os.getppid()))\n",
    )
    project.scenario("a", "steps:\n  one: {contract: Parent}\n")
    project.scenario("b", "steps:\n  one: {contract: Parent, env: {X: b}}\n")
    report = project.root / "run.json"
    project.run_subprocess("-n", "2", "--dist", "loadfile", "--cursus-json", str(report)).assert_outcomes(passed=2)
    parents = {
        scenario: int(next(project.workspace.glob(f"*/{scenario}/one/output/out/ppid")).read_text())
        for scenario in ("a", "b")
    }
    assert parents["a"] != parents["b"]
    assert all(
        not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE for pid in parents.values()
    )
