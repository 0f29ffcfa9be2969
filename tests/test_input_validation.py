"""Names that become environment variables or paths, and the size of a YAML document, are checked
when the file is loaded: a bad one is an error naming the file and line, never a hang, a
stringified list, or a write outside the workspace."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_project import PipelineProject

GOOD = """
steps:
  only: {contract: Writer}
"""


def _run_bad(project: PipelineProject, source: str) -> pytest.RunResult:
    project.scenario("bad", source)
    result = project.run()
    result.assert_outcomes(passed=1, errors=1)  # the valid scenario still ran
    assert "Traceback" not in result.stdout.str()
    return result


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("{LIST: [a, b]}", "env LIST: expected a string, number or true/false, found a list*"),
        ("{MAP: {a: 1}}", "env MAP: expected a string, number or true/false, found a dict*"),
        ('{"BAD=NAME": x}', "env name 'BAD=NAME' is not a valid environment variable name*"),
        ('{"": x}', "env name '' is not a valid environment variable name*"),
        ('{NUL: "a\\0b"}', "env NUL: the value contains a NUL character*"),
    ],
)
def test_an_env_that_no_environment_can_hold_is_an_error_at_collection(
    one_step: PipelineProject, env: str, message: str
) -> None:
    result = _run_bad(one_step, f"steps:\n  only: {{contract: Writer, env: {env}}}\n")
    result.stdout.fnmatch_lines([f"*scenarios/bad.yaml:2: steps.only.env: {message}"])


def test_an_env_in_defaults_is_checked_too(one_step: PipelineProject) -> None:
    result = _run_bad(one_step, "defaults:\n  env: {X: [1]}\nsteps:\n  only: {contract: Writer}\n")
    result.stdout.fnmatch_lines(["*scenarios/bad.yaml:2: defaults.env: env X: expected a string*found a list*"])


def test_an_alias_bomb_is_refused_quickly_naming_the_innermost_line_too_large(tmp_path: Path) -> None:
    from pytest_cursus.errors import ConfigError
    from pytest_cursus.formats.yaml_document import YamlDocument

    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]  # 11 values; each level ten times the last
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    source = "anchors:\n" + "".join(f"  {line}\n" for line in levels)
    source += "steps:\n  only:\n    contract: Writer\n    job_args:\n      bomb: *a9\n"
    with pytest.raises(ConfigError, match="expands to more than 1,000,000 values once its aliases") as caught:
        YamlDocument.parse(source, tmp_path / "bad.yaml")  # unbounded, 10**10 values: it would never return
    assert str(caught.value).startswith(f"{tmp_path / 'bad.yaml'}:7: ")  # a5: 1,111,111 values


def test_a_text_source_filename_must_stay_in_its_directory(one_step: PipelineProject) -> None:
    for filename in ("../../escape.txt", "/tmp/abs.txt", ".."):
        result = _run_bad(
            one_step, f"data:\n  t: {{text: hello, filename: '{filename}'}}\nsteps:\n  only: {{contract: Writer}}\n"
        )
        result.stdout.fnmatch_lines([f"*scenarios/bad.yaml:2: data.t.filename: filename '{filename}' becomes a file*"])


@pytest.mark.parametrize("channel", ["../../x", "/abs", "sub/dir", ".."])
def test_a_channel_name_that_is_not_one_path_part_is_an_error_in_the_contract(
    project: PipelineProject, channel: str
) -> None:
    project.contract("Leaky", outputs={channel: {"path": "/opt/ml/processing/output"}})
    project.script("leaky.py", "def main(input_paths, output_paths, environ_vars, job_args):\n    pass\n")
    project.scenario("leak", "steps:\n  only: {contract: Leaky}\n")
    result = project.run()
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*leaky.step.yaml:*channel name '{channel}' becomes a file or directory name*"])
    assert not (project.root / "x").exists()


# Ten values, then nine levels each repeating the last ten times: 10^10 values once expanded, from 10 lines
# (lines 2-11 of a file that starts with `<key>:`); line 7 (a5, 1,111,111 values) is the innermost too large.
_BOMB_LEVELS = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)
]


def _bomb(key: str) -> str:
    return f"{key}:\n" + "".join(f"  {line}\n" for line in _BOMB_LEVELS)


def _run_capped(project: PipelineProject, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a child limited to 2 GB of address space and 300 s: a bound that regresses fails
    this test (out of memory, or the timeout) instead of eating the machine's memory."""

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))

    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args]
    command += ["--cursus-scenarios", "scenarios", "--cursus-workspace", str(project.workspace)]
    return subprocess.run(command, cwd=project.root, capture_output=True, text=True, timeout=300, preexec_fn=cap_memory)


