"""cursus-runtime health-check, list and run, as child processes the way a user or CI runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from pipeline_project import PipelineProject

COMMAND = [sys.executable, "-m", "pytest_cursus.cli.main"]


def cursus_runtime(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def no_aws_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment without any AWS configuration boto3 could find (no instance metadata either)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


def dummy_credentials(tmp_path: Path, **extra: str) -> dict[str, str]:
    return no_aws_env(
        tmp_path, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", **extra
    )


def health(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cursus_runtime(
        "health-check",
        "--workspace",
        str(tmp_path / "ws"),
        "--cache-dir",
        str(tmp_path / "cache"),
        *args,
        env=env or no_aws_env(tmp_path),
    )


def with_requirement(tmp_path: Path, requirement: str, *, installed: str | None) -> dict[str, str]:
    """The environment of a child that sees this package's metadata with one more ``Requires-Dist`` line,
    for the made-up distribution ``cursus-made-up-tool``, installed at version ``installed`` (None: not at all).

    Both are dist-info directories on PYTHONPATH, found before site-packages: the outcome does not
    depend on which of the package's extras this machine happens to have."""
    site = tmp_path / "site"
    real = metadata.distribution("pytest-cursus")
    headers, body = (real.read_text("METADATA") or "").split("\n\n", 1)
    ours = site / f"pytest_cursus-{real.version}.dist-info"
    ours.mkdir(parents=True)
    (ours / "METADATA").write_text(f"{headers}\nRequires-Dist: {requirement}\n\n{body}")
    if installed is not None:
        tool = site / f"cursus_made_up_tool-{installed}.dist-info"
        tool.mkdir()
        (tool / "METADATA").write_text(f"Metadata-Version: 2.1\nName: cursus-made-up-tool\nVersion: {installed}\n")
    env = no_aws_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return env


def dependencies_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.split()[1:2] == ["dependencies"])


def statuses(output: str) -> dict[str, str]:
    return {check["name"]: check["status"] for check in json.loads(output)["checks"]}


# --- the console script ----------------------------------------------------------------------------


def test_the_console_script_is_installed_and_lists_its_commands() -> None:
    script = shutil.which("cursus-runtime", path=str(Path(sys.executable).parent)) or shutil.which("cursus-runtime")
    assert script is not None, "pip install -e . installs the cursus-runtime script"

    result = subprocess.run([script, "--help"], capture_output=True, text=True, check=True)

    for command in ("health-check", "list", "run", "wire", "init"):
        assert f"    {command}" in result.stdout


@pytest.mark.parametrize("command", ["health-check", "list", "run", "wire", "init", "why"])
def test_each_command_has_help_describing_it(command: str) -> None:
    result = cursus_runtime(command, "--help")

    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: cursus-runtime {command}")
    assert "\noptions:\n" in result.stdout


# --- health-check ------------------------------------------------------------------------------------


def test_health_check_passes_on_a_healthy_machine(tmp_path: Path) -> None:
    result = health(tmp_path, "--min-disk-gb", "0.001", "--min-memory-gb", "0.001")

    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[-1] == "all checks passed"
    assert any(
        line.startswith("ok    python ") and f"{sys.version_info.major}.{sys.version_info.minor}" in line
        for line in lines
    )
    assert any(line.startswith("ok    dependencies ") and "pydantic " in line for line in lines)
    assert any(line.startswith("ok    workspace ") and "would be created in" in line for line in lines)
    assert any(line.startswith("skip  s3 ") for line in lines)


@pytest.mark.parametrize(
    ("installed", "noted"),
    [
        (None, "; optional, not needed to run steps: cursus-made-up-tool not installed (needs >=1.0)"),
        ("0.5", "; optional, not needed to run steps: cursus-made-up-tool 0.5 installed, needs >=1.0"),
        ("1.2", None),
    ],
    ids=["missing", "too-old", "found"],
)
def test_an_optional_extra_missing_or_found_leaves_the_dependencies_ok(
    tmp_path: Path, installed: str | None, noted: str | None
) -> None:
    env = with_requirement(tmp_path, 'cursus-made-up-tool>=1.0; extra == "docs"', installed=installed)

    result = health(tmp_path, "--min-disk-gb", "0.001", "--min-memory-gb", "0.001", env=env)

    assert result.returncode == 0, result.stdout
    line = dependencies_line(result.stdout)
    assert line.startswith("ok    dependencies ") and "pydantic " in line
    if noted is None:
        assert "cursus-made-up-tool" not in line
    else:
        assert line.endswith(noted)
    assert result.stdout.splitlines()[-1] == "all checks passed"


