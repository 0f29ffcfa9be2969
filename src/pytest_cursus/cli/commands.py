"""The ``health-check``, ``list`` and ``run`` subcommands of ``cursus-runtime`` (``cli/main.py``
registers them): argument parsing here, the work in ``health_check.py``,
``listing.py`` and pytest itself.

Exit codes: 0 fine, 1 a check failed / a scenario is invalid, 2 bad arguments (argparse's
message and usage line).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_cursus.cli.arguments import positive_number
from pytest_cursus.run.options import OPTIONS, OptionError, OptionSpec, convert_value

if TYPE_CHECKING:
    from pytest_cursus.plan.scenario_plan import PlanOptions
    from pytest_cursus.plan.wiring import DagWiring

HEALTH_CHECK_HELP = (
    "check that this machine can run steps: Python, dependencies, workspace and cache writable, "
    "free disk and memory, S3 reachable when configured (exit 1 on a failed check)"
)
LIST_HELP = (
    "list the scenarios, steps and edges pytest would collect from the given paths, "
    "without running anything (exit 1 when a scenario is invalid)"
)
WIRE_HELP = (
    "show how a pipeline DAG's inputs are wired: node, input, the output feeding it and the rule used "
    "(exit 1 when a required input is unwired)"
)
WHY_HELP = (
    "why a step would run: its cache key parts now, each against the entry it last stored "
    "(exit 0 when it would come from the cache, 1 when it would run)"
)
INIT_HELP = "write the explicit scenario equivalent to a pipeline DAG and its interfaces, to edit by hand"
RUN_HELP = (
    "run scenarios with pytest: 'python -m pytest --cursus-scenarios PATH ...' with the options below; "
    "pytest's own options go after '--'"
)


# --- health-check ----------------------------------------------------------------------------


def health_check_arguments(parser: argparse.ArgumentParser) -> None:
    from pytest_cursus.cli.health_check import DEFAULT_MIN_DISK_GB, DEFAULT_MIN_MEMORY_GB

    parser.add_argument(
        "--workspace",
        type=Path,
        metavar="DIR",
        help=(
            "where step workspaces will be written "
            "(default: the system's temporary directory, where pytest's basetemp is)"
        ),
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="the step cache (default: .pytest_cache/d/cursus-steps of the project around the current directory)",
    )
    parser.add_argument(
        "--min-disk-gb",
        type=positive_number,
        default=DEFAULT_MIN_DISK_GB,
        metavar="GB",
        help="fail when less disk is free where the workspace or the cache lives (default: %(default)s)",
    )
    parser.add_argument(
        "--min-memory-gb",
        type=positive_number,
        default=DEFAULT_MIN_MEMORY_GB,
        metavar="GB",
        help="fail when less memory is available (default: %(default)s)",
    )
    parser.add_argument(
        "--s3-endpoint",
        type=_option_check("s3_endpoint"),
        metavar="URL",
        help="S3 endpoint to reach (default: AWS_ENDPOINT_URL(_S3), else AWS when credentials are configured)",
    )
    parser.add_argument(
        "--s3-uri", type=_s3_uri, metavar="URI", help="an s3:// prefix your scenarios read: checked by listing it"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def health_check(args: argparse.Namespace) -> int:
    from pytest_cursus.cli.health_check import HealthSettings, default_workspace, render_text, run_checks
    from pytest_cursus.project_root import STEP_CACHE_DIR, project_dir, pytest_cache_dir

    settings = HealthSettings(
        workspace=(args.workspace or default_workspace()).resolve(),
        cache_dir=(args.cache_dir or pytest_cache_dir(project_dir(Path.cwd()), STEP_CACHE_DIR)).resolve(),
        min_disk_gb=args.min_disk_gb,
        min_memory_gb=args.min_memory_gb,
        s3_endpoint=args.s3_endpoint,
        s3_uri=args.s3_uri,
    )
    report = run_checks(settings)
    print(report.model_dump_json(indent=2) if args.json else render_text(report))
    return 0 if report.ok else 1


# --- list ----------------------------------------------------------------------------------------


def list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        type=_existing_path,
        metavar="PATH",
        help="scenario directories or files (as --cursus-scenarios)",
    )
    _add_option(parser, "contracts")
    _add_option(parser, "scripts")
    _add_option(parser, "source")
    parser.add_argument("--ids", action="store_true", help="print only the node ids, one per line, in collection order")
    parser.add_argument("--json", action="store_true", help="print the listing as JSON")


def list_command(args: argparse.Namespace) -> int:
    from pytest_cursus.cli.listing import list_scenarios, node_ids, render_text
    from pytest_cursus.project_root import find_rootdir

    cwd = Path.cwd()
    options = _plan_options(args, cwd)
    listing = list_scenarios(args.paths, options, find_rootdir(cwd))
    if args.json:
        print(listing.model_dump_json(indent=2))
    elif args.ids:
        print("\n".join(node_ids(listing)))
    else:
        print(render_text(listing))
    if not listing.scenarios:
        print(
            f"no scenario file (*.yaml/*.yml with a top-level 'steps:') under {', '.join(map(str, args.paths))}",
            file=sys.stderr,
        )
        return 1
    return 1 if listing.invalid else 0


# --- why -----------------------------------------------------------------------------------------


def why_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="a scenario file, or a scenario's name (found under PATH)")
    parser.add_argument("step", metavar="STEP", help="the step")
    parser.add_argument(
        "paths",
        nargs="*",
        type=_existing_path,
        metavar="PATH",
        help="where to find a scenario given by name, as list takes them (default: the current directory)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="the step cache (default: .pytest_cache/d/cursus-steps of the scenario's project, as pytest finds it)",
    )
    _add_option(parser, "contracts")
    _add_option(parser, "scripts")
    _add_option(parser, "source")


def why_command(args: argparse.Namespace) -> int:
    from pytest_cursus.cli.key_explanation import EXIT_CACHED, EXIT_WOULD_RUN, explain, find_scenario, render_text
    from pytest_cursus.errors import ConfigError, ConfigErrors, CursusError
    from pytest_cursus.plan.scenario_plan import load_scenario
    from pytest_cursus.project_root import STEP_CACHE_DIR, project_dir, pytest_cache_dir

    cwd = Path.cwd()
    options = _plan_options(args, cwd)
    try:
        path = find_scenario(args.scenario, args.paths or [cwd], options)
        plan = load_scenario(path, options)
        cache_root = args.cache_dir or pytest_cache_dir(project_dir(path), STEP_CACHE_DIR)
        found = explain(plan, args.step, cache_root.resolve())
    except (ConfigError, ConfigErrors) as exc:
        print(f"cursus-runtime why: {exc.render(cwd)}", file=sys.stderr)
        return 2
    except CursusError as exc:  # a data source that cannot be listed or read for its key
        print(f"cursus-runtime why: {exc}", file=sys.stderr)
        return 1
    print(render_text(found, cwd))
    return EXIT_WOULD_RUN if found.would_run or found.unknown_inputs else EXIT_CACHED


# --- wire ----------------------------------------------------------------------------------------


def wire_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", type=_existing_path, metavar="SCENARIO_OR_DAG", help="a scenario with a 'dag:' key, or a DAG file"
    )
    parser.add_argument(
        "--interfaces",
        action="append",
        type=_existing_path,
        default=[],
        metavar="DIR",
        help="where the *.step.yaml interfaces are (repeatable); a scenario also uses its own 'contracts:'",
    )
    parser.add_argument(
        "--scripts",
        action="append",
        type=_existing_path,
        default=[],
        metavar="DIR",
        help="for a DAG file: where the scripts are; a node whose script is not there is a data source "
        "(default: only a node whose interface has no entry_point is)",
    )
    parser.add_argument("--json", action="store_true", help="print the wiring as JSON")


def wire_command(args: argparse.Namespace) -> int:
    from pytest_cursus.cli.wiring_table import failed, render_table, wiring_json
    from pytest_cursus.errors import ConfigError, ConfigErrors

    try:
        wiring = _read_wiring(args.path, args.interfaces, args.scripts)
    except (ConfigError, ConfigErrors) as exc:
        print(f"cursus-runtime wire: {exc.render(Path.cwd())}", file=sys.stderr)
        return 2
    if args.json:
        print(wiring_json(wiring))
        for _, message in wiring.problems:
            print(message, file=sys.stderr)
    else:
        print(render_table(wiring, args.path))
    return 1 if failed(wiring) else 0


def _read_wiring(path: Path, interfaces: list[Path], scripts: list[Path]) -> DagWiring:
    from pytest_cursus.errors import ConfigError
    from pytest_cursus.plan.scenario_plan import PlanOptions, load_dag_wiring, wire_dag_file

    if is_dag_file(path):
        if not interfaces:
            raise ConfigError(f"{path} is a DAG file: say where its interfaces are with --interfaces DIR")
        return wire_dag_file(path, [p.resolve() for p in interfaces], [p.resolve() for p in scripts])
    options = PlanOptions(contracts=[p.resolve() for p in interfaces], scripts=[p.resolve() for p in scripts])
    return load_dag_wiring(path, options)


def is_dag_file(path: Path) -> bool:
    """A DAG file is JSON, or YAML whose ``dag:`` is a mapping (a scenario's ``dag:`` names a file)."""
    from pytest_cursus.formats.dag_file import JSON_SUFFIXES
    from pytest_cursus.formats.yaml_document import YamlDocument

    if path.name.endswith(JSON_SUFFIXES):
        return True
    data = YamlDocument.load(path).data
    return isinstance(data, dict) and isinstance(data.get("dag"), dict)


# --- init --------------------------------------------------------------------------------------------


def init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dag", type=_existing_path, required=True, metavar="FILE", help="the pipeline DAG file")
    parser.add_argument(
        "--interfaces",
        action="append",
        type=_existing_path,
        required=True,
        metavar="DIR",
        help="where the *.step.yaml interfaces are (repeatable)",
    )
    parser.add_argument(
        "--scripts",
        action="append",
        type=_existing_path,
        default=[],
        metavar="DIR",
        help="where the scripts are (repeatable); written as the scenario's 'scripts:' (default: a placeholder)",
    )
    parser.add_argument(
        "--output", type=Path, metavar="FILE", help="the scenario file to write (default: print it); never overwritten"
    )


def init_command(args: argparse.Namespace) -> int:
    from pytest_cursus.cli.scenario_writer import explicit_scenario
    from pytest_cursus.cli.wiring_table import failed
    from pytest_cursus.errors import ConfigError, ConfigErrors
    from pytest_cursus.plan.scenario_plan import FileLookups, wire_dag_file

    if args.output is not None and args.output.exists():
        print(f"cursus-runtime init: {args.output} exists; remove it or choose another --output", file=sys.stderr)
        return 2
    interfaces = [p.resolve() for p in args.interfaces]
    scripts = [p.resolve() for p in args.scripts]
    lookups = FileLookups()
    try:
        wiring = wire_dag_file(args.dag, interfaces, scripts, lookups)
    except (ConfigError, ConfigErrors) as exc:
        print(f"cursus-runtime init: {exc.render(Path.cwd())}", file=sys.stderr)
        return 2
    target = args.output.parent if args.output is not None else Path.cwd()
    text = explicit_scenario(wiring, lookups.contracts(interfaces), target, interfaces, scripts)
    if args.output is None:
        print(text, end="")
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"scenario written to {args.output}", file=sys.stderr)
    if not failed(wiring):  # outputs of data sources with no schema are the file: placeholders
        return 0
    for _, message in wiring.problems:  # written all the same, with the unwired inputs as comments
        print(message, file=sys.stderr)
    return 1