def _write(project: PipelineProject, relative: str, text: str) -> None:
    # not project.scenario(): it reads the text with yaml.safe_load to add these two lines
    (project.root / relative).write_text(text + "contracts: [../contracts]\nscripts: [../scripts]\n")


@pytest.mark.parametrize(
    ("source", "where"),
    [
        (_bomb("anchors") + "steps:\n  only:\n    contract: Writer\n    job_args:\n      bomb: *a9\n", "job_args"),
        (_bomb("anchors") + "steps:\n  only:\n    contract: Writer\n    env:\n      BOMB: *a9\n", "env"),
        (_bomb("unknown_key") + "steps:\n  only:\n    contract: Writer\n", "unknown top-level key"),
    ],
    ids=["job_args", "env", "unknown-key"],
)
def test_an_alias_bomb_in_a_scenario_is_one_error_naming_file_and_line_through_the_plugin(
    one_step: PipelineProject, source: str, where: str
) -> None:
    _write(one_step, "scenarios/bomb.yaml", source)
    result = _run_capped(one_step, "-n", "1")  # in an xdist worker, where it hung
    assert "1 passed, 1 error" in result.stdout, result.stdout  # the valid scenario still ran
    assert "scenarios/bomb.yaml:7: the document expands to more than 1,000,000 values" in result.stdout
    assert "Traceback" not in result.stdout


def test_an_alias_bomb_in_a_contract_file_fails_its_item_and_the_scenario_using_it(
    one_step: PipelineProject,
) -> None:
    source = _bomb("anchors") + "step_type: Bomb\ncontract:\n  entry_point: writer.py\n  outputs: *a9\n"
    (one_step.root / "contracts" / "bomb.step.yaml").write_text(source)
    _write(one_step, "scenarios/uses_bomb.yaml", "steps:\n  only:\n    contract: Bomb\n")
    result = _run_capped(one_step, "--cursus-contracts", "contracts")
    assert "1 failed, 2 passed, 1 error" in result.stdout, result.stdout  # Writer's contract and scenario pass
    assert "contracts/bomb.step.yaml:7: the document expands to more than 1,000,000 values" in result.stdout
    # the refused file is still found by the name it declares, so the scenario says which file is at fault
    assert "contract 'Bomb' is in " in result.stdout


def test_an_alias_bomb_in_a_dag_yaml_is_an_error_of_the_scenario_naming_the_dag_file(
    one_step: PipelineProject,
) -> None:
    (one_step.root / "pipeline.dag.yaml").write_text(_bomb("anchors") + "dag:\n  nodes: [Writer]\n  edges: *a9\n")
    _write(one_step, "scenarios/dag.yaml", "dag: ../pipeline.dag.yaml\n")
    result = _run_capped(one_step)
    assert "1 passed, 1 error" in result.stdout, result.stdout
    assert "pipeline.dag.yaml:7: the document expands to more than 1,000,000 values" in result.stdout


def test_a_contract_refused_for_its_size_is_still_named_by_its_step_type(tmp_path: Path) -> None:
    from pytest_cursus.formats.contracts import ContractRegistry

    path = tmp_path / "bomb.step.yaml"
    path.write_text(_bomb("anchors") + "step_type: Bomb\ncontract:\n  outputs: *a9\n")
    registry = ContractRegistry.scan([tmp_path])
    assert registry.broken_names == {path: "Bomb"}
    assert "expands to more than 1,000,000 values" in str(registry.broken[path])
