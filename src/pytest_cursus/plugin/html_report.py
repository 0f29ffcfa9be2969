"""pytest-html hooks, registered only when pytest-html is active (see ``pytest_configure`` in ``plugin/hooks.py``).

Each step item's row gets wall time, peak memory and cache status, and its details the metrics,
memory chart, outputs, logs and script traceback; the summary gets each scenario's DAG and
memory charts. The synthetic-vs-real profiles made while an item ran go in its details and in
its scenario's summary. All built on the controller from the records the reports carry.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_cursus.plugin.reporter import RECORD_ATTRIBUTE, CursusReporter

if TYPE_CHECKING:
    from pytest_cursus.reporting.run_report import ReportedStep

HTML_PLUGIN_NAME = "cursus-html"


class CursusHtml:
    def __init__(self, reporter: CursusReporter) -> None:
        self.reporter = reporter

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells[3:3] = [
            '<th class="cursus-col">Wall</th>',
            '<th class="cursus-col">Peak memory</th>',
            '<th class="cursus-col">Cache</th>',
        ]

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        from pytest_cursus.reporting.html_fragments import step_cells

        record = self._record_of(report)
        wall, peak, cache = step_cells(record)  # numbers and fixed words: nothing to escape
        cells[3:3] = [
            f'<td class="col-cursus-wall">{wall}</td>',
            f'<td class="col-cursus-peak">{peak}</td>',
            f'<td class="col-cursus-cache">{cache}</td>',
        ]

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        """A skipped item's log reads ``scenarios/x.yaml:12: upstream step 'a' failed``, as pytest's short
        summary writes it; pytest-html would print the skip's (path, line, message) tuple as it is."""
        if not (report.skipped and "cursus" in report.keywords and isinstance(report.longrepr, tuple)):
            return
        raw = html.escape(report.longreprtext) + "\n"  # what pytest-html made of the tuple
        if raw not in data:
            return
        from pytest_cursus.reporting.failure_text import shown_path

        path, line, message = report.longrepr
        reason = message.removeprefix("Skipped: ")
        data[data.index(raw)] = html.escape(
            f"{shown_path(Path(path), self.reporter.config.rootpath)}:{line}: {reason}\n"
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Put the step's details among the report's extras before pytest-html (trylast) reads them."""
        record = self._record_of(report)
        comparisons = self.reporter.report_comparisons.get(report)
        if record is None and not comparisons:
            return
        from pytest_html import extras  # type: ignore[import-untyped]

        from pytest_cursus.reporting.html_fragments import profile_comparison, step_details

        added = [extras.html(step_details(record, self.reporter.thresholds))] if record is not None else []
        # made while the item ran, carried by its teardown report: pytest-html shows the extras
        # of every phase in the item's details
        added += [extras.html(f'<div class="cursus-details">{profile_comparison(c)}</div>') for c in comparisons or ()]
        report.extras = [*getattr(report, "extras", []), *added]  # type: ignore[attr-defined]

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: Any
    ) -> None:
        records = self.reporter.sorted_records()
        comparisons = self.reporter.sorted_comparisons()
        if not records and not comparisons:
            return
        from pytest_cursus.reporting.html_fragments import summary_block

        postfix.append(summary_block(records, comparisons, self.reporter.sorted_scriptless()))

    def _record_of(self, report: pytest.TestReport) -> ReportedStep | None:
        """The reporter parsed it already (its logreport hook runs first)."""
        if getattr(report, RECORD_ATTRIBUTE, None) is None:
            return None
        from pytest_cursus.reporting.run_report import ReportedStep

        return self.reporter.parsed.get(report) or ReportedStep.model_validate(getattr(report, RECORD_ATTRIBUTE))