# --- run -----------------------------------------------------------------------------------------


def run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=_existing_path,
        metavar="PATH",
        help="scenario directories or files (default: the cursus_scenarios ini option)",
    )
    for spec in OPTIONS:
        if spec.name != "scenarios":
            _add_option(parser, spec.name)
    parser.add_argument("-k", metavar="EXPRESSION", help="only items matching the expression (pytest's -k)")
    parser.add_argument(
        "-n", metavar="NUM", help="parallel workers with pytest-xdist (pytest's -n; 'auto' for one per CPU)"
    )
    parser.add_argument("--print-command", action="store_true", help="print the pytest command instead of running it")
    parser.usage = "cursus-runtime run [options] [PATH ...] [-- PYTEST_ARGS ...]"
    parser.epilog = (
        "Everything after '--' goes to pytest as it is, e.g. -- -x --html=report.html --cursus-json=run.json"
    )


def run_command(args: argparse.Namespace) -> int:
    command = [sys.executable, "-m", "pytest", *pytest_arguments(args)]
    if args.print_command:
        print(shlex.join(command))
        return 0
    sys.stdout.flush()
    os.execv(sys.executable, command)  # pytest's exit status is the command's


def pytest_arguments(args: argparse.Namespace) -> list[str]:
    arguments = [part for path in args.paths for part in ("--cursus-scenarios", str(path))]
    for spec in OPTIONS:
        value = getattr(args, spec.name, None)
        if spec.name == "scenarios" or value in (None, False, []):
            continue
        if spec.kind == "flag":
            arguments.append(spec.flag)
        elif spec.kind == "paths":
            arguments += [part for item in value for part in (spec.flag, item)]
        else:
            arguments += [spec.flag, value]
    if args.k:
        arguments += ["-k", args.k]
    if args.n:
        arguments += ["-n", args.n]
    return arguments + list(getattr(args, "passthrough", []))


