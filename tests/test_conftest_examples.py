"""Every conftest.py in conftest_examples/ does what its docstring says, run by pytest as a user would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "conftest_examples"
EXAMPLE_NAMES = sorted(path.name for path in EXAMPLES.iterdir() if (path / "conftest.py").is_file())
IGNORED = shutil.ignore_patterns(".pytest_cache", "__pycache__", "step-log.jsonl")


def install(pytester: pytest.Pytester, name: str) -> Path:
    """The example and the repository's scenarios/ (its contracts and scripts), laid out as in the repository."""
    shutil.copytree(REPO / "scenarios", pytester.path / "scenarios", ignore=IGNORED)
    target = pytester.path / "conftest_examples" / name
    shutil.copytree(EXAMPLES / name, target, ignore=IGNORED)
    return target


def run_scenarios(pytester: pytest.Pytester, name: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--cursus-scenarios",
        f"conftest_examples/{name}",
        "--cursus-workspace",
        str(pytester.path / "workspace"),
        "-p",
        "no:cacheprovider",
        *args,
    )


def output_of(pytester: pytest.Pytester, scenario: str, step: str, output: str) -> Path:
    return pytester.path / "workspace" / scenario / step / "output" / output


def csv_rows(directory: Path) -> int:
    return sum(len(path.read_text().splitlines()) - 1 for path in directory.rglob("*.csv"))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_each_example_says_first_when_you_would_want_it(name: str) -> None:
    first_line = (EXAMPLES / name / "conftest.py").read_text().splitlines()[0]

    assert first_line.startswith("# Use this when ")


def test_every_hook_and_plugin_fixture_has_an_example() -> None:
    from pytest_cursus.run.extension_hooks import HOOK_NAMES

    sources = "".join((EXAMPLES / name / "conftest.py").read_text() for name in EXAMPLE_NAMES)
    sources += "".join(path.read_text() for path in EXAMPLES.rglob("test_*.py"))
    for name in (*HOOK_NAMES, "cursus_run", "cursus_s3_endpoint"):
        assert name in sources, name


def test_custom_data_source_feeds_the_step_from_a_sql_query(pytester: pytest.Pytester) -> None:
    install(pytester, "custom_data_source")

    run_scenarios(pytester, "custom_data_source").assert_outcomes(passed=1)

    assert (
        csv_rows(output_of(pytester, "transactions_from_sql", "preprocess", "processed_data")) == 119
    )  # one row has no label


def test_custom_data_source_steps_stay_cached_until_the_dump_changes(pytester: pytest.Pytester) -> None:
    example = install(pytester, "custom_data_source")
    first = run_scenarios(pytester, "custom_data_source", "-v").stdout.str()
    second = run_scenarios(pytester, "custom_data_source", "-v").stdout.str()
    with open(example / "transactions.sql", "a") as dump:
        dump.write("INSERT INTO transactions VALUES (121, 12.5, 'GB', '2024-03-01', 'fuel', 0, 1);\n")
    third = run_scenarios(pytester, "custom_data_source", "-v").stdout.str()

    assert ["CACHED" in text for text in (first, second, third)] == [False, True, False]
    assert csv_rows(output_of(pytester, "transactions_from_sql", "preprocess", "processed_data")) == 120


def test_output_checks_pass_clean_splits(pytester: pytest.Pytester) -> None:
    install(pytester, "output_checks")

    run_scenarios(pytester, "output_checks").assert_outcomes(passed=1)


def test_output_checks_fail_a_step_whose_splits_share_ids(pytester: pytest.Pytester) -> None:
    example = install(pytester, "output_checks")
    (example / "leaky.contract.yaml").write_text(
        "name: Leaky\nentry_point: leaky.py\noutputs:\n  out: {path: /opt/ml/processing/output}\n"
    )
    (example / "leaky.py").write_text(
        "import os\n\n"
        "def main(input_paths, output_paths, environ_vars, job_args):\n"
        "    for split in ('train', 'val', 'test'):\n"
        "        os.makedirs(os.path.join(output_paths['out'], split))\n"
        "        with open(os.path.join(output_paths['out'], split, 'part.csv'), 'w') as handle:\n"
        "            handle.write('id,x\\n7,1\\n' if split != 'val' else 'id,x\\n8,1\\n')\n"
        "    open(os.path.join(output_paths['out'], '_SUCCESS'), 'w').close()\n"
    )
    (example / "leaky.yaml").write_text("contracts: [.]\nscripts: [.]\nsteps:\n  split: {contract: Leaky}\n")

    result = run_scenarios(pytester, "output_checks")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*step 'split' of scenario 'leaky' failed: pytest_cursus_check_outputs: split.out: _SUCCESS is empty",
            "pytest_cursus_check_outputs: split.out: 1 id(s) are in both train/ and test/ (e.g. 7)",
        ]
    )


def test_adjust_step_gives_scripts_the_platform_variables(pytester: pytest.Pytester) -> None:
    install(pytester, "adjust_step")

    run_scenarios(pytester, "adjust_step").assert_outcomes(passed=1)

    report = json.loads((output_of(pytester, "host_report", "report", "report") / "host.json").read_text())
    assert report["host"] == "algo-1" and report["hosts"] == ["algo-1"]


def test_without_the_adjust_step_conftest_the_script_misses_its_variables(pytester: pytest.Pytester) -> None:
    example = install(pytester, "adjust_step")
    (example / "conftest.py").unlink()

    result = run_scenarios(pytester, "adjust_step")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*failed: KeyError: 'SM_HOSTS'"])


def test_step_observer_logs_each_step_run_and_cached(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(pytester, "step_observer")
    log = pytester.path / "steps.jsonl"
    monkeypatch.setenv("CURSUS_STEP_LOG", str(log))

    run_scenarios(pytester, "step_observer").assert_outcomes(passed=3)
    run_scenarios(pytester, "step_observer").assert_outcomes(passed=3)

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["step"], line["outcome"], line["cached"]) for line in lines] == [
        ("preprocess", "passed", False),
        ("impute_encode", "passed", False),
        ("preprocess", "passed", True),
        ("impute_encode", "passed", True),
    ]
    assert all(line["wall_seconds"] > 0 and line["peak_rss_mb"] > 0 for line in lines)


def test_s3_data_runs_a_scenario_on_the_local_s3_server(pytester: pytest.Pytester) -> None:
    install(pytester, "s3_data")

    result = pytester.runpytest("conftest_examples/s3_data", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=2)  # the scenario's own item (synthetic) and the test on S3 data


def test_data_assertions_test_a_steps_outputs_as_dataframes(pytester: pytest.Pytester) -> None:
    install(pytester, "data_assertions")

    result = pytester.runpytest("conftest_examples/data_assertions", "-p", "no:cacheprovider", "-v")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*test_every_test_row_gets_a_probability PASSED*", "*test_metrics_are_written_for_the_test_split PASSED*"]
    )