def test_a_required_distribution_missing_fails_the_dependencies(tmp_path: Path) -> None:
    env = with_requirement(tmp_path, "cursus-made-up-tool>=1.0", installed=None)

    result = health(tmp_path, "--min-disk-gb", "0.001", "--min-memory-gb", "0.001", env=env)

    assert result.returncode == 1
    assert dependencies_line(result.stdout) == (
        "fail  dependencies      cursus-made-up-tool not installed (needs >=1.0) (pip install -U pytest-cursus)"
    )
    assert result.stdout.splitlines()[-1] == "FAILED: dependencies"


def test_health_check_fails_when_free_disk_is_below_the_minimum(tmp_path: Path) -> None:
    result = health(tmp_path, "--min-disk-gb", "1e9")

    assert result.returncode == 1
    assert "below --min-disk-gb 1e+09" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("FAILED: disk (workspace)")


def test_health_check_fails_when_available_memory_is_below_the_minimum(tmp_path: Path) -> None:
    result = health(tmp_path, "--min-memory-gb", "1e9", "--json")

    assert result.returncode == 1
    checks = statuses(result.stdout)
    assert checks["memory"] == "fail"
    assert checks["python"] == "ok"
    assert json.loads(result.stdout)["ok"] is False


def test_health_check_fails_when_the_workspace_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    result = cursus_runtime(
        "health-check",
        "--workspace",
        str(blocker / "ws"),
        "--cache-dir",
        str(tmp_path),
        "--json",
        env=no_aws_env(tmp_path),
    )

    assert result.returncode == 1
    workspace = next(check for check in json.loads(result.stdout)["checks"] if check["name"] == "workspace")
    assert workspace["status"] == "fail"
    assert f"cannot write in {blocker}" in workspace["detail"]


def test_health_check_reaches_a_configured_s3_endpoint(tmp_path: Path, moto_endpoint: str) -> None:
    result = health(
        tmp_path,
        "--s3-endpoint",
        moto_endpoint,
        "--min-disk-gb",
        "0.001",
        "--min-memory-gb",
        "0.001",
        env=dummy_credentials(tmp_path),
    )

    assert result.returncode == 0, result.stdout
    assert "ok    s3" in result.stdout and f"{moto_endpoint} reachable" in result.stdout


def test_health_check_reaches_s3_through_the_steps_client_without_boto3(tmp_path: Path, moto_endpoint: str) -> None:
    """The s3 check talks through botocore, as steps do: boto3 is not needed to run steps or check."""
    blocker = tmp_path / "blocked" / "boto3"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("boto3 is not installed here")\n')
    env = dummy_credentials(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(blocker.parent), env.get("PYTHONPATH")]))

    result = health(tmp_path, "--s3-endpoint", moto_endpoint, "--json", env=env)

    s3 = next(check for check in json.loads(result.stdout)["checks"] if check["name"] == "s3")
    assert s3 == {"name": "s3", "status": "ok", "detail": f"{moto_endpoint} reachable (credentials from env)"}


def test_health_check_with_a_missing_aws_profile_fails_naming_it(tmp_path: Path) -> None:
    result = health(tmp_path, "--json", env=no_aws_env(tmp_path, AWS_PROFILE="cursus-no-such-profile"))

    assert result.returncode == 1, result.stderr
    s3 = next(check for check in json.loads(result.stdout)["checks"] if check["name"] == "s3")
    assert s3["status"] == "fail"
    assert "AWS credentials could not be loaded" in s3["detail"] and "(cursus-no-such-profile)" in s3["detail"]


