"""Where a real pipeline execution wrote each step's outputs: a URI prefix and a layout template.

    >>> execution = ExecutionSource("s3://bucket/pipelines/exec-123/")
    >>> execution.output_uri(
    ...     scenario="xgb", step="preprocess", output="processed_data", contract="TabularPreprocessing"
    ... )
    's3://bucket/pipelines/exec-123/preprocess/processed_data/'

The layout is a ``str.format`` template with the placeholders of :data:`PLACEHOLDERS`:
``{prefix}`` (the execution URI, always ending in ``/``), ``{step}`` (the step's name in the
scenario), ``{output}`` (the output's name in the contract), ``{contract}`` (the contract's
name, i.e. the ``step_type``) and ``{scenario}``. SageMaker writes a Processing step's output
to ``<prefix><StepName>/output/<output name>`` by default, hence e.g.
``{prefix}{contract}/output/{output}/``.

Caveats:
    * A rendered URI ending in ``/`` is a prefix; without it, an object of that exact key is
      taken if there is one, else everything under ``<uri>/``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

from pytest_cursus.data.s3.access import S3Access
from pytest_cursus.data.s3.errors import S3Error, S3NotFound
from pytest_cursus.data.s3.uri import S3Limits, S3Uri
from pytest_cursus.errors import DataSourceError

DEFAULT_LAYOUT = "{prefix}{step}/{output}/"
PLACEHOLDERS = ("prefix", "step", "output", "contract", "scenario")


def check_layout(layout: str) -> str:
    """Validator for the layout option and field; raises ``ValueError`` naming the problem."""
    try:
        fields = [name for _, name, spec, conversion in string.Formatter().parse(layout) if name is not None]
    except ValueError as exc:
        raise ValueError(f"layout {layout!r} is not a valid template ({exc})") from None
    unknown = [name for name in fields if name not in PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f"layout {layout!r} uses unknown placeholder {{{unknown[0]}}}; expected only "
            + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
        )
    if "output" not in fields:
        raise ValueError(f"layout {layout!r} must contain {{output}}: each output of a step needs its own location")
    rendered = _render(layout, "s3://bucket/prefix/", "scenario", "step", "output", "Contract")
    try:
        S3Uri.parse(rendered)
    except ValueError:
        raise ValueError(
            f"layout {layout!r} must give an s3:// URI (it gives {rendered!r}); start it with {{prefix}}"
        ) from None
    return layout


def normalize_prefix(uri: str) -> str:
    S3Uri.parse(uri)
    return uri if uri.endswith("/") else uri + "/"


@dataclass(frozen=True)
class ExecutionSource:
    """A pipeline execution whose step outputs feed the inputs that reference upstream steps."""

    uri: str
    layout: str = DEFAULT_LAYOUT
    limits: S3Limits = field(default_factory=S3Limits)

    def __post_init__(self) -> None:
        object.__setattr__(self, "uri", normalize_prefix(self.uri))
        check_layout(self.layout)

    def output_uri(self, *, scenario: str, step: str, output: str, contract: str) -> str:
        return _render(self.layout, self.uri, scenario, step, output, contract)


def _render(layout: str, prefix: str, scenario: str, step: str, output: str, contract: str) -> str:
    return layout.format(prefix=prefix, scenario=scenario, step=step, output=output, contract=contract)


def fetch_output(s3: S3Access, execution: ExecutionSource, target: Path, **where: str) -> Path:
    """Download one output of the execution into ``target``; ``where``: scenario, step,
    output, contract (the layout's placeholders)."""
    uri = execution.output_uri(**where)
    try:
        return s3.download(
            S3Uri.parse(uri), execution.limits, target, label=f"execution {where['step']}.{where['output']}"
        ).path
    except S3Error as exc:
        raise _output_error(execution, uri, where, exc) from None


def output_key(s3: S3Access, execution: ExecutionSource, **where: str) -> str:
    """The key of an execution output: a hash of its listing (no download)."""
    uri = execution.output_uri(**where)
    try:
        return s3.digest(S3Uri.parse(uri), execution.limits)
    except S3Error as exc:
        raise _output_error(execution, uri, where, exc) from None


def _output_error(execution: ExecutionSource, uri: str, where: dict[str, str], exc: S3Error) -> DataSourceError:
    name = f"{where['step']}.{where['output']}"
    if isinstance(exc, S3NotFound):
        return DataSourceError(
            f"execution output {name} not found at {uri} ({exc}); check the execution URI {execution.uri} "
            "(--cursus-execution or the scenario's execution:) "
            f"and the layout {execution.layout!r} (--cursus-execution-layout)"
        )
    return DataSourceError(f"execution output {name} ({uri}): {exc}")
