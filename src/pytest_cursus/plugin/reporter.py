"""The pytest side of reporting: each step's record rides on its test report as plain JSON
(so it crosses xdist's process boundary), and the controller gathers the records into the
terminal summary, the ``--cursus-json`` file and the HTML report.

A record is attached to:
  * the ``call`` report of a step item (its own run or cache hit, with the baseline check);
  * the ``setup`` report of a step item whose setup failed or skipped (no metrics);
  * the ``setup`` report of any item whose setup produced upstream steps (``as_setup``).
"""

from __future__ import annotations

import weakref
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_cursus.plugin.session import (
    BASELINE_CHECK_KEY,
    SETUP_RESULTS_KEY,
    STEP_RESULT_KEY,
    cursus_session,
    is_xdist_worker,
    scenarios_collected,
)
from pytest_cursus.run.options import CursusOptions

# The report models (pydantic) are imported when a cursus item first reports: a session with
# no scenario, in a project that merely has the plugin installed, never pays for them.
if TYPE_CHECKING:
    from pytest_cursus.data.profile_comparison import ProfileComparison
    from pytest_cursus.plugin.items import ScenarioItem
    from pytest_cursus.reporting.run_report import BaselineCheck, ReportedStep, RunReport, ScriptlessNode
    from pytest_cursus.results import StepResult

REPORTER_NAME = "cursus-reporter"
RECORD_ATTRIBUTE = "cursus_step"  # on the report: ReportedStep as a JSON-able dict
SETUP_RECORDS_ATTRIBUTE = "cursus_setup_steps"  # on a setup report: list of such dicts
COMPARISON_PROPERTY = "cursus_profile_comparison"  # user_properties entry: a ProfileComparison as JSON


