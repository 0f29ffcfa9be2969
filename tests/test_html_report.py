"""pytest-html: each step's row carries its metrics, logs and outputs; the summary draws each
scenario's DAG and memory charts; all inline, also under xdist with --cursus-json."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline_project import PipelineProject

CHATTY = """
import os, sys

def main(input_paths, output_paths, environ_vars, job_args):
    for i in range(500):
        print(f"progress line {i}")
    os.makedirs(os.path.join(output_paths["out"], "train"))
    with open(os.path.join(output_paths["out"], "train", "part.csv"), "w") as handle:
        handle.write("id\\n" + "".join(f"{i}\\n" for i in range(42)))
    with open(os.path.join(output_paths["out"], "model.bin"), "wb") as handle:
        handle.write(b"0" * 2048)
"""


@pytest.fixture
def pipeline(project: PipelineProject) -> PipelineProject:
    project.contract(
        "Chatty",
        entry_point="chatty.py",
        inputs={"upstream": {"path": "/opt/ml/processing/input/up", "required": False}},
    )
    project.script("chatty.py", CHATTY)
    project.contract("Crasher", entry_point="crasher.py", inputs={"upstream": {"path": "/opt/ml/processing/input/up"}})
    project.script(
        "crasher.py",
        "def helper():\n    raise KeyError('label')\n\ndef main(input_paths, output_paths, environ_vars, job_args):\n"
        "    helper()\n",
    )
    project.scenario(
        "pipe",
        """
        steps:
          extract: {contract: Chatty}
          score: {contract: Crasher, inputs: {upstream: extract.out}}
        """,
    )
    return project


def _tests(report: Path) -> dict[str, list[dict[str, Any]]]:
    """pytest-html's per-test data, as its page script reads it."""
    blob = re.search(r'data-jsonblob="([^"]*)"', report.read_text()).group(1)  # type: ignore[union-attr]
    return json.loads(html.unescape(blob))["tests"]


def _details(entry: dict[str, Any]) -> str:
    return "".join(extra["content"] for extra in entry["extras"] if extra["format_type"] == "html")


def _run(project: PipelineProject, *args: str) -> Path:
    report = project.root / "report.html"
    project.run("--cursus-no-cache", f"--html={report}", "--self-contained-html", *args)
    return report


def test_step_rows_show_wall_peak_memory_and_cache_status(pipeline: PipelineProject) -> None:
    tests = _tests(_run(pipeline))
    row = " ".join(tests["scenarios/pipe.yaml::extract"][0]["resultsTableRow"])
    assert re.search(r'class="col-cursus-wall">\d+\.\d\d s<', row)
    assert re.search(r'class="col-cursus-peak">\d+\.\d MB<', row)
    assert 'class="col-cursus-cache">ran<' in row
    edge = " ".join(tests["scenarios/pipe.yaml::compat[extract.out-score.upstream]"][0]["resultsTableRow"])
    assert 'class="col-cursus-wall"><' in edge, "edge items get empty step cells"


def test_a_cached_step_row_says_cached(pipeline: PipelineProject) -> None:
    pipeline.run()
    report = pipeline.root / "again.html"
    pipeline.run(f"--html={report}")
    row = " ".join(_tests(report)["scenarios/pipe.yaml::extract"][0]["resultsTableRow"])
    assert 'class="col-cursus-cache">cached<' in row


def test_step_details_hold_metrics_outputs_and_collapsed_long_logs(pipeline: PipelineProject) -> None:
    details = _details(_tests(_run(pipeline))["scenarios/pipe.yaml::extract"][0])
    assert (
        'class="cursus-metrics cursus-metric-table"' in details and "peak memory" in details and "CPU time" in details
    )
    assert "<td>train/part.csv</td><td>" in details and "<td>42</td>" in details, "output listing with rows"
    assert "<td>model.bin</td><td>2.0 KB</td>" in details
    stdout = re.search(r"<details( open)?><summary>stdout \((\d+) lines\)</summary>", details)
    assert stdout is not None and stdout.group(1) is None and int(stdout.group(2)) >= 500, "a long log starts collapsed"
    assert "progress line 499" in details