def test_health_check_lists_a_given_s3_prefix(tmp_path: Path, moto_endpoint: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="health-check-data")
    env = dummy_credentials(tmp_path, AWS_ENDPOINT_URL_S3=moto_endpoint)

    found = health(tmp_path, "--s3-uri", "s3://health-check-data/raw/", "--json", env=env)
    missing = health(tmp_path, "--s3-uri", "s3://no-such-bucket-here/raw/", "--json", env=env)

    assert statuses(found.stdout)["s3"] == "ok"
    s3 = next(check for check in json.loads(missing.stdout)["checks"] if check["name"] == "s3")
    assert s3["status"] == "fail" and "NoSuchBucket" in s3["detail"]
    assert missing.returncode == 1


def test_health_check_fails_when_the_s3_endpoint_does_not_answer(tmp_path: Path) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again: nothing listens there
    result = health(tmp_path, "--s3-endpoint", f"http://127.0.0.1:{port}", "--json", env=dummy_credentials(tmp_path))

    assert result.returncode == 1
    s3 = next(check for check in json.loads(result.stdout)["checks"] if check["name"] == "s3")
    assert s3["status"] == "fail" and "is not reachable" in s3["detail"]


def test_health_check_without_credentials_for_a_configured_endpoint_fails(tmp_path: Path) -> None:
    result = health(tmp_path, "--s3-endpoint", "http://127.0.0.1:9", "--json")

    assert result.returncode == 1
    assert "no AWS credentials found" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-disk-gb", "-1"], "argument --min-disk-gb: expected a positive number, got '-1'"),
        (["--min-memory-gb", "lots"], "argument --min-memory-gb: expected a positive number, got 'lots'"),
        (
            ["--s3-endpoint", "ftp://files"],
            "argument --s3-endpoint: expected an http:// or https:// URL, got 'ftp://files'",
        ),
        (["--s3-uri", "bucket/key"], "argument --s3-uri: expected an s3://bucket/key URI, got 'bucket/key'"),
        (["--verbose"], "unrecognized arguments: --verbose"),
    ],
)
def test_health_check_rejects_bad_arguments_with_usage(args: list[str], message: str) -> None:
    result = cursus_runtime("health-check", *args)

    assert result.returncode == 2
    assert result.stderr.startswith("usage: cursus-runtime")
    assert message in result.stderr


# --- list ----------------------------------------------------------------------------------------------


def test_list_shows_the_node_ids_pytest_collects(one_step: PipelineProject, project: PipelineProject) -> None:
    project.contract("Reader", entry_point="reader.py", inputs={"data": {"path": "/opt/ml/processing/input/data"}})
    project.script("reader.py", "def main(input_paths, output_paths, environ_vars, job_args):\n    pass\n")
    project.scenario(
        "pair",
        "steps:\n  write: {contract: Writer}\n  read: {contract: Reader, inputs: {data: write.out}}\n",
    )
    collected = project.pytester.runpytest_subprocess(
        "--cursus-scenarios", "scenarios", "--collect-only", "-q", "-p", "no:cacheprovider"
    )

    listed = cursus_runtime("list", "scenarios", "--ids", cwd=project.root)

    assert listed.returncode == 0, listed.stderr
    pytest_ids = [line for line in collected.stdout.lines if "::" in line]
    assert listed.stdout.splitlines() == pytest_ids
    assert "scenarios/pair.yaml::compat[write.out-read.data]" in pytest_ids


def test_list_describes_steps_and_edges_without_running_them(one_step: PipelineProject) -> None:
    result = cursus_runtime("list", "scenarios", cwd=one_step.root)

    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "scenarios/single.yaml: scenario single (1 step(s), 0 edge(s))"
    assert "  step  only  Writer (scripts/writer.py)" in result.stdout
    assert not one_step.workspace.exists()


