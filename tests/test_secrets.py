"""Env values whose names look secret are masked wherever the plugin writes or shows them, and
the script still receives the real values."""

from __future__ import annotations

import json
import logging

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.secret_env import MASK, SecretLogFilter, SecretScrubber, is_secret_name, mask_env

SECRET = "s3cr3t-V4lue-xyz"

LEAKY = f"""
import os, sys

def main(input_paths, output_paths, environ_vars, job_args):
    assert environ_vars["API_TOKEN"] == os.environ["API_TOKEN"] == "{SECRET}", "the real value reaches the script"
    with open(os.path.join(output_paths["out"], "seen.txt"), "w") as handle:
        handle.write("received the real token")
    print("connecting with", environ_vars["API_TOKEN"])
    print("token is", environ_vars["API_TOKEN"], file=sys.stderr)
    if environ_vars.get("FAIL") == "yes":
        raise RuntimeError("login refused for " + environ_vars["API_TOKEN"])
"""


@pytest.mark.parametrize(
    "name", ["API_TOKEN", "db_password", "AWS_SECRET_ACCESS_KEY", "MyCredentials", "AUTH_HEADER", "ssh_key"]
)
def test_names_that_look_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["LABEL_FIELD", "TRAIN_RATIO", "OUTPUT_FORMAT"])
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


def test_scrubber_replaces_secret_values_in_text_but_not_short_ones() -> None:
    scrub = SecretScrubber({"API_TOKEN": SECRET, "DEBUG_KEY": "1", "LABEL": SECRET + "-not-a-name"})
    assert scrub.text(f"x {SECRET} y") == f"x {MASK} y"
    assert scrub.text("retry 1 of 3") == "retry 1 of 3"
    assert mask_env({"API_TOKEN": SECRET, "LABEL": "label"}) == {"API_TOKEN": MASK, "LABEL": "label"}


def test_scrubber_replaces_values_given_without_a_name_longest_first() -> None:
    """Credentials an S3 client resolved (a secret key, a session token) are secrets without a name."""
    token = SECRET + "-and-more"
    scrub = SecretScrubber(values=[SECRET, token, None, "abc"])
    assert scrub.text(f"key={SECRET} token={token} retry abc") == f"key={MASK} token={MASK} retry abc"


def test_the_log_filter_masks_secrets_in_records_of_the_libraries_it_is_installed_on() -> None:
    library, other = logging.getLogger("cursus_test_library.client"), logging.getLogger("cursus_test_other")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    for logger in (library, other):
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    log_filter = SecretLogFilter()
    log_filter.install(["cursus_test_library"])
    log_filter.scrubber = SecretScrubber(values=[SECRET])  # the secrets become known later
    try:
        library.debug("headers: %s", {"X-Amz-Security-Token": SECRET})
        other.debug("headers: %s", {"X-Amz-Security-Token": SECRET})
    finally:
        for logger in (library, other):
            logger.removeHandler(handler)
            logger.removeFilter(log_filter)
    assert [record.getMessage() for record in records] == [
        f"headers: {{'X-Amz-Security-Token': '{MASK}'}}",
        f"headers: {{'X-Amz-Security-Token': '{SECRET}'}}",
    ]


@pytest.fixture
def leaky(project: PipelineProject) -> PipelineProject:
    project.contract("Leaky", entry_point="leaky.py", required_env=["API_TOKEN"], optional_env={"FAIL": "no"})
    project.script("leaky.py", LEAKY)
    return project


def _scenario(project: PipelineProject, fail: str) -> None:
    project.scenario(
        "leaky",
        f"""
        steps:
          login:
            contract: Leaky
            env: {{API_TOKEN: "{SECRET}", FAIL: "{fail}"}}
        """,
    )


def test_request_file_masks_the_secret_while_the_script_gets_the_real_value(leaky: PipelineProject) -> None:
    _scenario(leaky, "no")
    leaky.run("--cursus-no-cache").assert_outcomes(passed=1)
    request = json.loads((leaky.step_dir("leaky", "login") / "logs" / "request.json").read_text())
    assert request["environ_vars"]["API_TOKEN"] == MASK
    assert SECRET not in (leaky.step_dir("leaky", "login") / "logs" / "request.json").read_text()
    assert (leaky.step_dir("leaky", "login") / "output" / "out" / "seen.txt").read_text() == "received the real token"


def test_a_failure_mentioning_the_secret_is_masked_in_terminal_json_and_html(leaky: PipelineProject) -> None:
    _scenario(leaky, "yes")
    json_path, html_path = leaky.root / "run.json", leaky.root / "report.html"
    result = leaky.run(
        "--cursus-no-cache", "--cursus-json", str(json_path), f"--html={html_path}", "--self-contained-html"
    )
    result.assert_outcomes(failed=1)
    terminal = result.stdout.str()
    assert f"RuntimeError: login refused for {MASK}" in terminal
    assert SECRET not in terminal
    assert SECRET not in json_path.read_text()
    assert json.loads(json_path.read_text())["steps"][0]["env"]["API_TOKEN"] == MASK
    html = html_path.read_text()
    assert SECRET not in html and "login refused for" in html and "token is" in html


def test_the_cache_record_holds_no_secret(leaky: PipelineProject) -> None:
    _scenario(leaky, "yes")
    leaky.run()
    records = list((leaky.root / ".pytest_cache").rglob("record.json"))
    assert records and all(SECRET not in record.read_text() for record in records)
