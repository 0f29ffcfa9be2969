"""One report from the ``--cursus-json`` files of several shards (``cursus-runtime merge-reports``),
and a self-contained HTML page of a report, for CI where each runner wrote its own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from html import escape

from pytest_cursus.reporting.html_fragments import STYLE, step_cells, step_details, summary_block
from pytest_cursus.reporting.run_report import ReportedStep, RunReport, StepRecord


def merge_run_reports(reports: Sequence[tuple[str, RunReport]]) -> tuple[RunReport, list[str]]:
    """The reports' steps, profiles and script-less nodes in one report, and warnings: a step that
    two reports ran as an item (shards that overlapped: the first is kept), differing versions."""
    warnings: list[str] = []
    steps: dict[tuple[str, str, str], tuple[str, StepRecord]] = {}
    for label, report in reports:
        for step in report.steps:
            key = (step.scenario_file, step.scenario, step.step)
            earlier = steps.get(key)
            if earlier is None or (earlier[1].as_setup and not step.as_setup):
                steps[key] = (label, step)  # the step's own item beats its run as another's setup
            elif not step.as_setup and not earlier[1].as_setup:
                warnings.append(
                    f"{step.scenario}::{step.step} is an item of both {earlier[0]} and {label}: "
                    f"kept {earlier[0]}'s (did two shards overlap?)"
                )
    first_label, first = reports[0]
    for label, report in reports[1:]:
        differing = sorted(
            name for name in set(first.versions) | set(report.versions)
            if first.versions.get(name) != report.versions.get(name)
        )  # fmt: skip
        if differing:
            warnings.append(f"{label} ran with other versions than {first_label}: {', '.join(differing)}")
    nodes = {(n.scenario_file, n.scenario, n.node): n for _, report in reports for n in report.scriptless_nodes}
    merged = RunReport(
        versions=first.versions,
        machine=first.machine,
        steps=sorted((record for _, record in steps.values()), key=lambda r: (r.scenario_file, r.position, r.step)),
        profile_comparisons=[comparison for _, report in reports for comparison in report.profile_comparisons],
        scriptless_nodes=list(nodes.values()),
    )
    return merged, warnings


def report_page(report: RunReport, title: str) -> str:
    """A self-contained HTML page: each scenario's DAG, charts and profiles, then a row per step
    with its details (what the pytest-html report shows of a step, without its log excerpts)."""
    rows = []
    for record in report.steps:
        wall, peak, cache = step_cells(record)
        details = step_details(ReportedStep.model_validate(record.model_dump()))
        rows.append(
            f'<tr class="cursus-row {escape(record.outcome)}"><td>{escape(record.scenario)}</td>'
            f"<td>{escape(record.step)}{' (setup)' if record.as_setup else ''}</td>"
            f"<td>{escape(record.outcome)}</td><td>{wall}</td><td>{peak}</td><td>{cache}</td></tr>"
            f'<tr><td colspan="6">{details}</td></tr>'
        )
    outcomes = ", ".join(
        f"{count} {outcome}" for outcome, count in sorted(Counter(s.outcome for s in report.steps).items())
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>body {{ font-family: sans-serif; margin: 16px; }} table.cursus-steps td {{ padding: 2px 8px; "
        f"border-bottom: 1px solid #eee; vertical-align: top; }}</style>{STYLE}</head><body>"
        f"<h1>{escape(title)}</h1><p>{len(report.steps)} steps: {escape(outcomes)}</p>"
        f"{summary_block(report.steps, report.profile_comparisons, report.scriptless_nodes)}"
        '<h2>Steps</h2><table class="cursus-steps"><tr><th>scenario</th><th>step</th><th>outcome</th>'
        f"<th>wall</th><th>peak</th><th>cache</th></tr>{''.join(rows)}</table></body></html>"
    )
