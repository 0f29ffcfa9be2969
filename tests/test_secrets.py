"""Env values whose names look secret are masked wherever the plugin writes or shows them, and
the script still receives the real values."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.plan.scenario_plan import load_scenario
from pytest_cursus.secret_env import (
    MASK,
    MIN_SCRUBBED_LENGTH,
    SecretLogFilter,
    SecretNames,
    SecretScrubber,
    is_secret_name,
    mask_env,
)

SECRET = "s3cr3t-V4lue-xyz"
TOKEN = "ghp_Zq8sK2mVx7LwP4nR9tYb3cD6fH1jA5eU0oIi"
# a private key in PEM form: 64-character base64 lines, then a short last one
PEM_LINES = [
    "-----BEGIN PRIVATE KEY-----",
    *(base64.b64encode(bytes(range(index, index + 48))).decode() for index in range(0, 192, 48)),
    "Q==",
    "-----END PRIVATE KEY-----",
]
PEM = "\n".join(PEM_LINES) + "\n"
# what must never be shown: the token, and every line of the key long enough to be masked
SHOWN_NEVER = [TOKEN, TOKEN[:12], *(line for line in PEM_LINES if len(line) >= MIN_SCRUBBED_LENGTH)]

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
    "name",
    [
        "DB_PASSWD",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "API_KEY",
        "MY_API_KEY",
        "PRIVATE_KEY_PEM",
        "ENCRYPTION_KEY",
        "AUTH",
        "BASIC_AUTH_HEADER",
        "api_token",
        "db_password",
        "GCP_CREDENTIALS",
        "SERVICE_CREDENTIAL",
        "AWS_SESSION_TOKEN",
    ],
)
def test_a_name_is_secret_when_a_whole_part_of_it_is_a_secret_word(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    ["SORT_KEY", "TOKENIZER_NAME", "AUTHOR", "MONKEY_COUNT", "PARTITION_KEY", "KEY", "LABEL_FIELD", "TRAIN_RATIO"],
)
def test_a_name_only_containing_a_secret_word_or_a_plain_key_is_not_secret(name: str) -> None:
    assert not is_secret_name(name)


def test_a_scenario_adds_names_to_the_rule_and_exempts_names_from_it() -> None:
    names = SecretNames(mask=["DB_URL"], exempt=["AUTH_MODE"])
    env = {"DB_URL": "postgres://u:pw@db/x", "AUTH_MODE": "basic-login", "API_KEY": "k-123456", "SEED": "7"}
    assert mask_env(env, names) == {"DB_URL": MASK, "AUTH_MODE": "basic-login", "API_KEY": MASK, "SEED": "7"}
    assert SecretScrubber(env, names=names).text("postgres://u:pw@db/x basic-login k-123456") == (
        f"{MASK} basic-login {MASK}"
    )


def test_scrubber_replaces_secret_values_in_text_but_not_short_ones() -> None:
    scrub = SecretScrubber({"API_TOKEN": SECRET, "DEBUG_KEY": "1", "LABEL": SECRET + "-not-a-name"})
    assert scrub.text(f"x {SECRET} y") == f"x {MASK} y"
    assert scrub.text("retry 1 of 3") == "retry 1 of 3"
    assert mask_env({"API_TOKEN": SECRET, "LABEL": "label"}) == {"API_TOKEN": MASK, "LABEL": "label"}


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own_unless_too_short() -> None:
    """A PEM key printed line by line never shows whole; its lines of MIN_SCRUBBED_LENGTH (4)
    characters or more are masked each, a shorter one (``Q==``) is not searched for."""
    scrub = SecretScrubber({"PRIVATE_KEY_PEM": PEM})
    assert scrub.text(f"key:\n{PEM}") == f"key:\n{MASK}"
    for line in PEM_LINES:
        expected = f"pem: {line}" if len(line) < MIN_SCRUBBED_LENGTH else f"pem: {MASK}"
        assert scrub.text(f"pem: {line}") == expected


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


# Returns or raises with secrets: main()'s return value, the exception, stdout, and a logger that
# prefixes each line of the key it is given (so the whole key never appears in one piece).
SPILLER = """
import os

