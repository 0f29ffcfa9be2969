"""Pydantic model of a scenario file (docs/scenarios.md): the single source of truth for its fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ModelWrapValidatorHandler,
    PositiveFloat,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from pytest_cursus.data.execution_outputs import check_layout
from pytest_cursus.data.s3.uri import check_s3_uri
from pytest_cursus.data.schema import SyntheticSpec
from pytest_cursus.formats.contract_files import ENV_INPUT_TYPE, check_env_name, check_path_name, env_mapping
from pytest_cursus.formats.shorthand_forms import null_as_empty_mapping

# Step and data-source names appear in `<step>.<output>` references, pytest node ids and
# workspace directories (where `_data` holds materialised sources: hence a letter first).
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# A DAG scenario feeds the outputs of nodes that run no script from `data:` entries `<Node>.<output>`.
NODE_OUTPUT_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_name(kind: str, name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"{kind} name {name!r} must start with a letter and contain only letters, digits, '_' and '-'")


class S3Location(_Strict):
    """An ``s3:`` variant written as a mapping: a URI and how much of it to take (docs/s3.md)."""

    uri: str
    max_files: int | None = Field(default=None, ge=1)
    max_bytes: int | None = Field(default=None, ge=1)
    sample_rows: int | None = Field(default=None, ge=1)

    @field_validator("uri")
    @classmethod
    def _s3_uri(cls, value: str) -> str:
        return check_s3_uri(value)


class ExecutionLocation(S3Location):
    """``execution:`` written as a mapping: where a pipeline execution wrote its step outputs,
    the layout of the output URIs, and limits applied to each output (docs/s3.md)."""

    layout: str | None = None

    @field_validator("layout")
    @classmethod
    def _layout(cls, value: str | None) -> str | None:
        return None if value is None else check_layout(value)


VARIANTS = ("synthetic", "local", "s3")


class CustomSource(BaseModel):
    """``custom:``: data of a kind a plugin provides (hook ``pytest_cursus_data_source``,
    docs/hooks.md); every key but ``kind`` is passed to the hook as it is written."""

    model_config = ConfigDict(extra="allow")

    kind: str

    @field_validator("kind")
    @classmethod
    def _kind_name(cls, kind: str) -> str:
        _check_name("custom data source kind", kind)
        return kind

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DataSource(_Strict):
    """A named root data source: variants (synthetic/local/s3) or one fixed file, text or custom kind."""

    synthetic: SyntheticSpec | None = None
    local: str | None = None
    s3: S3Location | None = None
    file: str | None = None
    text: str | None = None
    filename: str | None = Field(default=None, description="file name used for `text:` content")
    custom: CustomSource | None = None

    @field_validator("s3", mode="before", json_schema_input_type=Union[str, S3Location, None])  # noqa: UP007
    @classmethod
    def _s3_uri(cls, value: Any) -> Any:
        # the URI form is the mapping form without limits (one type: errors name only its fields)
        return {"uri": check_s3_uri(value)} if isinstance(value, str) else value

    @field_validator("filename")
    @classmethod
    def _plain_filename(cls, filename: str | None) -> str | None:
        return None if filename is None else check_path_name("filename", filename)

    @model_validator(mode="after")
    def _one_kind(self) -> DataSource:
        fixed = [kind for kind in ("file", "text", "custom") if getattr(self, kind) is not None]
        variants = [kind for kind in VARIANTS if getattr(self, kind) is not None]
        if fixed and variants:
            raise ValueError(
                f"'{fixed[0]}' cannot be combined with {', '.join(variants)}: "
                "a file, text or custom source has one form only"
            )
        if len(fixed) > 1:
            raise ValueError(f"give one of 'file', 'text' or 'custom', not {' and '.join(fixed)}")
        if not fixed and not variants:
            raise ValueError("expected one of synthetic, local, s3, file, text or custom")
        if self.filename is not None and self.text is None:
            raise ValueError("'filename' only applies to a 'text' source")
        return self

    @property
    def variants(self) -> list[str]:
        return [kind for kind in (*VARIANTS, "file", "text", "custom") if getattr(self, kind) is not None]

    def file_of(self, variant: str) -> str | None:
        """The path, relative to the scenario file, that ``variant`` reads (``file:``, ``local:``);
        None for a variant that names no file of the user's."""
        return {"file": self.file, "local": self.local}.get(variant)


Number = Union[StrictInt, StrictFloat]  # noqa: UP007 - strict: `min: "0.7"` is an error, not a coercion


