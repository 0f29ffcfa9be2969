"""pytest-html hooks, registered only when pytest-html is active (see ``plugin.pytest_configure``).

Each step item's row gets wall time, peak memory and cache status, and its details the metrics,
memory chart, outputs, logs and script traceback; the summary gets each scenario's DAG and
memory charts. All built on the controller from the records the reports carry.
"""

from __future__ import annotations

from typing import Any

import pytest

from .report_hooks import RECORD_ATTRIBUTE, CursusReporter
from .reporting.run_report import ReportedStep

HTML_PLUGIN_NAME = "cursus-html"


class CursusHtml:
    def __init__(self, reporter: CursusReporter) -> None:
        self.reporter = reporter

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[3:3] = ['<th class="cursus-col">Wall</th>', '<th class="cursus-col">Peak memory</th>', '<th class="cursus-col">Cache</th>']

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        from .reporting.html_fragments import step_cells

        record = self._record_of(report)
        wall, peak, cache = step_cells(record)  # numbers and fixed words: nothing to escape
        cells[3:3] = [f'<td class="col-cursus-wall">{wall}</td>', f'<td class="col-cursus-peak">{peak}</td>', f'<td class="col-cursus-cache">{cache}</td>']

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Put the step's details among the report's extras before pytest-html (trylast) reads them."""
        record = self._record_of(report)
        if record is None:
            return
        from pytest_html import extras  # type: ignore[import-untyped]

        from .reporting.html_fragments import step_details

        report.extras = [*getattr(report, "extras", []), extras.html(step_details(record, self.reporter.thresholds))]  # type: ignore[attr-defined]

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str], session: Any) -> None:
        records = self.reporter.sorted_records()
        if not records:
            return
        from .reporting.html_fragments import summary_block

        postfix.append(summary_block(records))

    def _record_of(self, report: pytest.TestReport) -> ReportedStep | None:
        """The reporter parsed it already (its logreport hook runs first)."""
        if getattr(report, RECORD_ATTRIBUTE, None) is None:
            return None
        return self.reporter.parsed.get(report) or ReportedStep.model_validate(getattr(report, RECORD_ATTRIBUTE))
