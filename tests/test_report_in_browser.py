"""The HTML report, opened in a real browser with the network blocked: the DAG and the charts are
drawn and the page asks nothing of the network."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from headless_chromium import ChromiumUnavailable, find_or_install_chromium, visit
from pipeline_project import PipelineProject


@pytest.fixture(scope="session")
def chromium() -> str:
    try:
        return find_or_install_chromium()
    except ChromiumUnavailable as exc:
        if os.environ.get("CURSUS_REQUIRE_BROWSER"):  # set in CI, where a skipped page test hides a broken page
            pytest.fail(f"CURSUS_REQUIRE_BROWSER is set and there is no headless browser: {exc}")
        pytest.skip(f"no headless browser: {exc}")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG file"
    return struct.unpack(">II", data[16:24])


def _report(project: PipelineProject) -> Path:
    project.contract(
        "Writer",
        entry_point="writer.py",
        inputs={"upstream": {"path": "/opt/ml/processing/input/up", "required": False}},
    )
    project.script(
        "writer.py",
        """
        import os
        def main(input_paths, output_paths, environ_vars, job_args):
            with open(os.path.join(output_paths["out"], "part.csv"), "w") as handle:
                handle.write("id\\n1\\n2\\n")
        """,
    )
    project.contract("Crasher", entry_point="crasher.py", inputs={"upstream": {"path": "/opt/ml/processing/input/up"}})
    project.script(
        "crasher.py", "def main(input_paths, output_paths, environ_vars, job_args):\n    raise KeyError('label')\n"
    )
    project.scenario(
        "browser",
        """
        steps:
          extract: {contract: Writer}
          clean: {contract: Writer, inputs: {upstream: extract.out}}
          score: {contract: Crasher, inputs: {upstream: clean.out}}
        """,
    )
    report = project.root / "report.html"
    project.run("--cursus-no-cache", f"--html={report}", "--self-contained-html").assert_outcomes(passed=4, failed=1)
    return report


def test_report_shows_dag_and_memory_charts_and_requests_nothing_from_the_network(
    project: PipelineProject, chromium: str, tmp_path: Path
) -> None:
    page = visit(chromium, _report(project), tmp_path)
    assert page.page_requests == [], f"the report asked the network for {page.page_requests}"
    assert page.blocked_ok, "a request reached a connection despite the block"
    dom = page.dom
    assert 'class="cursus-dag"' in dom
    for step, outcome in (("extract", "passed"), ("clean", "passed"), ("score", "failed")):
        assert f'data-step="{step}" data-outcome="{outcome}"' in dom
    assert dom.count('class="cursus-memory-chart"') >= 3
    assert "results-table-row" in dom, "pytest-html's script ran and drew the rows"
    width, height = _png_size(page.screenshot)
    assert (width, height) == (1400, 2000) and page.screenshot.stat().st_size > 20_000


def test_the_network_check_sees_a_page_that_does_fetch_something(chromium: str, tmp_path: Path) -> None:
    """The check above can fail: a page loading an image from a host is caught, and blocked."""
    page_file = tmp_path / "leaky.html"
    page_file.write_text('<html><body><img src="http://example.invalid/pixel.png"></body></html>')
    page = visit(chromium, page_file, tmp_path)
    assert page.page_requests == ["http://example.invalid/pixel.png"]
    assert page.blocked_ok