class ValueCheck(_Strict):
    """``values:`` check of one key of a JSON output file: bounds for a number, or the value it equals."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})  # _something_checked

    min: Number | None = Field(default=None, description="the value is a number at least this")
    max: Number | None = Field(default=None, description="the value is a number at most this")
    equals: Any = Field(default=None, description="the value equals this (a number, string, list, mapping or null)")

    @model_validator(mode="after")
    def _something_checked(self) -> ValueCheck:
        if not self.model_fields_set & {"min", "max", "equals"}:
            raise ValueError("expected at least one of min, max or equals, found none")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"expected min <= max, found min={self.min}, max={self.max}")
        return self

    @property
    def checks_equality(self) -> bool:
        # `equals: null` is a check too, so whether the key was written decides
        return "equals" in self.model_fields_set


class OutputExpectation(_Strict):
    """``expect:`` checks on one output after the step ran."""

    files: list[str] = Field(default_factory=list)
    min_rows: int | None = Field(default=None, ge=0)
    max_rows: int | None = Field(default=None, ge=0)
    columns: list[str] = Field(default_factory=list)
    values: dict[str, dict[str, ValueCheck]] = Field(
        default_factory=dict,
        description="JSON file inside the output -> dotted key path (metrics.auc) -> min/max/equals",
    )
    rows: list[str] = Field(
        default_factory=list,
        description="pandas expressions (DataFrame.eval) every row of the output's tables satisfies",
    )

    @field_validator("files", "columns", "rows", mode="before", json_schema_input_type=Union[str, list[str]])  # noqa: UP007
    @classmethod
    def _single_to_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("values")
    @classmethod
    def _value_paths(cls, values: dict[str, dict[str, ValueCheck]]) -> dict[str, dict[str, ValueCheck]]:
        for file, keys in values.items():
            if _relative_file(file) is None or not keys:
                raise ValueError(f"values.{file}: expected at least one key to check, found none")
            for key in keys:
                if not key or any(not part for part in key.split(".")):
                    raise ValueError(
                        f"values.{file}: expected a dotted key path such as metrics.auc, found {key!r} (an empty part)"
                    )
        return values

    @field_validator("rows")
    @classmethod
    def _row_expressions(cls, rows: list[str]) -> list[str]:
        for expression in rows:
            check_row_expression(expression)
        return rows


def check_row_expression(expression: str) -> str:
    """A ``rows:`` expression pandas evaluates on its own terms: one line, naming columns, without the
    ``@`` of Python variables, assignments or dunder attributes (the ways out of its evaluator)."""
    problem = None
    if not expression.strip():
        problem = "it is empty"
    elif "\n" in expression.strip():
        problem = "it spans several lines (pandas would take each line as an assignment)"
    elif "@" in expression:
        problem = "'@' refers to Python variables, and a scenario has none"
    elif "__" in expression:
        problem = "'__' (a dunder attribute) reaches past the columns"
    elif re.search(r"(?<![=!<>])=(?!=)", expression):
        problem = "'=' assigns a column; compare with '=='"
    if problem is not None:
        raise ValueError(f"rows: expected a pandas expression such as 'amount >= 0', found {expression!r}: {problem}")
    return expression


def _relative_file(value: str | None) -> str | None:
    """A ``file:`` inside a channel's directory: relative, and never above it."""
    if value is None:
        return None
    parts = PurePosixPath(value).parts
    if not value.strip() or value.startswith("/") or ".." in parts:
        raise ValueError("expected a path relative to the channel's directory, without '..'")
    return value


