"""--cursus-watch (docs/watch.md): after the session's run, the same pytest process, plan and warm parent
wait for saved files (watchfiles) and rerun, through pytest's own runtest protocol, the items of the steps
a change affects (run/watch_targets.py), so live lines, reports and the summary table are the usual ones.

Steps are forked from the warm parent, which preloads only third-party modules: a script and the modules
it imports from the scenario's roots are imported afresh by each step's process, so an edit is seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from pytest_cursus.plugin.session import CursusSession

# milliseconds without a further change before a batch of saves is taken (an editor writes a file in steps)
QUIET_MS = 50


def watch_and_rerun(session: pytest.Session, state: CursusSession) -> None:
    """Loops until Ctrl-C: its KeyboardInterrupt ends the session as during any run."""
    from watchfiles import watch

    from pytest_cursus.run.watch_targets import WatchIndex

    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    while True:
        index = WatchIndex.of(_plans(session.items), _invalid_files(session.items))
        directories = _directories(index.paths())
        _say(terminal, f"cursus watch: watching {len(index.paths())} files; Ctrl-C ends")
        wanted = {*index.replan_by_file, *index.steps_by_file, *index.sources_by_path}
        targets = None
        for changes in watch(
            *directories,
            watch_filter=lambda _change, path, wanted=wanted: _wanted(Path(path), wanted),
            step=QUIET_MS,
            raise_interrupt=True,
        ):
            targets = index.targets(Path(path) for _, path in changes)
            if targets:
                break
        if targets is None:
            return  # the watched directories are gone
        items = _replan(session, state, targets.replan)
        pipeline = state.pipeline_started
        by_scenario: dict[Path, set[str]] = {}
        for scenario, step in targets.steps:
            by_scenario.setdefault(scenario, set()).add(step)
        if pipeline is not None:
            for scenario in targets.replan:
                pipeline.forget(scenario)
            for scenario, steps in by_scenario.items():
                pipeline.forget(scenario, steps, (name for path, name in targets.sources if path == scenario))
        items += [item for item in session.items if _step_of(item) in targets.steps]
        _rerun(session, [item for item in session.items if item in items])


def _replan(session: pytest.Session, state: CursusSession, scenarios: Iterable[Path]) -> list[pytest.Item]:
    """Read each changed scenario again: its items replace the old ones in place, -k and -m applied; an
    invalid file becomes an invalid-scenario item again, whose error is printed now."""
    from pytest_cursus.plugin.scenario_items import InvalidScenarioItem, ScenarioYamlFile

    fresh: list[pytest.Item] = []
    for scenario in scenarios:
        old = [item for item in session.items if item.path == scenario]
        parent = old[0].parent.parent if old else session
        state.forget_scenario(scenario)
        collector = ScenarioYamlFile.from_parent(parent, path=scenario)
        items = list(collector.collect())
        session.config.hook.pytest_collection_modifyitems(session=session, config=session.config, items=items)
        at = session.items.index(old[0]) if old else len(session.items)
        session.items[:] = [item for item in session.items if item.path != scenario]
        session.items[at:at] = items
        for item in items:
            if isinstance(item, InvalidScenarioItem):
                _say(
                    session.config.pluginmanager.get_plugin("terminalreporter"),
                    item.error.render(session.config.rootpath),
                )
        fresh += items
    return fresh


def _rerun(session: pytest.Session, items: list[pytest.Item]) -> None:
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    session.shouldstop = session.shouldfail = False  # -x stops one run, not the watching
    if terminal is not None:
        terminal.write_sep("-", f"cursus watch: rerunning {len(items)} items")
    for position, item in enumerate(items):
        following = items[position + 1] if position + 1 < len(items) else None
        item.ihook.pytest_runtest_protocol(item=item, nextitem=following)
        if session.shouldstop or session.shouldfail:
            break
    from pytest_cursus.plugin.reporter import reporter_for

    reporter = reporter_for(session.config)
    if reporter is not None and terminal is not None:
        reporter.pytest_terminal_summary(terminal)


def _plans(items: Iterable[pytest.Item]) -> list:
    plans = {}
    for item in items:
        plan = getattr(item, "plan", None)
        if plan is not None:
            plans[plan.path] = plan
    return list(plans.values())


def _invalid_files(items: Iterable[pytest.Item]) -> list[Path]:
    from pytest_cursus.plugin.scenario_items import InvalidScenarioItem

    return [item.path for item in items if isinstance(item, InvalidScenarioItem)]


def _step_of(item: pytest.Item) -> tuple[Path, str] | None:
    """The step whose rerun reruns ``item``: its own, or for an edge the step it feeds."""
    plan = getattr(item, "plan", None)
    if plan is None:
        return None
    edge = getattr(item, "edge", None)
    step = edge.downstream if edge is not None else getattr(item, "step", None)
    return (plan.path, step) if step is not None else None


def _directories(paths: Iterable[Path]) -> list[Path]:
    """The directories to watch: each file's own (an editor saves by renaming a new file over the old one,
    which a watch on the file itself would lose), each source directory; none inside another."""
    found = sorted({path if path.is_dir() else path.parent for path in paths})
    return [path for path in found if not any(other in path.parents for other in found)]


def _wanted(path: Path, wanted: set[Path]) -> bool:
    return path in wanted or any(parent in wanted for parent in path.parents)


def _say(terminal: object, text: str) -> None:
    if terminal is not None:
        terminal.write_line(text)  # type: ignore[attr-defined]
