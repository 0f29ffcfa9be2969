"""What can be checked here of the files that run the project elsewhere: the CI workflow, the
Kubernetes Job, the Dockerfile (no Docker engine on this machine: its structure, not a build),
tox.ini, the documentation site (built for real, in strict mode), and pytest run at the repository's root."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import pytest_cursus

REPO = Path(__file__).resolve().parents[1]


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((REPO / relative).read_text(encoding="utf-8"))


# --- GitHub Actions ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    loaded = load_yaml(".github/workflows/ci.yml")
    assert isinstance(loaded, dict)
    return loaded


def steps_running(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_the_workflow_runs_on_pushes_and_pull_requests(workflow: dict[Any, Any]) -> None:
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean

    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]


def test_the_workflow_tests_every_supported_python(workflow: dict[Any, Any]) -> None:
    tests = workflow["jobs"]["tests"]

    assert tests["strategy"]["matrix"]["python-version"] == ["3.10", "3.11", "3.12", "3.13"]
    assert "pip install -e '.[test,docs]'" in steps_running(tests)  # the docs build is a test too
    assert re.search(r"^pytest -n auto$", steps_running(tests), re.MULTILINE)


def test_the_workflow_runs_the_examples_in_parallel_and_keeps_the_reports(workflow: dict[Any, Any]) -> None:
    scenarios = workflow["jobs"]["scenarios"]
    command = steps_running(scenarios)

    assert "pytest --cursus-scenarios scenarios -n auto" in command
    assert "--html=report.html --self-contained-html" in command
    assert "--cursus-json=cursus.json" in command
    upload = next(step for step in scenarios["steps"] if step.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"  # the report matters most when a step failed
    assert upload["with"]["path"].split() == ["report.html", "cursus.json"]


def test_the_workflow_builds_the_docs_strictly_and_lints(workflow: dict[Any, Any]) -> None:
    assert "mkdocs build --strict" in steps_running(workflow["jobs"]["docs"])
    assert "tox -e lint" in steps_running(workflow["jobs"]["lint"])


def test_the_workflow_requires_the_browser_test_instead_of_skipping_it(workflow: dict[Any, Any]) -> None:
    """GitHub's runners have Google Chrome, not Debian's chromium: the page test finds it, and must."""
    suite = next(step for step in workflow["jobs"]["tests"]["steps"] if "pytest -n auto" in step.get("run", ""))

    assert suite["env"]["CURSUS_REQUIRE_BROWSER"] == "1"


def test_the_workflow_builds_checks_and_installs_the_distribution(workflow: dict[Any, Any]) -> None:
    commands = steps_running(workflow["jobs"]["dist"]).splitlines()

    assert "python -m build" in commands
    assert "python -m twine check --strict dist/*" in commands
    installed = [line.strip() for line in commands if "/tmp/wheel-venv/bin/" in line]
    assert installed[0].endswith("pip install dist/*.whl")
    assert any(line.endswith("cursus-runtime --version") for line in installed)


def test_the_plugin_options_the_workflow_uses_exist() -> None:
    from pytest_cursus.run.options import OPTIONS

    flags = {spec.flag for spec in OPTIONS}
    used = set(re.findall(r"--cursus-[a-z-]+", (REPO / ".github/workflows/ci.yml").read_text()))
    assert used and used <= flags | {"--cursus-scenarios"}


# --- Kubernetes ----------------------------------------------------------------------------------------


def test_the_kubernetes_manifest_is_a_job_running_the_image_as_non_root() -> None:
    job = load_yaml("docs/kubernetes-job.yaml")

    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    (container,) = pod["containers"]
    assert "--cursus-json=/reports/cursus.json" in container["args"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounted = {mount["name"] for mount in container["volumeMounts"]}
    assert mounted == {volume["name"] for volume in pod["volumes"]}


def test_the_kubernetes_job_sizes_the_workers_from_its_cpu_limit_and_keeps_the_step_cache() -> None:
    pod = load_yaml("docs/kubernetes-job.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {entry["name"]: entry for entry in container["env"]}

    # -n auto would count the node's CPUs: xdist reads this variable instead
    assert container["args"][:2] == ["-n", "auto"]
    reference = env["PYTEST_XDIST_AUTO_NUM_WORKERS"]["valueFrom"]["resourceFieldRef"]
    assert reference == {"containerName": container["name"], "resource": "limits.cpu", "divisor": "1"}
    assert container["resources"]["limits"]["cpu"]
    # the step cache on a claim that outlives the Job's pod, where --cursus-cache-dir points
    (cache_flag,) = [arg for arg in container["args"] if arg.startswith("--cursus-cache-dir=")]
    mount = next(m for m in container["volumeMounts"] if cache_flag.split("=", 1)[1].startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"]["claimName"]
    assert pod["terminationGracePeriodSeconds"] >= 30  # time to stop the steps and write the reports


# --- Dockerfile ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Instructions, one per entry, with continuation lines joined and comments dropped."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerfile_builds_the_wheel_in_a_first_stage_from_a_pinned_python_slim(dockerfile: list[str]) -> None:
    stages = [line for line in dockerfile if line.startswith("FROM ")]

    base = "python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}"
    assert stages == [f"FROM {base} AS build", f"FROM {base} AS runtime"]
    # a full release and a Debian release: the same image next month, not whatever 3.11-slim is then
    (version,) = [line for line in dockerfile if line.startswith("ARG PYTHON_VERSION=")]
    assert re.fullmatch(r"ARG PYTHON_VERSION=3\.\d+\.\d+", version)
    assert "ARG DEBIAN_RELEASE=bookworm" in dockerfile
    build = dockerfile[dockerfile.index(stages[0]) : dockerfile.index(stages[1])]
    assert any(line.startswith("RUN pip wheel --wheel-dir /wheels '.[s3,fuzz,html,xdist]'") for line in build)


def runtime_stage(dockerfile: list[str]) -> list[str]:
    return dockerfile[next(i for i, line in enumerate(dockerfile) if line.endswith(" AS runtime")) :]


def test_the_runtime_stage_installs_only_wheels_and_runs_as_a_non_root_user(dockerfile: list[str]) -> None:
    runtime = runtime_stage(dockerfile)

    install = next(line for line in runtime if line.startswith("RUN "))
    assert "--no-index --find-links=/wheels 'pytest-cursus[s3,fuzz,html,xdist]'" in install  # every extra
    assert "useradd" in install and "--uid 10001" in install
    users = [line for line in runtime if line.startswith("USER ")]
    assert users == ["USER cursus"]
    assert runtime.index(users[0]) < runtime.index(next(line for line in runtime if line.startswith("ENTRYPOINT")))
    assert not any(line.startswith("COPY ") for line in runtime)  # no source tree in the image


def test_the_image_runs_under_an_init_and_stops_pytest_as_ctrl_c_does(dockerfile: list[str]) -> None:
    runtime = runtime_stage(dockerfile)
    entrypoint = json.loads(next(line for line in runtime if line.startswith("ENTRYPOINT ")).split(" ", 1)[1])

    assert entrypoint[:2] == ["tini", "--"]  # reaps orphans and forwards signals; pytest as PID 1 would not
    install = next(line for line in runtime if line.startswith("RUN "))
    assert re.search(r"apt-get install .*\btini\b", install)
    assert "STOPSIGNAL SIGINT" in runtime


def test_the_image_sets_home_so_the_documented_credential_mount_is_found(dockerfile: list[str]) -> None:
    """`docker run -u <uid>` with a uid the image does not know leaves HOME=/ unless the image sets it."""
    env = " ".join(line for line in runtime_stage(dockerfile) if line.startswith("ENV "))

    assert "HOME=/home/cursus" in env
    assert "-v ~/.aws:/home/cursus/.aws:ro" in (REPO / "docs" / "deployment.md").read_text()


def test_the_worker_count_is_a_default_argument_not_part_of_the_entrypoint(dockerfile: list[str]) -> None:
    entrypoint = json.loads(next(line for line in dockerfile if line.startswith("ENTRYPOINT ")).split(" ", 1)[1])
    command = json.loads(next(line for line in dockerfile if line.startswith("CMD ")).split(" ", 1)[1])

    assert entrypoint[2:] == ["pytest", "--cursus-scenarios", "/work/scenarios"]
    assert "-n" not in entrypoint
    assert command == ["-n", "auto"]  # replaced by whatever arguments `docker run` is given
    assert "WORKDIR /work" in dockerfile


def test_the_docker_build_context_is_only_what_the_image_needs() -> None:
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]

    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!src/"} <= set(lines)


# --- package metadata ----------------------------------------------------------------------------------


def test_the_package_metadata_says_linux_only_and_the_supported_pythons() -> None:
    from importlib.metadata import metadata

    declared = metadata("pytest-cursus")
    classifiers = declared.get_all("Classifier") or []

    assert "Operating System :: POSIX :: Linux" in classifiers
    assert not [c for c in classifiers if c.startswith("Operating System ::") and "Linux" not in c]
    tested = workflow_pythons()
    assert {
        c.rsplit(" :: ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    } == tested
    assert declared["License-Expression"] == "MIT"
    assert "Linux" in (REPO / "README.md").read_text().split("## What it runs")[0]  # said before the first command


def workflow_pythons() -> set[str]:
    return set(load_yaml(".github/workflows/ci.yml")["jobs"]["tests"]["strategy"]["matrix"]["python-version"])


# --- tox ----------------------------------------------------------------------------------------------------


EXPECTED_TOX_ENVS = ["py310", "py311", "py312", "py313", "scenarios", "lint", "docs"]


def test_tox_ini_declares_test_scenario_lint_and_docs_environments() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "tox.ini")

    assert parser["tox"]["env_list"].strip() == "py3{10,11,12,13}, scenarios, lint, docs"
    assert "pytest --cursus-scenarios scenarios -n auto" in parser["testenv:scenarios"]["commands"]
    assert "--cursus-json=" in parser["testenv:scenarios"]["commands"]
    assert parser["testenv:lint"]["commands"].strip().startswith("ruff check")
    assert "mkdocs build --strict" in parser["testenv:docs"]["commands"]
    assert parser["testenv:docs"]["extras"] == "docs"


def test_tox_lists_the_environments() -> None:
    tox = shutil.which("tox", path=str(Path(sys.executable).parent)) or shutil.which("tox")
    if tox is None:
        pytest.skip("tox is not installed (pip install -e '.[test]' installs it)")

    listed = subprocess.run([tox, "-l"], cwd=REPO, capture_output=True, text=True, timeout=120, check=True)

    assert listed.stdout.split() == EXPECTED_TOX_ENVS


# --- documentation --------------------------------------------------------------------------------------


def test_every_documentation_page_is_in_the_site_navigation() -> None:
    navigation = (REPO / "mkdocs.yml").read_text()
    pages = sorted(path.name for path in (REPO / "docs").glob("*.md"))

    assert [page for page in pages if f": {page}" not in navigation] == []


def test_the_documentation_builds_in_strict_mode(tmp_path: Path) -> None:
    mkdocs = pytest.importorskip("mkdocs", reason="pip install -e '.[docs]' installs mkdocs")

    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "notebook" / "index.html").is_file()
    assert (tmp_path / "site" / "kubernetes-job.yaml").is_file()
    assert mkdocs.__version__


# --- pytest at the repository's root ---------------------------------------------------------------


def collect(*paths: str) -> subprocess.CompletedProcess[str]:
    """`pytest PATHS --collect-only -q` in the repository, on the package these tests import."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}  # not this run's
    env["PYTHONPATH"] = str(Path(pytest_cursus.__file__).parents[1])
    return subprocess.run(
        [sys.executable, "-m", "pytest", *paths, "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_pytest_at_the_root_collects_the_tests_and_the_scenarios_but_not_the_conftest_examples() -> None:
    result = collect(".")

    assert result.returncode == 0, result.stdout[-5000:] + result.stderr
    collected = result.stdout.splitlines()
    assert "error" not in collected[-1], collected[-1]
    assert any(line.startswith("tests/test_repository_files.py::") for line in collected)
    assert any(line.startswith("scenarios/credit_risk.yaml::") for line in collected)
    assert [line for line in collected if line.startswith("conftest_examples/")] == []


def test_the_tests_collect_beside_a_conftest_example() -> None:
    """Every conftest.py is imported as a module named `conftest`, the last one wins: the tests import
    their project builder from pipeline_project instead, so an example's conftest.py cannot shadow it."""
    result = collect("tests/test_pipeline.py", "conftest_examples/data_assertions")

    assert result.returncode == 0, result.stdout[-5000:] + result.stderr
    collected = result.stdout.splitlines()
    assert any(line.startswith("tests/test_pipeline.py::") for line in collected)
    assert any(line.startswith("conftest_examples/data_assertions/test_evaluation.py::") for line in collected)


# --- lint -----------------------------------------------------------------------------------------------

LINTED = ["src", "tests", "benchmarks", "conftest_examples", "scenarios"]


@pytest.fixture(scope="module")
def ruff() -> str:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    return found


def test_the_code_passes_the_lint_selection(ruff: str) -> None:
    """pyflakes, pycodestyle (lines within 120), isort, bugbear, pyupgrade: pyproject.toml [tool.ruff]."""
    result = subprocess.run([ruff, "check", *LINTED], cwd=REPO, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_formatted(ruff: str) -> None:
    result = subprocess.run([ruff, "format", "--check", *LINTED], cwd=REPO, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