def test_list_as_json_has_every_scenario_step_and_edge(tmp_path: Path) -> None:
    repository = Path(__file__).resolve().parents[1]

    result = cursus_runtime("list", "scenarios", "--json", cwd=repository)

    listing = json.loads(result.stdout)
    credit_risk = next(s for s in listing["scenarios"] if s["name"] == "credit_risk")
    assert [step["name"] for step in credit_risk["steps"]] == ["preprocess", "impute_encode", "train", "evaluate"]
    assert credit_risk["steps"][3]["upstream"] == ["impute_encode", "train"]
    assert "scenarios/credit_risk.yaml::compat[train.model_output-evaluate.model_input]" in [
        edge["nodeid"] for edge in credit_risk["edges"]
    ]


def test_list_reports_an_invalid_scenario_and_exits_1(one_step: PipelineProject) -> None:
    one_step.scenario("broken", "steps:\n  only: {contract: Writter}\n")

    result = cursus_runtime("list", "scenarios", cwd=one_step.root)

    assert result.returncode == 1
    assert "scenarios/broken.yaml: INVALID" in result.stdout
    assert "scenarios/broken.yaml:2: steps.only.contract:" in result.stdout
    assert "1 scenario(s), 1 step(s), 0 edge(s); 1 invalid scenario(s)" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: PATH"),
        (["nowhere"], "argument PATH: nowhere does not exist"),
        (["scenarios", "--source", "cloud"], "argument --source/--cursus-source: invalid choice: 'cloud'"),
        (["scenarios", "--", "-x"], "list takes no arguments after '--'"),
    ],
)
def test_list_rejects_bad_arguments_with_usage(one_step: PipelineProject, args: list[str], message: str) -> None:
    result = cursus_runtime("list", *args, cwd=one_step.root)

    assert result.returncode == 2
    assert result.stderr.startswith("usage: cursus-runtime")
    assert message in result.stderr


# --- why -------------------------------------------------------------------------------------------

PAIR_SCRIPT = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    source = input_paths.get("DATA")
    text = open(os.path.join(source, "data.txt")).read() if source else "seed"
    with open(os.path.join(output_paths["out"], "data.txt"), "w") as handle:
        handle.write(text + "|" + environ_vars["STEP_NAME"])