def test_a_failed_step_details_show_the_script_traceback(pipeline: PipelineProject) -> None:
    details = _details(_tests(_run(pipeline))["scenarios/pipe.yaml::score"][0])
    assert "<h4>Script traceback</h4>" in details
    assert re.search(r'crasher\.py", line 2, in helper', html.unescape(details))
    assert "KeyError" in details


def test_a_skipped_row_says_where_and_why_in_words_not_as_a_tuple(pipeline: PipelineProject) -> None:
    pipeline.scenario(
        "pipe",
        """
        steps:
          extract: {contract: Chatty}
          score: {contract: Crasher, inputs: {upstream: extract.out}}
          after: {contract: Chatty, inputs: {upstream: score.out}}
        """,
    )
    tests = _tests(_run(pipeline))
    (skipped,) = tests["scenarios/pipe.yaml::after"]
    assert skipped["result"] == "Skipped"
    assert skipped["log"].splitlines()[0] == "scenarios/pipe.yaml:5: upstream step &#x27;score&#x27; failed"
    assert "Skipped:" not in skipped["log"] and "(&#x27;" not in skipped["log"]


def test_summary_draws_each_scenario_dag_coloured_by_outcome_and_memory_charts(pipeline: PipelineProject) -> None:
    page = _run(pipeline).read_text()
    assert page.count('class="cursus-dag"') == 1
    assert 'data-step="extract" data-outcome="passed"' in page
    assert 'data-step="score" data-outcome="failed"' in page
    assert 'class="cursus-edge"' in page
    summary = page[page.index('<div class="cursus-summary">') :]
    assert summary.count('class="cursus-memory-chart"') >= 2


def test_each_memory_chart_names_the_peak_its_step_row_shows(pipeline: PipelineProject) -> None:
    report = _run(pipeline)
    page = report.read_text()
    checked = []
    for nodeid, entries in _tests(report).items():
        peak = re.search(r'class="col-cursus-peak">([\d.]+ MB)<', " ".join(entries[0]["resultsTableRow"]))
        if peak is None:
            continue  # not a step item
        step = nodeid.split("::")[1]
        chart = re.search(rf'<svg [^>]*class="cursus-memory-chart"[^>]*aria-label="{step}">.*?</svg>', page)
        assert chart is not None and f"peak {peak.group(1)}</text>" in chart.group(0), (step, peak.group(1))
        checked.append(step)
    assert sorted(checked) == ["extract", "score"]


def test_report_parts_of_the_plugin_refer_to_nothing_outside_the_file(pipeline: PipelineProject) -> None:
    page = _run(pipeline).read_text()
    ours = page[page.index('<div class="cursus-summary">') : page.index('<table id="results-table">')]
    ours += "".join(_details(entries[0]) for entries in _tests(_run(pipeline)).values())
    assert not re.search(r"(src|href)=\S*(https?:|//)", ours)
    assert "<script" not in ours and "@import" not in ours
    assert not re.search(r"url\((?!#)", ours), "only in-document references (the DAG's arrow marker)"


def test_xdist_with_html_and_json_together_keeps_every_step(pipeline: PipelineProject) -> None:
    json_path = pipeline.root / "run.json"
    report = pipeline.root / "report.html"
    result = pipeline.run("--cursus-no-cache", "-n", "2", f"--html={report}", "--cursus-json", str(json_path))
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2, failed=1)
    steps = {step["step"]: step for step in json.loads(json_path.read_text())["steps"]}
    assert set(steps) == {"extract", "score"}
    assert steps["score"]["outcome"] == "failed" and steps["extract"]["metrics"]["wall_seconds"] > 0
    tests = _tests(report)
    assert 'class="cursus-details"' in _details(tests["scenarios/pipe.yaml::extract"][0])
    assert 'data-step="score" data-outcome="failed"' in report.read_text()


def test_without_pytest_html_the_html_hooks_are_not_registered(pipeline: PipelineProject) -> None:
    pipeline.pytester.makeconftest(
        "def pytest_sessionstart(session):\n"
        "    print('cursus-html registered:', session.config.pluginmanager.has_plugin('cursus-html'))\n"
    )
    result = pipeline.run("--cursus-no-cache", "-p", "no:html", "-s")
    result.stdout.fnmatch_lines(["*cursus-html registered: False*", "*cursus: pipeline steps*"])
    with_html = pipeline.run("--cursus-no-cache", "-s")
    with_html.stdout.fnmatch_lines(["*cursus-html registered: True*"])
