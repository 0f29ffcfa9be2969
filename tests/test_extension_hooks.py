"""The pytest_cursus_* hooks (run/hookspecs.py): implemented in conftest.py files under pytest, and
passed as plugins= to the notebook API."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pluggy
import pytest

from pipeline_project import PipelineProject
from pytest_cursus import run_scenario
from pytest_cursus.errors import ConfigErrors
from pytest_cursus.run.extension_hooks import HOOK_NAMES, plugin_manager

ENV_WRITER = """
import json, os

def main(input_paths, output_paths, environ_vars, job_args):
    seen = {
        "environ_vars": environ_vars,
        "os_environ": {k: os.environ.get(k) for k in ("RUN_MODE", "SM_CURRENT_HOST")},
        "job_type": job_args.job_type,
    }
    with open(os.path.join(output_paths["out"], "seen.json"), "w") as handle:
        json.dump(seen, handle)
"""

COPIER = """
import os, shutil

def main(input_paths, output_paths, environ_vars, job_args):
    for name in sorted(os.listdir(input_paths["data"])):
        shutil.copy(os.path.join(input_paths["data"], name), output_paths["out"])
"""


@pytest.fixture
def env_step(project: PipelineProject) -> PipelineProject:
    """Scenario `envs.yaml`: one step `show` writing what env and job args it got to seen.json."""
    project.contract(
        "EnvWriter", entry_point="env_writer.py", optional_env={"RUN_MODE": "pipeline"}, job_arguments=["job_type"]
    )
    project.script("env_writer.py", ENV_WRITER)
    project.scenario(
        "envs",
        """
        steps:
          show: {contract: EnvWriter, job_args: {job_type: training}}
        """,
    )
    return project


@pytest.fixture
def copier(project: PipelineProject) -> None:
    """Contract `Copier`: copies the files of its input `data` to its output `out`."""
    project.contract("Copier", entry_point="copier.py", inputs={"data": {"path": "/opt/ml/processing/input/data"}})
    project.script("copier.py", COPIER)


def seen(project: PipelineProject, scenario: str = "envs", step: str = "show") -> dict[str, Any]:
    return json.loads((project.step_dir(scenario, step) / "output" / "out" / "seen.json").read_text())


def conftest(project: PipelineProject, source: str, where: str = "scenarios") -> None:
    (project.root / where / "conftest.py").write_text(textwrap.dedent(source))


# --- under pytest ---------------------------------------------------------------------------------


def test_a_misspelt_hook_in_a_conftest_is_a_usage_error(env_step: PipelineProject) -> None:
    conftest(env_step, "def pytest_cursus_step_finishd(result):\n    pass\n")

    result = env_step.run()

    assert result.ret != 0
    assert "unknown hook 'pytest_cursus_step_finishd'" in result.stdout.str() + result.stderr.str()


def test_adjust_step_changes_the_env_and_job_args_the_script_gets(env_step: PipelineProject) -> None:
    conftest(
        env_step,
        """
        def pytest_cursus_adjust_step(step, env, job_args):
            env["RUN_MODE"] = "local"
            env.setdefault("SM_CURRENT_HOST", "algo-1")
            job_args["job_type"] = "validation"
        """,
    )

    env_step.run().assert_outcomes(passed=1)

    got = seen(env_step)
    assert got["environ_vars"] == {"RUN_MODE": "local", "SM_CURRENT_HOST": "algo-1"}
    assert got["os_environ"] == {"RUN_MODE": "local", "SM_CURRENT_HOST": "algo-1"}
    assert got["job_type"] == "validation"


def test_an_adjustment_is_part_of_the_cache_key(env_step: PipelineProject, monkeypatch: pytest.MonkeyPatch) -> None:
    conftest(
        env_step,
        """
        import os

        def pytest_cursus_adjust_step(env):
            env["RUN_MODE"] = os.environ["WANTED_MODE"]
        """,
    )
    outcomes = []
    for mode in ("a", "a", "b"):
        monkeypatch.setenv("WANTED_MODE", mode)
        outcomes.append("CACHED" in env_step.run("-v").stdout.str())

    assert outcomes == [False, True, False]
    assert seen(env_step)["environ_vars"]["RUN_MODE"] == "b"


def test_an_adjusted_env_value_that_is_not_a_string_fails_the_step_naming_it(env_step: PipelineProject) -> None:
    conftest(env_step, "def pytest_cursus_adjust_step(env):\n    env['RETRIES'] = 3\n")

    result = env_step.run()

    result.assert_outcomes(failed=1)
    assert (
        "pytest_cursus_adjust_step raised TypeError: env values must be strings, as in a container; got env['RETRIES'] "
        "= 3 (type=int)" in result.stdout.str()
    )


def test_check_outputs_problems_fail_the_step(env_step: PipelineProject) -> None:
    conftest(
        env_step,
        """
        def pytest_cursus_check_outputs(step, outputs):
            if (outputs["out"] / "seen.json").stat().st_size < 10_000:
                return [f"{step.name}.out: seen.json is smaller than 10 kB"]
            return []
        """,
    )

    result = env_step.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*step 'show' of scenario 'envs' failed: pytest_cursus_check_outputs: show.out: seen.json is smaller than "
            "10 kB"
        ]
    )


def test_check_outputs_judges_cached_outputs_too(env_step: PipelineProject) -> None:
    env_step.run().assert_outcomes(passed=1)
    conftest(env_step, "def pytest_cursus_check_outputs(step, outputs):\n    return ['not good enough']\n")

    result = env_step.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest_cursus_check_outputs: not good enough"])


def test_a_raising_hook_fails_the_step_with_its_own_traceback(env_step: PipelineProject) -> None:
    conftest(
        env_step,
        """
        def pytest_cursus_check_outputs(step, outputs):
            return [problem for problem in broken_rule(outputs)]

        def broken_rule(outputs):
            raise ValueError("the rule itself is broken")
        """,
    )

    result = env_step.run()

    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "pytest_cursus_check_outputs raised ValueError: the rule itself is broken" in output
    assert 'raise ValueError("the rule itself is broken")' in output  # the conftest's frame
    assert "pluggy/_" not in output and "INTERNALERROR" not in output


@pytest.mark.usefixtures("copier")
def test_step_finished_sees_every_step_produced_including_setup(project: PipelineProject) -> None:
    project.scenario(
        "chain",
        """
        data:
          seed_file: {text: "a,b\\n1,2\\n", filename: seed.csv}
        steps:
          first: {contract: Copier, inputs: {data: seed_file}}
          second: {contract: Copier, inputs: {data: first.out}}
        """,
    )
    log = project.root / "finished.log"
    conftest(
        project,
        f"""
        def pytest_cursus_step_finished(step, result):
            with open({str(log)!r}, "a") as handle:
                handle.write(f"{{step.name}} {{result.outcome}} cached={{result.cached}}\\n")
        """,
    )

    project.run("-k", "second and not compat").assert_outcomes(passed=1, deselected=2)
    project.run("-k", "second and not compat").assert_outcomes(passed=1, deselected=2)

    assert log.read_text().splitlines() == [
        "first passed cached=False",
        "second passed cached=False",
        "first passed cached=True",
        "second passed cached=True",
    ]


def test_a_conftest_applies_only_to_the_scenarios_below_it(env_step: PipelineProject) -> None:
    (env_step.root / "scenarios" / "local").mkdir()
    (env_step.root / "scenarios" / "local" / "envs_local.yaml").write_text(
        "scenario: envs_local\ncontracts: [../../contracts]\nscripts: [../../scripts]\n"
        "steps:\n  show: {contract: EnvWriter, job_args: {job_type: training}}\n"
    )
    conftest(env_step, "def pytest_cursus_adjust_step(env):\n    env['RUN_MODE'] = 'local'\n", where="scenarios/local")

    env_step.run().assert_outcomes(passed=2)

    assert seen(env_step, "envs_local")["environ_vars"]["RUN_MODE"] == "local"
    assert seen(env_step, "envs")["environ_vars"]["RUN_MODE"] == "pipeline"


@pytest.mark.usefixtures("copier")
def test_a_custom_source_kind_nobody_provides_fails_the_step_naming_the_kind(project: PipelineProject) -> None:
    project.scenario(
        "warehouse",
        """
        data:
          orders: {custom: {kind: warehouse_table, table: orders}}
        steps:
          copy: {contract: Copier, inputs: {data: orders}}
        """,
    )

    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*data.orders.custom: no plugin provides data sources of kind 'warehouse_table'; implement "
            "pytest_cursus_data_source*"
        ]
    )


def test_a_custom_source_cannot_be_combined_with_variants(project: PipelineProject) -> None:
    path = project.scenario(
        "mixed",
        """
        data:
          orders:
            custom: {kind: warehouse_table}
            local: ../data
        steps:
          copy: {contract: Copier}
        """,
    )

    with pytest.raises(
        ConfigErrors, match="'custom' cannot be combined with local: a file, text or custom source has one form only"
    ):
        run_scenario(path)


# --- through the notebook API ---------------------------------------------------------------------


class TableSource:
    """A custom kind `inline_table` whose rows the test changes between runs."""

    def __init__(self, rows: str) -> None:
        self.rows = rows
        self.calls = 0

    def pytest_cursus_data_source(self, kind: str, spec: dict[str, Any], target_dir: Path) -> Path | None:
        if kind != "inline_table":
            return None
        self.calls += 1
        (target_dir / f"{spec['name']}.csv").write_text(self.rows)
        return target_dir


@pytest.fixture
def custom_source_scenario(copier: None, project: PipelineProject) -> Path:
    return project.scenario(
        "inline",
        """
        data:
          table: {custom: {kind: inline_table, name: customers}}
        steps:
          copy: {contract: Copier, inputs: {data: table}}
        """,
    )


def test_a_plugin_object_provides_a_custom_source_to_the_notebook_api(
    custom_source_scenario: Path, tmp_path: Path
) -> None:
    source = TableSource("id,name\n1,ada\n2,grace\n")

    result = run_scenario(
        custom_source_scenario, plugins=source, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache"
    )

    assert result.passed, result
    assert result["copy"].outputs["out"].read().to_dict("list") == {"id": [1, 2], "name": ["ada", "grace"]}


def test_without_a_key_hook_a_custom_source_is_keyed_by_its_data(custom_source_scenario: Path, tmp_path: Path) -> None:
    source = TableSource("id\n1\n")
    options = {"plugins": source, "cache_dir": tmp_path / "cache"}

    first = run_scenario(custom_source_scenario, workspace=tmp_path / "1", **options)
    same = run_scenario(custom_source_scenario, workspace=tmp_path / "2", **options)
    source.rows = "id\n1\n2\n"
    changed = run_scenario(custom_source_scenario, workspace=tmp_path / "3", **options)

    assert [first["copy"].cached, same["copy"].cached, changed["copy"].cached] == [False, True, False]
    assert len(changed["copy"].outputs["out"].read()) == 2


def test_a_key_hook_spares_materialising_the_source_for_cached_steps(
    custom_source_scenario: Path, tmp_path: Path
) -> None:
    class KeyedTableSource(TableSource):
        def pytest_cursus_data_source_key(self, kind: str, spec: dict[str, Any]) -> str | None:
            return f"{spec['name']}-v1" if kind == "inline_table" else None

    source = KeyedTableSource("id\n1\n")
    run_scenario(custom_source_scenario, plugins=source, workspace=tmp_path / "1", cache_dir=tmp_path / "cache")
    again = run_scenario(custom_source_scenario, plugins=source, workspace=tmp_path / "2", cache_dir=tmp_path / "cache")

    assert again["copy"].cached
    assert source.calls == 1


def test_a_plugin_manager_can_be_passed_instead_of_plugins(custom_source_scenario: Path, tmp_path: Path) -> None:
    hookimpl = pluggy.HookimplMarker("pytest")  # what @pytest.hookimpl is

    class MarkedSource:
        @hookimpl
        def pytest_cursus_data_source(self, target_dir: Path) -> Path:
            (target_dir / "rows.csv").write_text("id\n7\n")
            return target_dir

    manager = pluggy.PluginManager("pytest")
    manager.register(MarkedSource())

    result = run_scenario(
        custom_source_scenario, plugins=manager, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache"
    )

    assert result["copy"].outputs["out"].read()["id"].tolist() == [7]


def test_a_hook_failing_in_the_notebook_fails_the_step_not_the_call(
    custom_source_scenario: Path, tmp_path: Path
) -> None:
    class Broken:
        def pytest_cursus_data_source(self, kind: str) -> Path:
            raise ConnectionError("warehouse unreachable")

    result = run_scenario(
        custom_source_scenario, plugins=Broken(), workspace=tmp_path / "ws", cache_dir=tmp_path / "cache"
    )

    assert result["copy"].failure is not None
    assert result["copy"].failure.kind == "hook"
    assert result["copy"].failure.message == "pytest_cursus_data_source raised ConnectionError: warehouse unreachable"
    assert 'raise ConnectionError("warehouse unreachable")' in (result["copy"].failure.script_traceback or "")


def test_a_misspelt_hook_of_a_plugin_is_a_type_error_listing_the_hooks() -> None:
    class Typo:
        def pytest_cursus_check_output(self, outputs: dict[str, Path]) -> list[str]:
            return []

    with pytest.raises(
        TypeError,
        match="defines pytest_cursus_check_output, which is not a pytest-cursus hook; "
        "the hooks are: .*pytest_cursus_check_outputs",
    ):
        plugin_manager(Typo())


def test_a_plugin_without_any_hook_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="expected a plugin defining one of pytest_cursus_"):
        plugin_manager(object())


def test_the_hookspecs_document_who_calls_them_and_what_they_return() -> None:
    from pytest_cursus.run import hookspecs

    for name in HOOK_NAMES:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Called" in doc, name
        assert "return" in doc.lower(), name