"""


@pytest.fixture
def pair(project: PipelineProject) -> PipelineProject:
    """Scenario `pair`: step `first` writes a file, `second` reads it; run once, cached in `cache/`."""
    project.contract("First", entry_point="first.py")
    project.contract("Second", entry_point="second.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    for name in ("first", "second"):
        project.script(f"{name}.py", PAIR_SCRIPT)
    project.scenario(
        "pair",
        """
        steps:
          first: {contract: First, env: {STEP_NAME: first}}
          second: {contract: Second, env: {STEP_NAME: second}, inputs: {DATA: first.out}}
        """,
    )
    project.run("--cursus-cache-dir", str(project.root / "cache")).assert_outcomes(passed=3)
    return project


def why(project: PipelineProject, *args: str) -> subprocess.CompletedProcess[str]:
    return cursus_runtime("why", *args, "--cache-dir", str(project.root / "cache"), cwd=project.root)


def part_lines(output: str) -> dict[str, str]:
    """Part name -> what `why` says of it (the lines of its table)."""
    table = output.split("now vs entry\n", 1)[1].split("\n\n", 1)[0]
    return {line[:14].strip(): line[14:] for line in table.splitlines() if not line.startswith(" ")}


def test_why_says_an_unchanged_step_would_come_from_the_cache(pair: PipelineProject) -> None:
    result = why(pair, "scenarios/pair.yaml", "second")

    assert result.returncode == 0, result.stderr
    parts = part_lines(result.stdout)
    assert set(parts.values()) == {"same"}
    assert {"sources", "inputs", "env", "contract"} <= set(parts)
    assert "verdict: cached: the step would not run" in result.stdout


def test_why_names_the_changed_part_and_finds_a_scenario_by_name(pair: PipelineProject) -> None:
    script = pair.root / "scripts" / "second.py"
    script.write_text(script.read_text() + "# a comment\n")

    result = why(pair, "pair", "second", "scenarios")

    assert result.returncode == 1, result.stderr
    parts = part_lines(result.stdout)
    assert parts["sources"].startswith("changed: ") and parts["sources"].endswith("second.py")
    assert parts["inputs"] == "same" and parts["env"] == "same"
    assert "compared with the entry 'second' last stored" in result.stdout
    assert result.stdout.rstrip().endswith("verdict: it would run: script changed")


def test_why_says_when_an_upstream_is_not_cached_and_sees_early_cutoff_once_it_ran(pair: PipelineProject) -> None:
    script = pair.root / "scripts" / "first.py"
    script.write_text(script.read_text() + "# a comment: first's key changes, its output does not\n")

    before = why(pair, "scenarios/pair.yaml", "second")

    assert before.returncode == 1, before.stderr
    assert "input DATA: upstream step 'first' is not in the step cache" in before.stdout
    assert "verdict: not known: input(s) DATA come from steps not in the step cache" in before.stdout

    pair.run("--cursus-cache-dir", str(pair.root / "cache"), "-k", "first and not compat").assert_outcomes(passed=1)
    after = why(pair, "scenarios/pair.yaml", "second")

    assert after.returncode == 0, after.stdout + after.stderr
    assert set(part_lines(after.stdout).values()) == {"same"}


def test_why_rejects_an_unknown_step_naming_the_steps(pair: PipelineProject) -> None:
    result = why(pair, "scenarios/pair.yaml", "third")

    assert result.returncode == 2
    assert "step: expected a step of scenario 'pair' (first, second), got 'third'" in result.stderr


# --- run -----------------------------------------------------------------------------------------------


def test_run_prints_the_pytest_command_it_would_run() -> None:
    result = cursus_runtime(
        "run",
        "scenarios",
        "--source",
        "local",
        "--cursus-timeout",
        "30",
        "--no-cache",
        "-k",
        "train",
        "-n",
        "2",
        "--print-command",
        "--",
        "-x",
        "--html=r.html",
    )

    assert result.returncode == 0
    assert result.stdout.split()[1:] == [
        "-m", "pytest", "--cursus-scenarios", "scenarios", "--cursus-source", "local", "--cursus-timeout", "30",
        "--cursus-no-cache", "-k", "train", "-n", "2", "-x", "--html=r.html",
    ]  # fmt: skip


def test_run_runs_pytest_on_the_scenarios_and_returns_its_status(one_step: PipelineProject) -> None:
    passing = cursus_runtime("run", "scenarios", "--workspace", "ws", "--", "-p", "no:cacheprovider", cwd=one_step.root)
    one_step.script(
        "writer.py",
        "def main(input_paths, output_paths, environ_vars, job_args):\n    raise RuntimeError('broken on purpose')\n",
    )
    failing = cursus_runtime("run", "scenarios", "--workspace", "ws", "--", "-p", "no:cacheprovider", cwd=one_step.root)

    assert passing.returncode == 0, passing.stdout
    assert "1 passed" in passing.stdout.splitlines()[-1]
    assert (one_step.root / "ws" / "single" / "only").is_dir()  # --workspace reached the plugin
    assert failing.returncode == 1
    assert "RuntimeError: broken on purpose" in failing.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scenarios", "--timeout", "abc"], "argument --timeout/--cursus-timeout: expected a number, got 'abc'"),
        (["scenarios", "--source", "cloud"], "argument --source/--cursus-source: invalid choice: 'cloud'"),
        (["nowhere"], "argument PATH: nowhere does not exist"),
        (["scenarios", "--s3-endpoint", "localhost:9000"], "expected an http:// or https:// URL, got 'localhost:9000'"),
        (["scenarios", "-x"], "unrecognized arguments: -x"),
        (["scenarios", "-x", "--lf"], "pytest's own options go after '--': cursus-runtime run ... -- -x --lf"),
    ],
)
def test_run_rejects_bad_arguments_with_usage(one_step: PipelineProject, args: list[str], message: str) -> None:
    result = cursus_runtime("run", *args, cwd=one_step.root)

    assert result.returncode == 2
    assert result.stderr.startswith("usage: cursus-runtime")
    assert message in result.stderr


def test_the_version_is_the_packages() -> None:
    from pytest_cursus.version import __version__

    result = cursus_runtime("--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"cursus-runtime {__version__}"
