"""The pytest plugin: options, collection of scenario files, markers.

Kept thin: the items live in the other modules of ``plugin/`` and all the work in plain modules. Heavy imports
(pandas, pyarrow, the execution engine) happen only once a scenario is collected or run, so
``pytest --help`` and ordinary test runs do not pay for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_cursus.plugin.fixtures import cursus_run, cursus_s3_endpoint  # noqa: F401  (fixtures of the plugin)
from pytest_cursus.plugin.session import (
    CACHE_PROPERTY,
    SESSION_KEY,
    CursusSession,
    cursus_session,
    cursus_session_if_any,
    is_xdist_worker,
    scenarios_collected,
)
from pytest_cursus.plugin.termination import give_back_sigterm, take_sigterm
from pytest_cursus.run.options import OPTIONS, OptionError, resolve_options

MARKERS = {
    "cursus": "an item collected by pytest-cursus",
    "cursus_step": "a pipeline step run by pytest-cursus",
    "cursus_edge": "a data compatibility check between two pipeline steps",
    "cursus_contract": "a script contract check by pytest-cursus",
    "cursus_isolation": (
        "a step run alone on data generated from its contract's data: schemas (--cursus-mode isolation|both)"
    ),
    "cursus_fuzz": "a step run on many generated datasets with hypothesis (--cursus-fuzz N or a fuzz: block)",
}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """The ``pytest_cursus_*`` hooks a conftest.py can implement (run/hookspecs.py)."""
    from pytest_cursus.run import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_sessionstart(session: pytest.Session) -> None:
    state = cursus_session_if_any(session.config)
    if state is None:
        return
    if state.options.scenarios or state.options.contracts:
        take_sigterm(session.config)  # a CI cancel ends the run as Ctrl-C does: reports written
    from pytest_cursus.run.extension_hooks import ExtensionHooks

    # path-aware, like pytest's own hooks: a conftest.py applies to the scenarios below it
    state.extensions = ExtensionHooks(session.gethookproxy)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cursus", "pytest-cursus: pipeline scripts as test items")
    for spec in OPTIONS:
        kwargs: dict[str, object] = {"dest": f"cursus_{spec.name}", "default": None, "help": spec.help}
        if spec.kind == "paths":
            kwargs["action"] = "append"
        if spec.kind == "flag":
            kwargs["action"] = "store_true"
        if spec.choices:
            kwargs["choices"] = spec.choices
        if spec.metavar:
            kwargs["metavar"] = spec.metavar
        group.addoption(spec.flag, **kwargs)  # type: ignore[arg-type]
        ini_type = {"paths": "paths", "flag": "bool"}.get(spec.kind, "string")
        parser.addini(spec.ini_name, help=spec.help, type=ini_type, default=None)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    try:
        options = resolve_options(
            lambda name: config.getoption(f"cursus_{name}") or None,
            lambda name: config.getini(f"cursus_{name}"),
            invocation_dir=config.invocation_params.dir,
            ini_dir=config.inipath.parent if config.inipath else config.rootpath,
        )
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None
    for directory in options.scenarios:
        if not directory.exists():
            raise pytest.UsageError(f"--cursus-scenarios / cursus_scenarios: {directory} does not exist")
    if options.fuzz:
        from pytest_cursus.errors import MissingExtra

        try:
            MissingExtra.check("hypothesis", "fuzz", "--cursus-fuzz / cursus_fuzz")
        except MissingExtra as exc:
            raise pytest.UsageError(str(exc)) from None
    if options.watch:
        from pytest_cursus.errors import MissingExtra

        try:
            MissingExtra.check("watchfiles", "watch", "--cursus-watch / cursus_watch")
        except MissingExtra as exc:
            raise pytest.UsageError(str(exc)) from None
        if getattr(config.option, "numprocesses", None) and not is_xdist_worker(config):
            raise pytest.UsageError(
                "--cursus-watch keeps one pytest process and its warm parent between runs; it cannot be combined "
                "with -n (xdist workers end with each run): drop -n"
            )
    if options.debug and getattr(config.option, "numprocesses", None):
        raise pytest.UsageError(
            "--cursus-debug runs steps in the pytest process so a debugger can stop in them; it cannot be "
            "combined with -n (xdist workers have no terminal): drop -n, and select the step with -k"
        )
    held_workspace = None
    if options.workspace is not None:
        from pytest_cursus.execution.workspace import ForeignDirectory, WorkspaceInUse, claim_workspace, hold_workspace

        try:
            claim_workspace(options.workspace)
            # one session per workspace: its xdist workers work under it while the controller holds it
            if not is_xdist_worker(config) and hold_workspace(options.workspace):
                held_workspace = options.workspace
        except OSError as exc:
            raise pytest.UsageError(
                f"--cursus-workspace / cursus_workspace: {options.workspace} cannot be created "
                f"({exc.strerror or exc}): give a writable directory"
            ) from None
        except (ForeignDirectory, WorkspaceInUse) as exc:
            raise pytest.UsageError(f"--cursus-workspace / cursus_workspace: {exc}") from None
    workerinput = getattr(config, "workerinput", None)
    run_id = workerinput["testrunuid"] if workerinput else uuid.uuid4().hex
    config.stash[SESSION_KEY] = CursusSession(config, options, run_id, held_workspace=held_workspace)
    if options.fuzz_replay:
        from pytest_cursus.plugin.generated_data_items import replays

        replays(config)  # a bad directory is a usage error now, not a collection error later
    _register_reporting(config, config.stash[SESSION_KEY])
    # contract directories are collected too: each contract file is a contract item
    _add_scenarios_to_args(
        config,
        options.scenarios + tuple(path for path in options.contracts if path not in options.scenarios),
        from_command_line=bool(config.getoption("cursus_scenarios") or config.getoption("cursus_contracts")),
    )


def _register_reporting(config: pytest.Config, state: CursusSession) -> None:
    """Step records, summary, JSON and baseline; the pytest-html hooks only when pytest-html is
    active (registering hooks of an absent plugin is an error)."""
    from pytest_cursus.plugin.reporter import REPORTER_NAME, CursusReporter

    reporter = CursusReporter(config, state.options)
    config.pluginmanager.register(reporter, REPORTER_NAME)
    from pytest_cursus.plugin.live_lines import LIVE_LINES_NAME, LiveLines

    live_lines = LiveLines(config, state.options.progress_after)
    config.pluginmanager.register(live_lines, LIVE_LINES_NAME)
    state.progress, state.progress_stream = live_lines, live_lines.stream()
    if config.pluginmanager.hasplugin("html"):
        from pytest_cursus.plugin.html_report import HTML_PLUGIN_NAME, CursusHtml

        config.pluginmanager.register(CursusHtml(reporter), HTML_PLUGIN_NAME)


def _add_scenarios_to_args(config: pytest.Config, scenarios: tuple[Path, ...], *, from_command_line: bool) -> None:
    """``pytest --cursus-scenarios DIR`` collects DIR, whatever testpaths says.

    Without positional arguments the scenario directories replace the default (the current
    directory or testpaths) when given on the command line, and are added to it when they come
    from the ini file; with positional arguments, command-line directories are added to them.
    """
    if not scenarios:
        return
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    if explicit and not from_command_line:
        return
    wanted = [str(path) for path in scenarios]
    if from_command_line and not explicit:
        config.args[:] = wanted
        return
    # `pytest --cursus-scenarios s s/x.yaml::train` means that one item, not all of s
    named = [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]
    for directory in scenarios:
        if not any(path == directory or directory in path.parents or path in directory.parents for path in named):
            config.args.append(str(directory))


def _named_on_command_line(config: pytest.Config) -> list[Path]:
    """The files and directories named as arguments (`pytest scenarios/`, `pytest x.yaml::train`, `pytest .`);
    none for a bare `pytest` walking the rootdir or testpaths."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return []
    return [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A package directory inside a ``--cursus-contracts`` directory, or on the way to one, is collected as a
    plain ``Dir``: pytest's ``Package`` would import its ``__init__.py`` in the pytest process before the
    contract items run (``Package.setup``), and a contract check must not run the project's code there."""
    state = cursus_session_if_any(parent.config)
    if state is None or not state.options.contracts or not (path / "__init__.py").is_file():
        return None
    if any(path == root or root in path.parents or path in root.parents for root in state.options.contracts):
        return pytest.Dir.from_parent(parent, path=path)
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    state = cursus_session_if_any(parent.config)
    options = state.options if state is not None else None
    if options is not None and options.contracts:
        from pytest_cursus.formats.contracts import is_contract_file

        if is_contract_file(file_path) and any(
            file_path == root or root in file_path.parents for root in options.contracts
        ):
            from pytest_cursus.plugin.contract_items import ContractYamlFile

            return ContractYamlFile.from_parent(parent, path=file_path)
    under_scenarios = options is not None and any(
        file_path == root or root in file_path.parents for root in options.scenarios
    )
    named = _named_on_command_line(parent.config)
    # asked for: any file with `steps:` is a scenario, and a broken one an error item saying why
    asked_for = under_scenarios or file_path in named
    if not (asked_for or any(path in file_path.parents for path in named)):
        return None
    from pytest_cursus.plan.scenario_plan import looks_like_scenario, shaped_like_scenario

    if not looks_like_scenario(file_path):
        return None
    if not asked_for and not shaped_like_scenario(file_path):
        # met walking a named directory (`pytest .`): azure-pipelines.yml, cloudbuild.yaml... have `steps:` too
        return None
    from pytest_cursus.plugin.scenario_items import ScenarioYamlFile

    return ScenarioYamlFile.from_parent(parent, path=file_path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Setup-phase errors of our items (invalid scenario, failed upstream) read like failures.

    pytest formats setup errors without ``repr_failure``, so the text is put on the report here.
    """
    report: pytest.TestReport = yield
    if not scenarios_collected():
        return report  # not our item, and the engine stays unimported
    from pytest_cursus.plugin.items import CursusItem

    if call.excinfo is None or call.when != "setup" or not isinstance(item, CursusItem):
        return report
    if report.skipped and isinstance(report.longrepr, tuple):
        # a skip is located where pytest.skip() was called (our code): point at the YAML instead
        path, line, _ = item.reportinfo()
        report.longrepr = (str(path), (line or 0) + 1, report.longrepr[2])
    elif not report.skipped:
        text = item.explain(call.excinfo)
        if text is not None:
            report.longrepr = text
    return report


@pytest.hookimpl(trylast=True)  # after -k and -m: the shards split what is selected
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    options = cursus_session(config).options
    if options.shard is None:
        return
    from pytest_cursus.plugin.shard_selection import select_shard

    line = select_shard(config, options, items)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if line and reporter is not None and not is_xdist_worker(config):
        reporter.write_line(line)


def pytest_collection_finish(session: pytest.Session) -> None:
    if not scenarios_collected():
        return  # don't pay for importing the engine
    take_sigterm(session.config)  # scenarios named on the command line rather than by --cursus-scenarios
    from pytest_cursus.plugin.scenario_items import StepItem, skipped_by_mark

    state = cursus_session(session.config)
    state.selected_steps = {
        (item.plan.path, item.step)
        for item in session.items
        if isinstance(item, StepItem) and not skipped_by_mark(item)
    }
    from pytest_cursus.plugin.live_lines import live_lines_for

    live_lines = live_lines_for(session.config)
    if live_lines is not None:
        live_lines.total = steps_to_run(session.items)
    if state.selected_steps and not session.config.option.collectonly and not state.options.debug:
        try:
            start = getattr(state.launcher(), "start", None)
            if start is not None:
                start()
        except OSError:
            pass  # e.g. an unwritable --basetemp: the first step meets it again and reports it


def steps_to_run(items: list[pytest.Item]) -> int:
    """The steps the session will run: each selected step and edge item's step with the upstream steps it
    needs (none under --cursus-execution, where upstream outputs are the execution's)."""
    from pytest_cursus.plugin.scenario_items import EdgeItem, StepItem

    steps: set[tuple[Path, str]] = set()
    for item in items:
        if isinstance(item, StepItem):
            plan, step = item.plan, item.step
        elif isinstance(item, EdgeItem) and item.plan.execution is None:
            plan, step = item.plan, item.edge.upstream
        else:
            continue
        steps.add((plan.path, step))
        if plan.execution is None:
            steps.update((plan.path, upstream) for upstream in plan.required_before(step))
    return len(steps)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """CACHED for a step taken from an earlier run's cache, SHARED for one this run ran for another item."""
    if report.when != "call" or not report.passed:
        return None
    reuse = next((value for name, value in report.user_properties if name == CACHE_PROPERTY), None)
    if reuse == "cached":
        return "passed", "c", "CACHED"
    if reuse == "shared":
        return "passed", ".", "SHARED"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """--cursus-watch: after the run, rerun what each saved change affects until Ctrl-C (plugin/watch_loop.py)."""
    result = yield
    state = cursus_session_if_any(session.config)
    if state is None or not state.options.watch or session.config.option.collectonly or is_xdist_worker(session.config):
        return result
    from pytest_cursus.plugin.watch_loop import watch_and_rerun

    watch_and_rerun(session, state)
    return result


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Trim the step cache and the S3 download cache to their size caps."""
    config = session.config
    state = cursus_session_if_any(config)
    if state is None:
        return
    pipeline = state.pipeline_started
    if is_xdist_worker(config):
        # only the process that outlives all others evicts; a worker lets go of the cache first
        if pipeline is not None and pipeline.cache is not None:
            pipeline.cache.end_session()
        return
    if pipeline is not None:
        cache, s3 = pipeline.cache, pipeline.s3
    else:
        from pytest_cursus.plugin.reporter import reporter_for

        reporter = reporter_for(config)
        if not (reporter is not None and reporter.records):
            return  # no step ran: nothing was stored or downloaded, and nothing is loaded for it
        # the xdist controller runs no step and has no pipeline: the caches alone, without the engine
        cache, s3 = state.step_cache(), state.s3_access()
    if cache is not None:
        cache.evict()
        cache.end_session()  # another session may evict what this one no longer reads
    s3.evict_cache()


def pytest_unconfigure(config: pytest.Config) -> None:
    give_back_sigterm(config)
    state = cursus_session_if_any(config)
    if state is not None:
        state.close_launcher()
        state.release_workspace()


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Synthetic-vs-real profiles made while this item ran travel on its reports, as JSON
    (xdist sends reports, not objects, to the controller); the reporter shows them."""
    state = cursus_session_if_any(item.config)
    pipeline = state.pipeline_started if state is not None else None
    if pipeline is not None:
        from pytest_cursus.plugin.reporter import COMPARISON_PROPERTY

        for comparison in pipeline.take_comparisons():
            item.user_properties.append((COMPARISON_PROPERTY, comparison.model_dump_json()))
