"""Names that become environment variables or paths, and the size of a YAML document, are checked
when the file is loaded: a bad one is an error naming the file and line, never a hang, a
stringified list, or a write outside the workspace."""

from __future__ import annotations

import time
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
    start = time.monotonic()
    with pytest.raises(ConfigError, match="expands to more than 1,000,000 values once its aliases") as caught:
        YamlDocument.parse(source, tmp_path / "bad.yaml")
    assert time.monotonic() - start < 5
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