class CursusReporter:
    """Registered once per process; on workers it only attaches records."""

    def __init__(self, config: pytest.Config, options: CursusOptions) -> None:
        self.config = config
        self.options = options
        self.thresholds = options.thresholds()
        self.records: dict[tuple[str, str, str], ReportedStep] = {}
        # the DAG scenarios' nodes that run no script, by (scenario file, scenario, node)
        self.scriptless: dict[tuple[str, str, str], ScriptlessNode] = {}
        # the record of each report, parsed once, for the HTML hooks that run after this one
        self.parsed: weakref.WeakKeyDictionary[pytest.TestReport, ReportedStep] = weakref.WeakKeyDictionary()
        # synthetic vs real profiles, the first of each (scenario file, scenario, subject)
        self.comparisons: dict[tuple[str, str, str], ProfileComparison] = {}
        self.report_comparisons: weakref.WeakKeyDictionary[pytest.TestReport, list[ProfileComparison]] = (
            weakref.WeakKeyDictionary()
        )
        self.baseline: RunReport | None = None
        if options.baseline is not None:
            from pytest_cursus.reporting.run_report import RunReportError, read_run_report

            try:
                self.baseline = read_run_report(options.baseline)
            except RunReportError as exc:
                raise pytest.UsageError(f"--cursus-baseline / cursus_baseline: {exc}") from None

    # --- workers (and a serial run) ------------------------------------------------------------

    def check_baseline(self, scenario: str, step: str, result: StepResult) -> BaselineCheck | None:
        if self.baseline is None or self.options.baseline is None:
            return None
        from pytest_cursus.reporting.baseline import check_step

        return check_step(
            scenario,
            step,
            result.metrics,
            cached=cursus_session(self.config).reuse_of(result) == "cached",
            baseline=self.baseline,
            thresholds=self.thresholds,
            baseline_file=str(self.options.baseline),
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        if not scenarios_collected():
            return report  # so this is not a step
        from pytest_cursus.plugin.items import ScenarioItem
        from pytest_cursus.results import StepResult

        if not isinstance(item, ScenarioItem):
            return report
        if call.when == "setup":
            stored: list[StepResult] = item.stash.get(SETUP_RESULTS_KEY, [])
            produced = [*stored]
            failed_upstream = getattr(call.excinfo.value, "upstream", None) if call.excinfo else None
            if isinstance(failed_upstream, StepResult):  # UpstreamFailed: the failure must not go unlisted
                produced.append(failed_upstream)
            if produced:
                setattr(
                    report,
                    SETUP_RECORDS_ATTRIBUTE,
                    [_record(item, r.step, "passed" if r.passed else "failed", r, as_setup=True) for r in produced],
                )
            if item.runs_the_step and not report.passed:
                reason = report.longrepr[2] if report.skipped and isinstance(report.longrepr, tuple) else None
                setattr(
                    report,
                    RECORD_ATTRIBUTE,
                    _record(
                        item,
                        item.step,
                        "skipped" if report.skipped else "error",
                        None,
                        nodeid=item.nodeid,
                        skip_reason=reason,
                    ),
                )
        elif call.when == "call" and item.runs_the_step:
            result = item.stash.get(STEP_RESULT_KEY, None)
            outcome = "skipped" if report.skipped else report.outcome
            setattr(
                report,
                RECORD_ATTRIBUTE,
                _record(
                    item,
                    item.step,
                    outcome,
                    result,
                    nodeid=item.nodeid,
                    baseline=item.stash.get(BASELINE_CHECK_KEY, None),
                ),
            )
        return report

    # --- the controller (or a serial run) ------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if is_xdist_worker(self.config):
            return
        own = getattr(report, RECORD_ATTRIBUTE, None)
        setup_records = getattr(report, SETUP_RECORDS_ATTRIBUTE, None) or []
        carried = [value for name, value in getattr(report, "user_properties", ()) if name == COMPARISON_PROPERTY]
        if own is None and not setup_records and not carried:
            return
        from pytest_cursus.data.profile_comparison import ProfileComparison
        from pytest_cursus.reporting.run_report import ReportedStep

        if own is not None:
            record = ReportedStep.model_validate(own)
            self.records[_key(record)] = record
            self.parsed[report] = record
            self._note_scriptless(record)
        for raw in setup_records:
            record = ReportedStep.model_validate(raw)
            self._note_scriptless(record)
            known = self.records.get(_key(record))
            # an item's own record wins; of two setup records (two workers), the one that ran
            if known is None or (known.as_setup and known.cached and not record.cached):
                self.records[_key(record)] = record
        if carried:
            scenario_file = report.nodeid.split("::")[0]
            parsed = [
                ProfileComparison.model_validate_json(value).model_copy(update={"scenario_file": scenario_file})
                for value in carried
            ]
            self.report_comparisons[report] = parsed
            for comparison in parsed:
                self.comparisons.setdefault((scenario_file, comparison.scenario, comparison.subject), comparison)

    def _note_scriptless(self, record: ReportedStep) -> None:
        for node in record.scriptless_nodes:
            self.scriptless.setdefault((node.scenario_file, node.scenario, node.node), node)

    def sorted_scriptless(self) -> list[ScriptlessNode]:
        """In the order each scenario lists them (data sources, then nodes not run), scenarios sorted."""
        return sorted(self.scriptless.values(), key=lambda n: (n.scenario_file, n.scenario))

    def sorted_records(self) -> list[ReportedStep]:
        return sorted(self.records.values(), key=lambda r: (r.scenario_file, r.scenario, r.position))

    def sorted_comparisons(self) -> list[ProfileComparison]:
        return [self.comparisons[key] for key in sorted(self.comparisons)]

    def run_report(self) -> RunReport:
        from pytest_cursus.reporting.run_report import RunReport, machine, versions

        return RunReport(
            versions=versions(),
            machine=machine(),
            steps=[r.record() for r in self.sorted_records()],
            profile_comparisons=self.sorted_comparisons(),
            scriptless_nodes=self.sorted_scriptless(),
        )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if is_xdist_worker(self.config) or self.options.json is None:
            return
        from pytest_cursus.reporting.run_report import write_run_report

        write_run_report(self.run_report(), self.options.json)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if is_xdist_worker(self.config):
            return
        if self.records:
            from pytest_cursus.reporting.terminal_tables import summary_lines

            terminalreporter.write_sep("=", "cursus: pipeline steps")
            verbose = self.config.get_verbosity() > 0
            lines = summary_lines(
                self.sorted_records(), verbose=verbose, thresholds=self.thresholds, scriptless=self.sorted_scriptless()
            )
            for line in lines[1:]:
                terminalreporter.write_line(line)
            if self.options.json is not None:
                terminalreporter.write_line(f"cursus JSON report: {self.options.json}")
        if self.comparisons:  # one profile per real dataset (docs/s3.md)
            terminalreporter.write_sep("=", "cursus: synthetic vs real")
            for comparison in self.sorted_comparisons():
                terminalreporter.write_line(comparison.render_text())


def _record(
    item: ScenarioItem,
    step: str,
    outcome: str,
    result: StepResult | None,
    *,
    nodeid: str | None = None,
    as_setup: bool = False,
    skip_reason: str | None = None,
    baseline: BaselineCheck | None = None,
) -> dict[str, Any]:
    from pytest_cursus.reporting.step_records import reported_step, scriptless_nodes

    plan = item.plan
    scenario_file = item.nodeid.split("::")[0]
    record = reported_step(
        plan.steps[step],
        scenario_file=scenario_file,
        position=list(plan.steps).index(step),
        outcome=outcome,  # type: ignore[arg-type]
        result=result,
        nodeid=nodeid,
        as_setup=as_setup,
        skip_reason=skip_reason,
        baseline=baseline,
        run_id=cursus_session(item.config).run_id,
        scriptless=scriptless_nodes(plan, scenario_file),
    )
    return record.model_dump(mode="json")


def _key(record: ReportedStep) -> tuple[str, str, str]:
    return (record.scenario_file, record.scenario, record.step)


def reporter_for(config: pytest.Config) -> CursusReporter | None:
    """The session's reporter, registered as a plugin in ``pytest_configure`` (None with -p no:cursus)."""
    plugin = config.pluginmanager.get_plugin(REPORTER_NAME)
    return plugin if isinstance(plugin, CursusReporter) else None