def parse_with_passthrough(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` up to the first ``--``; what follows is ``args.passthrough`` (``run`` only)."""
    cut = argv.index("--") if "--" in argv else len(argv)
    args, unknown = parser.parse_known_args(argv[:cut])
    if unknown:
        hint = ""
        if args.command == "run":  # guessing which unknown words are pytest's and which a typo is not ours to do
            hint = f"; pytest's own options go after '--': cursus-runtime run ... -- {shlex.join(unknown)}"
        parser.error(f"unrecognized arguments: {shlex.join(unknown)}{hint}")
    args.passthrough = argv[cut + 1 :]
    if cut < len(argv) and args.command != "run":
        parser.error(f"{args.command} takes no arguments after '--' (only run passes them to pytest)")
    return args


# --- shared ----------------------------------------------------------------------------------------


def _add_option(parser: argparse.ArgumentParser, name: str) -> None:
    """An option of the table as ``--x`` (and ``--cursus-x``, as pytest spells it); the value is
    checked as pytest would, and passed on as given."""
    spec = _spec(name)
    short = "--" + spec.name.replace("_", "-")
    if spec.kind == "flag":
        parser.add_argument(short, spec.flag, dest=spec.name, action="store_true", help=spec.help)
        return
    parser.add_argument(
        short,
        spec.flag,
        dest=spec.name,
        action="append" if spec.kind == "paths" else "store",
        choices=spec.choices or None,
        type=str if spec.choices else _option_check(name),
        metavar=spec.metavar,
        help=spec.help,
    )


def _plan_options(args: argparse.Namespace, cwd: Path) -> PlanOptions:
    """The plugin's --contracts, --scripts and --source as given to list or why."""
    from pytest_cursus.plan.scenario_plan import PlanOptions

    return PlanOptions(
        contracts=convert_value(_spec("contracts"), args.contracts or [], cwd),
        scripts=convert_value(_spec("scripts"), args.scripts or [], cwd),
        source=args.source or _spec("source").default,
    )


def _spec(name: str) -> OptionSpec:
    return next(spec for spec in OPTIONS if spec.name == name)


def _option_check(name: str) -> Callable[[str], str]:
    spec = _spec(name)

    def check(text: str) -> str:
        try:
            convert_value(spec, [text] if spec.kind == "paths" else text, Path.cwd())
        except OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None
        return text

    check.__name__ = spec.kind  # argparse names the type in "invalid <type> value" messages
    return check


def _s3_uri(text: str) -> str:
    from pytest_cursus.data.s3.uri import check_s3_uri

    try:
        return check_s3_uri(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _existing_path(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return path
