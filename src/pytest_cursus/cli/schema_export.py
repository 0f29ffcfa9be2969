"""``cursus-runtime schema``: print or write the JSON Schema of a file format (docs/schemas.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_cursus.formats.json_schemas import FORMATS, json_schema_text

SCHEMA_HELP = (
    "print the JSON Schema (draft 2020-12) of a scenario, contract (*.contract.yaml), step interface "
    "(*.step.yaml) or DAG file, for editors to complete and validate with"
)


def schema_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=list(FORMATS), help="which file format")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the schema to FILE, not stdout")


def schema_command(args: argparse.Namespace) -> int:
    text = json_schema_text(args.format)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"cursus-runtime schema: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{FORMATS[args.format].title} schema written to {args.output}")
    return 0
