"""``cursus-runtime``: pytest-cursus outside pytest.

Each subcommand is a ``Command`` in ``COMMANDS``: a name, a help line, a function adding its
arguments and a function running it (returning the exit status). A new subcommand is one more
entry; ``main`` builds the parser from the list.

    cursus-runtime compare OLD.json NEW.json       # exit 1 when a step regressed
    cursus-runtime trend run1.json run2.json run3.json --chart trend.svg
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_cursus.cli import commands as runtime_commands
from pytest_cursus.cli.arguments import positive_number
from pytest_cursus.cli.schema_export import SCHEMA_HELP, schema_arguments, schema_command
from pytest_cursus.reporting.regression_thresholds import (
    DEFAULT_MAX_MEMORY_RATIO,
    DEFAULT_MAX_TIME_RATIO,
    DEFAULT_MIN_MEMORY_INCREASE_MB,
    DEFAULT_MIN_TIME_INCREASE_S,
    Thresholds,
)
from pytest_cursus.reporting.run_report import RunReportError, read_run_report
from pytest_cursus.version import __version__

EXIT_OK, EXIT_REGRESSED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", type=Path, help="the earlier --cursus-json file (the baseline)")
    parser.add_argument("new", type=Path, help="the later --cursus-json file")
    parser.add_argument(
        "--max-time-ratio",
        type=positive_number,
        default=DEFAULT_MAX_TIME_RATIO,
        help="as the ini option cursus_max_time_ratio (default: %(default)s)",
    )
    parser.add_argument(
        "--max-memory-ratio",
        type=positive_number,
        default=DEFAULT_MAX_MEMORY_RATIO,
        help="as cursus_max_memory_ratio (default: %(default)s)",
    )
    parser.add_argument(
        "--min-time-increase",
        type=positive_number,
        default=DEFAULT_MIN_TIME_INCREASE_S,
        help="as cursus_min_time_increase, seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--min-memory-increase-mb",
        type=positive_number,
        default=DEFAULT_MIN_MEMORY_INCREASE_MB,
        help="as cursus_min_memory_increase_mb (default: %(default)s)",
    )


def _compare(args: argparse.Namespace) -> int:
    from pytest_cursus.reporting.run_comparison import comparison_lines

    old, new = read_run_report(args.old), read_run_report(args.new)
    thresholds = Thresholds(
        args.max_time_ratio, args.max_memory_ratio, args.min_time_increase, args.min_memory_increase_mb
    )
    lines, regressed = comparison_lines(old, new, thresholds, str(args.old))
    print("\n".join(lines))
    if regressed:
        print(f"{regressed} step(s) regressed")
        return EXIT_REGRESSED
    return EXIT_OK


def _trend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", type=Path, nargs="+", help="--cursus-json files, oldest first")
    parser.add_argument("--chart", type=Path, metavar="PATH", help="also write the trend as an SVG chart to PATH")


def _trend(args: argparse.Namespace) -> int:
    from pytest_cursus.reporting.run_comparison import trend_lines, trend_series
    from pytest_cursus.reporting.svg_charts import trend_chart_svg

    reports = [read_run_report(path) for path in args.runs]
    labels = [path.stem for path in args.runs]
    print("\n".join(trend_lines(reports, labels)))
    if args.chart is not None:
        series = trend_series(reports)
        svg = trend_chart_svg(
            labels,
            [
                ("wall time (s)", {n: w for n, (w, _) in series.items()}),
                ("peak memory (MB)", {n: p for n, (_, p) in series.items()}),
            ],
        )
        args.chart.parent.mkdir(parents=True, exist_ok=True)
        args.chart.write_text(svg, encoding="utf-8")
        print(f"chart written to {args.chart}")
    return EXIT_OK


def _merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", type=Path, nargs="+", metavar="RUN", help="--cursus-json files, one per shard")
    parser.add_argument(
        "--output", "-o", type=Path, required=True, metavar="PATH", help="the merged --cursus-json file"
    )
    parser.add_argument("--html", type=Path, metavar="PATH", help="also write a self-contained HTML report to PATH")


def _merge(args: argparse.Namespace) -> int:
    from pytest_cursus.reporting.merged_report import merge_run_reports, report_page
    from pytest_cursus.reporting.run_report import write_run_report

    merged, warnings = merge_run_reports([(str(path), read_run_report(path)) for path in args.reports])
    for warning in warnings:
        print(f"cursus-runtime merge-reports: warning: {warning}", file=sys.stderr)
    write_run_report(merged, args.output)
    failed = [step for step in merged.steps if step.outcome in ("failed", "error")]
    print(
        f"{len(args.reports)} reports merged into {args.output}: {len(merged.steps)} steps, "
        f"{len(failed)} failed or in error"
    )
    if args.html is not None:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        title = f"pytest-cursus: {len(args.reports)} shards"
        args.html.write_text(report_page(merged, title), encoding="utf-8")
        print(f"HTML report written to {args.html}")
    return EXIT_REGRESSED if failed else EXIT_OK


COMMANDS: list[Command] = [
    Command(
        "compare",
        "compare two --cursus-json runs step by step (exit 1 when a step regressed)",
        _compare_arguments,
        _compare,
    ),
    Command("trend", "time and memory per step across several --cursus-json runs", _trend_arguments, _trend),
    Command(
        "merge-reports",
        "merge the --cursus-json files of several shards into one (exit 1 when a step failed)",
        _merge_arguments,
        _merge,
    ),
    Command(
        "health-check",
        runtime_commands.HEALTH_CHECK_HELP,
        runtime_commands.health_check_arguments,
        runtime_commands.health_check,
    ),
    Command("list", runtime_commands.LIST_HELP, runtime_commands.list_arguments, runtime_commands.list_command),
    Command("why", runtime_commands.WHY_HELP, runtime_commands.why_arguments, runtime_commands.why_command),
    Command("wire", runtime_commands.WIRE_HELP, runtime_commands.wire_arguments, runtime_commands.wire_command),
    Command("init", runtime_commands.INIT_HELP, runtime_commands.init_arguments, runtime_commands.init_command),
    Command("run", runtime_commands.RUN_HELP, runtime_commands.run_arguments, runtime_commands.run_command),
    Command("schema", SCHEMA_HELP, schema_arguments, schema_command),
]


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cursus-runtime", description="pytest-cursus outside pytest")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # `run` hands what follows `--` to pytest as it is: argparse cannot keep it apart from PATHs
    args = runtime_commands.parse_with_passthrough(build_parser(), list(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.run(args))
    except RunReportError as exc:
        print(f"cursus-runtime {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