class OutputChannel(_Strict):
    """An output written as a mapping: how the script sees the contract's channel
    (docs/scenarios.md#channels-a-script-names-differently)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    key: str | None = Field(default=None, alias="as", min_length=1, description="the key in output_paths")
    file: str | None = Field(default=None, description="a file inside the channel's directory, given as its path")

    @field_validator("file")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        return _relative_file(value)


class InputChannel(OutputChannel):
    """An input written as a mapping: where its data comes from (``from:``, as the short form
    ``<source>`` or ``<step>.<output>``) and how the script sees it. Without ``from:`` the channel is
    not wired by this entry (a DAG node's wiring, or an optional input left unmounted)."""

    source: str | None = Field(default=None, alias="from", min_length=1)
    _short: bool = PrivateAttr(default=False)  # written as a plain `<source>` or `<step>.<output>`

    @model_validator(mode="wrap")
    @classmethod
    def _short_form(cls, value: Any, handler: ModelWrapValidatorHandler[InputChannel]) -> InputChannel:
        if not isinstance(value, str):
            return handler(value)
        channel = handler({"from": value})
        channel._short = True
        return channel

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # the short form `<source>` or `<step>.<output>` is an input too (what _short_form accepts)
        mapping = handler(core_schema)
        return {"anyOf": [{"type": "string", "minLength": 1, "description": "<source> or <step>.<output>"}, mapping]}

    @property
    def short(self) -> bool:
        """Whether the YAML holds the reference itself (errors then point at the input, not ``from:``)."""
        return self._short


class SecretsBlock(_Strict):
    """``secrets:`` of a step or of ``defaults:``: env var names whose values are secret although the
    name rule misses them (``mask``), and names it takes for secrets that are not (``exempt``);
    docs/scenarios.md#secrets."""

    mask: list[str] = Field(default_factory=list)
    exempt: list[str] = Field(default_factory=list)

    @field_validator("mask", "exempt", mode="before", json_schema_input_type=Union[str, list[str], None])  # noqa: UP007
    @classmethod
    def _single_to_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @field_validator("mask", "exempt")
    @classmethod
    def _env_names(cls, names: list[str]) -> list[str]:
        return [check_env_name(name) for name in names]

    @model_validator(mode="after")
    def _mask_or_exempt(self) -> SecretsBlock:
        both = sorted(set(self.mask) & set(self.exempt))
        if both:
            raise ValueError(
                f"expected each name under one of mask and exempt, but {', '.join(both)} "
                f"{'is' if len(both) == 1 else 'are'} under both"
            )
        return self


class StepDefaults(_Strict):
    timeout: PositiveFloat | None = None
    max_memory_mb: PositiveFloat | None = None
    # a write into a step's own copy of an input fails it (default: allowed and noted, as in a container)
    inputs_read_only: bool | None = None
    env: dict[str, str] = Field(default_factory=dict)
    secrets: SecretsBlock = Field(default_factory=SecretsBlock)

    @field_validator("env", mode="before", json_schema_input_type=ENV_INPUT_TYPE)
    @classmethod
    def _env_strings(cls, value: Any) -> Any:
        return env_mapping(value)

    _empty_secrets = null_as_empty_mapping("secrets", SecretsBlock)


class FuzzInputEdges(_Strict):
    """``fuzz: {inputs: {DATA: {...}}}``: which edge cases the fuzzer forces on one input.

    Turning one off lets the fuzzer get past a bug it already found to the next one.
    """

    min_rows: int = Field(default=0, ge=0, description="rows per generated table, at least (0: the empty frame)")
    nulls: bool = Field(default=True, description="false: no nulls at all (no all-null column, no nan)")
    single_value: bool = Field(default=True, description="false: no column holding one value in every row")
    special_floats: bool = Field(default=True, description="false: no inf, -inf, +-1e308, subnormals or -0.0")


class FuzzSettings(_Strict):
    """A step's ``fuzz:`` block: run it on generated datasets (see docs/modes.md)."""

    examples: int = Field(default=50, ge=1, description="datasets to try (--cursus-fuzz N overrides)")
    inputs: list[str] | dict[str, FuzzInputEdges] | None = Field(
        default=None,
        description="inputs to generate (a list, or a mapping to each input's edge cases); default: every input "
        "with a schema",
    )
    max_rows: int = Field(default=20, ge=0, le=10_000, description="rows per generated table, at most")
    seed: int | None = Field(
        default=None, ge=0, description="the random seed: the same datasets every run (--cursus-fuzz-seed N overrides)"
    )

    @field_validator(
        "inputs",
        mode="before",
        json_schema_input_type=Union[str, list[str], dict[str, Union[FuzzInputEdges, None]], None],  # noqa: UP007
    )
    @classmethod
    def _single_to_list(cls, value: Any) -> Any:
        if isinstance(value, dict):  # `DATA:` with nothing under it: the default edge cases
            return {name: {} if edges is None else edges for name, edges in value.items()}
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_min_rows(self) -> FuzzSettings:
        for name, edges in self.edges().items():
            if edges.min_rows > self.max_rows:
                raise ValueError(
                    f"Expected inputs.{name}.min_rows <= max_rows but got min_rows={edges.min_rows}, "
                    f"max_rows={self.max_rows}"
                )
        return self

    def edges(self) -> dict[str, FuzzInputEdges]:
        """The edge-case settings of the inputs the block configures (the others take the defaults)."""
        return dict(self.inputs) if isinstance(self.inputs, dict) else {}


MARK_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# marks a step item cannot carry: they act on test functions' arguments and fixtures, which a step has none of
UNUSABLE_MARKS = ("parametrize", "usefixtures")


class XfailArguments(_Strict):
    """``{xfail: {...}}``: pytest's ``xfail`` keywords that a YAML file can give."""

    reason: str = ""
    strict: bool | None = Field(default=None, description="an unexpected pass fails (default: the xfail_strict ini)")
    run: bool = Field(default=True, description="false: do not run the step at all")


class SkipMark(_Strict):
    skip: str | None = Field(description="why the step is skipped")


class XfailMark(_Strict):
    xfail: str | XfailArguments | None = Field(description="the reason, or reason/strict/run")


MarkName = Annotated[str, Field(pattern=MARK_NAME_PATTERN.pattern)]
# any other mark: `{name: arguments}`; a list is its positional arguments, a mapping its keywords, else one argument
OtherMark = Annotated[
    dict[str, Any],
    Field(
        min_length=1,
        max_length=1,
        json_schema_extra={"propertyNames": {"pattern": MARK_NAME_PATTERN.pattern, "not": {"enum": ["skip", "xfail"]}}},
    ),
]
MarkEntry = Union[MarkName, SkipMark, XfailMark, OtherMark]  # noqa: UP007


@dataclass(frozen=True)
class StepMark:
    """A ``marks:`` entry as pytest's mark arguments (the plugin layer makes the pytest mark)."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def step_mark(entry: MarkEntry) -> StepMark:
    if isinstance(entry, str):
        return StepMark(entry)
    if isinstance(entry, SkipMark):
        return StepMark("skip", kwargs={} if entry.skip is None else {"reason": entry.skip})
    if isinstance(entry, XfailMark):
        if isinstance(entry.xfail, XfailArguments):
            return StepMark("xfail", kwargs=entry.xfail.model_dump(exclude_defaults=True))
        return StepMark("xfail", kwargs={} if entry.xfail is None else {"reason": entry.xfail})
    ((name, arguments),) = entry.items()
    if isinstance(arguments, list):
        return StepMark(name, tuple(arguments))
    if isinstance(arguments, dict):
        return StepMark(name, kwargs=dict(arguments))
    return StepMark(name, () if arguments is None else (arguments,))


class StepEntry(_Strict):
    contract: str
    script: str | None = None
    description: str | None = None
    job_args: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    secrets: SecretsBlock = Field(default_factory=SecretsBlock)
    inputs: dict[str, InputChannel] = Field(default_factory=dict)
    outputs: dict[str, OutputChannel] = Field(default_factory=dict)
    timeout: PositiveFloat | None = None
    max_memory_mb: PositiveFloat | None = None
    inputs_read_only: bool | None = None
    expect: dict[str, OutputExpectation] = Field(default_factory=dict)
    fuzz: FuzzSettings | None = None
    marks: list[MarkEntry] = Field(
        default_factory=list,
        description="pytest marks of the step's items: a name (slow), {skip: reason}, {xfail: reason or "
        "{reason, strict, run}} or {mark: arguments}",
    )

    @field_validator("env", mode="before", json_schema_input_type=ENV_INPUT_TYPE)
    @classmethod
    def _env_strings(cls, value: Any) -> Any:
        return env_mapping(value)

    @field_validator("fuzz", mode="before", json_schema_input_type=Union[Literal[True], FuzzSettings, None])  # noqa: UP007
    @classmethod
    def _fuzz_defaults(cls, value: Any) -> Any:
        # `fuzz: true` or an empty `fuzz:` means the defaults
        return {} if value is True or value is None else value

    _empty_job_args = null_as_empty_mapping("job_args", dict[str, Any])
    _empty_inputs = null_as_empty_mapping("inputs", dict[str, InputChannel])
    _empty_outputs = null_as_empty_mapping("outputs", dict[str, OutputChannel])
    _empty_expect = null_as_empty_mapping("expect", dict[str, OutputExpectation])
    _empty_secrets = null_as_empty_mapping("secrets", SecretsBlock)

    @field_validator("marks", mode="before", json_schema_input_type=Union[MarkEntry, list[MarkEntry], None])  # noqa: UP007
    @classmethod
    def _mark_entries(cls, value: Any) -> Any:
        if value is None:
            return []
        entries = [value] if isinstance(value, (str, dict)) else value
        if isinstance(entries, list):
            for entry in entries:
                _check_mark_entry(entry)
        return entries

    @property
    def step_marks(self) -> list[StepMark]:
        return [step_mark(entry) for entry in self.marks]

    @property
    def input_references(self) -> dict[str, str]:
        """Input name -> ``<source>`` or ``<step>.<output>``, for the inputs this entry wires."""
        return {name: channel.source for name, channel in self.inputs.items() if channel.source is not None}


def _check_mark_entry(entry: Any) -> None:
    """The name and shape of one ``marks:`` entry; which marks exist is pytest's to say (--strict-markers)."""
    if isinstance(entry, dict):
        if len(entry) != 1:
            raise ValueError(
                f"expected a mark as a name or a mapping of one mark name to its arguments "
                f"({{skip: reason}}), found a mapping of {len(entry)} keys: {', '.join(map(str, entry)) or 'none'}"
            )
        name = next(iter(entry))
    elif isinstance(entry, str):
        name = entry
    else:
        return  # the type error is pydantic's to report
    if not isinstance(name, str) or not MARK_NAME_PATTERN.match(name):
        raise ValueError(f"expected a mark name such as slow (letters, digits, '_'), found {name!r}")
    if name in UNUSABLE_MARKS:
        raise ValueError(f"mark {name!r} acts on a test function's arguments or fixtures, which a step has none of")
    if isinstance(entry, dict):
        # skip and xfail have their own grammar: never the any-mark mapping when they break it
        model = {"skip": SkipMark, "xfail": XfailMark}.get(name)
        if model is not None:
            try:
                model.model_validate(entry)
            except ValidationError as exc:
                details = "; ".join(
                    f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors(include_url=False)
                )
                raise ValueError(f"mark {name!r}: {details}") from None


class NodeEntry(StepEntry):
    """``nodes: {<Node>: ...}`` of a DAG scenario: the grammar of a step, every key optional;
    ``contract:`` names the interface when the node name does not resolve to the right one."""

    contract: str | None = None  # type: ignore[assignment]


class ScenarioFile(_Strict):
    scenario: str | None = None
    description: str | None = None
    contracts: list[str] = Field(default_factory=list)
    scripts: list[str] = Field(default_factory=list)
    python_path: list[str] = Field(default_factory=list)
    defaults: StepDefaults = Field(default_factory=StepDefaults)
    data: dict[str, DataSource] = Field(default_factory=dict)
    execution: ExecutionLocation | None = None
    dag: str | None = Field(default=None, description="a pipeline DAG file, relative to the scenario file")
    nodes: dict[str, NodeEntry] = Field(default_factory=dict)
    steps: dict[str, StepEntry] = Field(default_factory=dict)

    @field_validator("execution", mode="before", json_schema_input_type=Union[str, ExecutionLocation, None])  # noqa: UP007
    @classmethod
    def _execution_uri(cls, value: Any) -> Any:
        return {"uri": check_s3_uri(value)} if isinstance(value, str) else value

    @field_validator(
        "contracts",
        "scripts",
        "python_path",
        mode="before",
        json_schema_input_type=Union[str, list[str], None],  # noqa: UP007
    )
    @classmethod
    def _single_to_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    _empty_data = null_as_empty_mapping("data", dict[str, DataSource])
    _empty_nodes = null_as_empty_mapping("nodes", dict[str, NodeEntry])
    _empty_steps = null_as_empty_mapping("steps", dict[str, StepEntry])

    @field_validator("steps", "nodes")
    @classmethod
    def _step_names(cls, steps: dict[str, Any]) -> dict[str, Any]:
        for name in steps:
            _check_name("step", name)
        return steps

    @field_validator("data")
    @classmethod
    def _source_names(cls, data: dict[str, DataSource]) -> dict[str, DataSource]:
        for name in data:
            if not NODE_OUTPUT_PATTERN.match(name):
                _check_name("data source", name)
        return data

    @model_validator(mode="after")
    def _steps_or_dag(self) -> ScenarioFile:
        if not self.steps and self.dag is None:
            raise ValueError("expected at least one step under 'steps:', or a pipeline DAG file under 'dag:'")
        if self.nodes and self.dag is None:
            raise ValueError("'nodes:' sets the nodes of a pipeline DAG: add 'dag: <file>' or use 'steps:'")
        return self

    @field_validator("scenario")
    @classmethod
    def _scenario_name(cls, name: str | None) -> str | None:
        if name is not None:
            _check_name("scenario", name)
        return name