def main(input_paths, output_paths, environ_vars, job_args, logger):
    token, pem = environ_vars["GITHUB_TOKEN"], environ_vars["PRIVATE_KEY_PEM"]
    with open(os.path.join(output_paths["out"], "seen.txt"), "w") as handle:
        handle.write(str(token == os.environ["GITHUB_TOKEN"] and pem == os.environ["PRIVATE_KEY_PEM"]))
    for line in pem.splitlines():
        print("pem:", line)
        logger.info("pem line %s", line)
    if environ_vars["MODE"] == "return":
        # "padded" is cut to 200 characters in the report: inside the token, were it not masked first
        return {"token": token, "padded": "x" * 190 + token, token: "as a key", "pem": pem}
    raise RuntimeError(f"login refused for {token} with key line {pem.splitlines()[1]}")
"""


def leaks(text: str) -> list[str]:
    """The secrets (or a token's prefix) found in ``text``."""
    return [secret for secret in SHOWN_NEVER if secret in text]


@pytest.fixture
def spiller(project: PipelineProject) -> PipelineProject:
    project.contract("Spiller", entry_point="spiller.py", required_env=["GITHUB_TOKEN", "PRIVATE_KEY_PEM", "MODE"])
    project.script("spiller.py", SPILLER)
    return project


def _spilling_scenario(project: PipelineProject, mode: str) -> Path:
    env = {"GITHUB_TOKEN": TOKEN, "PRIVATE_KEY_PEM": PEM, "MODE": mode}
    return project.scenario("spill", f"steps:\n  login:\n    contract: Spiller\n    env: {json.dumps(env)}\n")


def test_the_child_report_masks_the_return_value_even_where_it_is_cut(spiller: PipelineProject) -> None:
    _spilling_scenario(spiller, "return")
    spiller.run("--cursus-no-cache").assert_outcomes(passed=1)
    logs = spiller.step_dir("spill", "login") / "logs"
    report = json.loads((logs / "report.json").read_text())

    assert (logs.parent / "output" / "out" / "seen.txt").read_text() == "True"  # the script got the real values
    assert leaks((logs / "report.json").read_text()) == []
    assert report["return_summary"]["token"] == MASK
    assert report["return_summary"]["padded"] == "x" * 190 + MASK
    assert report["return_summary"][MASK] == "as a key"


def test_the_child_report_masks_the_exception_and_its_traceback(spiller: PipelineProject) -> None:
    _spilling_scenario(spiller, "raise")
    spiller.run("--cursus-no-cache").assert_outcomes(failed=1)
    report = json.loads((spiller.step_dir("spill", "login") / "logs" / "report.json").read_text())

    assert report["exception_message"] == f"login refused for {MASK} with key line {MASK}"
    assert "RuntimeError" in report["traceback"] and leaks(report["traceback"]) == []


def test_a_key_printed_line_by_line_is_masked_in_terminal_json_html_and_cache(spiller: PipelineProject) -> None:
    _spilling_scenario(spiller, "raise")
    json_path, html_path = spiller.root / "run.json", spiller.root / "report.html"
    result = spiller.run("--cursus-json", str(json_path), f"--html={html_path}", "--self-contained-html")
    result.assert_outcomes(failed=1)

    terminal = result.stdout.str()
    assert f"RuntimeError: login refused for {MASK} with key line {MASK}" in terminal
    assert f"pem line {MASK}" in terminal  # the stderr tail: the logger's lines, masked one by one
    html = html_path.read_text()
    assert f"pem: {MASK}" in html and f"pem line {MASK}" in html  # stdout and stderr excerpts
    records = list((spiller.root / ".pytest_cache").rglob("record.json"))
    assert records
    shown = {"terminal": terminal, "json": json_path.read_text(), "html": html}
    shown.update({str(record): record.read_text() for record in records})
    assert {where: leaks(text) for where, text in shown.items()} == {where: [] for where in shown}


def test_the_cache_record_masks_the_return_value(spiller: PipelineProject) -> None:
    _spilling_scenario(spiller, "return")
    spiller.run().assert_outcomes(passed=1)
    records = list((spiller.root / ".pytest_cache").rglob("record.json"))

    assert records and [leaks(record.read_text()) for record in records] == [[]]
    assert json.loads(records[0].read_text())["result"]["return_summary"]["token"] == MASK


def test_the_notebook_result_shows_no_secret(spiller: PipelineProject, tmp_path: Path) -> None:
    from pytest_cursus import run_scenario

    raised = run_scenario(_spilling_scenario(spiller, "raise"), workspace=tmp_path / "ws", cache_dir=tmp_path / "cache")
    step = raised["login"]
    assert not step.passed and f"pem: {MASK}" in step.stdout and f"pem line {MASK}" in step.stderr
    returned = run_scenario(
        _spilling_scenario(spiller, "return"), workspace=tmp_path / "ws2", cache_dir=tmp_path / "cache"
    )
    assert returned["login"].result is not None and returned["login"].result.return_summary["token"] == MASK

    shown = [str(raised), raised._repr_html_(), step.stdout, step.stderr, step.failure_text() or "", str(step)]
    shown += [step._repr_html_(), returned["login"].result.model_dump_json(), str(returned)]
    assert [leaks(text) for text in shown] == [[]] * len(shown)


def test_a_secret_inherited_from_the_pytest_process_is_masked_in_report_and_terminal(
    one_step: PipelineProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DB_PASSWD is not in the step's env: the child inherits it, and the script quotes it."""
    monkeypatch.setenv("DB_PASSWD", SECRET)
    one_step.script(
        "writer.py",
        """
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            raise ConnectionError("cannot log in with " + os.environ["DB_PASSWD"])
        """,
    )
    result = one_step.run("--cursus-no-cache")
    result.assert_outcomes(failed=1)

    assert f"ConnectionError: cannot log in with {MASK}" in result.stdout.str()
    assert SECRET not in result.stdout.str()
    assert SECRET not in (one_step.step_dir("single", "only") / "logs" / "report.json").read_text()


def test_a_lookup_key_named_like_sort_key_is_shown_and_does_not_garble_messages(project: PipelineProject) -> None:
    project.contract("Sorter", entry_point="sorter.py", required_env=["SORT_KEY", "TOKENIZER_NAME"])
    project.script(
        "sorter.py",
        """
        def main(input_paths, output_paths, environ_vars, job_args):
            raise KeyError(f"no column {environ_vars['SORT_KEY']} for {environ_vars['TOKENIZER_NAME']}")
        """,
    )
    project.scenario(
        "sorting",
        """
        steps:
          sort:
            contract: Sorter
            env: {SORT_KEY: customer_id, TOKENIZER_NAME: bert-base}
        """,
    )
    json_path = project.root / "run.json"
    result = project.run("--cursus-no-cache", "--cursus-json", str(json_path))
    result.assert_outcomes(failed=1)

    assert "KeyError: 'no column customer_id for bert-base'" in result.stdout.str()
    env = json.loads(json_path.read_text())["steps"][0]["env"]
    assert env == {"SORT_KEY": "customer_id", "TOKENIZER_NAME": "bert-base"}


CONNECTOR = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(output_paths["out"], "seen.txt"), "w") as handle:
        handle.write(environ_vars["DB_URL"])
    raise RuntimeError(f"cannot reach {environ_vars['DB_URL']} (auth {environ_vars['AUTH_MODE']})")
"""
DB_URL = "postgres://etl:Hunter2Pass@db.internal/warehouse"


def test_secrets_mask_and_exempt_in_the_scenario_apply_end_to_end(project: PipelineProject) -> None:
    """DB_URL holds a password the name rule cannot see; AUTH_MODE's value is no secret."""
    project.contract("Connector", entry_point="connector.py", required_env=["DB_URL", "AUTH_MODE"])
    project.script("connector.py", CONNECTOR)
    project.scenario(
        "warehouse",
        f"""
        defaults:
          env: {{DB_URL: "{DB_URL}", AUTH_MODE: basic-login}}
          secrets: {{mask: [DB_URL, AUTH_MODE]}}
        steps:
          load:
            contract: Connector
            secrets: {{exempt: AUTH_MODE}}
        """,
    )
    json_path = project.root / "run.json"
    result = project.run("--cursus-json", str(json_path))
    result.assert_outcomes(failed=1)
    logs = project.step_dir("warehouse", "load") / "logs"

    assert (logs.parent / "output" / "out" / "seen.txt").read_text() == DB_URL  # the script got the real value
    assert f"RuntimeError: cannot reach {MASK} (auth basic-login)" in result.stdout.str()
    assert json.loads(json_path.read_text())["steps"][0]["env"] == {"DB_URL": MASK, "AUTH_MODE": "basic-login"}
    assert json.loads((logs / "request.json").read_text())["environ_vars"]["DB_URL"] == MASK
    assert json.loads((logs / "report.json").read_text())["exception_message"] == (
        f"cannot reach {MASK} (auth basic-login)"
    )
    (record,) = (project.root / ".pytest_cache").rglob("record.json")
    parts = json.loads(record.read_text())["parts"]
    assert parts["env"]["DB_URL"].startswith("sha256:") and parts["env"]["AUTH_MODE"] == "basic-login"
    assert DB_URL not in result.stdout.str() + json_path.read_text() + record.read_text()


def test_a_step_secrets_block_wins_over_the_defaults_for_that_step_only(project: PipelineProject) -> None:
    project.contract("Connector", entry_point="connector.py", required_env=["DB_URL", "AUTH_MODE"])
    project.script("connector.py", CONNECTOR)
    path = project.scenario(
        "warehouse",
        """
        defaults:
          env: {DB_URL: x, AUTH_MODE: y}
          secrets: {mask: DB_URL, exempt: AUTH_MODE}
        steps:
          load: {contract: Connector, secrets: {exempt: DB_URL, mask: AUTH_MODE}}
          reload: {contract: Connector}
        """,
    )
    plan = load_scenario(path)

    assert plan.steps["load"].secrets == SecretNames(mask=["AUTH_MODE"], exempt=["DB_URL"])
    assert plan.steps["reload"].secrets == SecretNames(mask=["DB_URL"], exempt=["AUTH_MODE"])


def test_a_name_both_masked_and_exempted_in_one_block_is_a_scenario_error(project: PipelineProject) -> None:
    project.contract("Writer", entry_point="writer.py")
    project.script("writer.py", "def main(input_paths, output_paths, environ_vars, job_args):\n    pass\n")
    project.scenario(
        "both",
        """
        steps:
          only:
            contract: Writer
            secrets: {mask: [DB_URL, SEED], exempt: [SEED]}
        """,
    )
    result = project.run()

    result.stdout.fnmatch_lines(
        [
            "*scenarios/both.yaml:5: steps.only.secrets: expected each name under one of mask and exempt, but SEED is "
            "under both*"
        ]
    )


def test_a_hook_failure_quoting_a_secret_is_masked(spiller: PipelineProject) -> None:
    """pytest_cursus_step_finished raising with the env in its message: the step fails, the secret is masked."""
    _spilling_scenario(spiller, "return")
    spiller.pytester.makeconftest(
        """
        def pytest_cursus_step_finished(step, result):
            raise RuntimeError("audit refused " + step.env["GITHUB_TOKEN"])
        """
    )
    json_path = spiller.root / "run.json"
    result = spiller.run("--cursus-no-cache", "--cursus-json", str(json_path))
    result.assert_outcomes(failed=1)

    assert f"RuntimeError: audit refused {MASK}" in result.stdout.str()
    assert leaks(result.stdout.str()) == [] and leaks(json_path.read_text()) == []
