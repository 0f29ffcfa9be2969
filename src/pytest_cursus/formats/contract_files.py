"""Pydantic models of the two contract file forms (docs/contracts.md).

``*.step.yaml`` belongs to the SageMaker-pipeline ecosystem: only ``step_type`` and ``contract:``
are read, and keys we do not know are ignored there (the ecosystem adds its own). The plugin's
own fields (the ``data:`` schemas, and all of a plain ``*.contract.yaml``) reject unknown keys.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, create_model, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from pytest_cursus.data.schema import DataSchema
from pytest_cursus.formats.shorthand_forms import null_as_empty_mapping

# What an `env:` value may be written as: a YAML scalar, which becomes the string an environment holds.
ENV_INPUT_TYPE = Optional[dict[str, Union[str, int, float, bool, None]]]  # noqa: UP007, UP045


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelSpec(_Strict):
    """One input or output channel: the container path and, optionally, its data schema."""

    path: str
    required: bool = True
    description: str | None = None
    data: DataSchema | None = None

    @model_validator(mode="before")
    @classmethod
    def _path_shorthand(cls, value: Any) -> Any:
        # The ecosystem's contracts often map a name straight to its container path.
        return {"path": value} if isinstance(value, str) else value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # the shorthand _path_shorthand accepts: the container path alone
        mapping = handler(core_schema)
        return {"anyOf": [{"type": "string", "pattern": "^/", "description": "the container path"}, mapping]}

    @field_validator("path")
    @classmethod
    def _absolute_container_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"expected an absolute container path such as /opt/ml/processing/input/data, got {path!r}")
        if ".." in path.split("/") or "\0" in path:
            raise ValueError(f"expected a container path without '..' parts or NUL, got {path!r}")
        return path.rstrip("/") or "/"


class JobArgument(_Strict):
    """A command-line flag of the script; ``--job_type`` becomes ``job_args.job_type``."""

    flag: str
    source: str | None = None
    default: Any = None
    required: bool = False
    help: str | None = None

    @field_validator("flag")
    @classmethod
    def _looks_like_flag(cls, flag: str) -> str:
        if not flag.startswith("-") or not flag.lstrip("-"):
            raise ValueError(f"expected a flag such as --job_type, got {flag!r}")
        return flag

    @property
    def attribute(self) -> str:
        """The ``argparse.Namespace`` attribute the script reads (argparse's own rule)."""
        return self.flag.lstrip("-").replace("-", "_")


class EnvVars(_Strict):
    required: list[str] = Field(default_factory=list)
    optional: dict[str, str] = Field(default_factory=dict)

    @field_validator("optional", mode="before", json_schema_input_type=ENV_INPUT_TYPE)
    @classmethod
    def _defaults_are_strings(cls, value: Any) -> Any:
        # An environment only holds strings; `TRAIN_RATIO: 0.7` in YAML means "0.7".
        return env_mapping(value)

    @field_validator("required")
    @classmethod
    def _required_names(cls, names: list[str]) -> list[str]:
        return [check_env_name(name) for name in names]


class ContractBlock(_Strict):
    """The fields of a script contract, shared by both file forms. An ecosystem interface may have
    no ``entry_point`` (a data-loading or registration step that runs no script of ours)."""

    entry_point: str | None = None
    inputs: dict[str, ChannelSpec] = Field(default_factory=dict)
    outputs: dict[str, ChannelSpec] = Field(default_factory=dict)
    arguments: dict[str, Any] = Field(default_factory=dict)
    job_arguments: list[JobArgument] = Field(default_factory=list)
    env_vars: EnvVars = Field(default_factory=EnvVars)
    framework_requirements: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    # a bring-your-own container's own command (SageMaker's AppSpecification.ContainerEntrypoint): the step
    # runs that, not an entry_point script of ours, so a contract check has nothing to check
    container_entrypoint: list[str] | None = None

    @field_validator("container_entrypoint", mode="before", json_schema_input_type=Union[str, list[str], None])  # noqa: UP007
    @classmethod
    def _command_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    _empty_inputs = null_as_empty_mapping("inputs", dict[str, ChannelSpec])
    _empty_outputs = null_as_empty_mapping("outputs", dict[str, ChannelSpec])

    @field_validator("inputs", "outputs")
    @classmethod
    def _channel_names(cls, channels: dict[str, ChannelSpec]) -> dict[str, ChannelSpec]:
        # a channel's name is its directory under the step's input/ or output/
        for name in channels:
            check_path_name("channel name", name)
        return channels

    @field_validator(
        "framework_requirements",
        mode="before",
        json_schema_input_type=dict[str, Union[str, int, float, None]],  # noqa: UP007 - a version may be a number
    )
    @classmethod
    def _requirement_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: "" if item is None else str(item) for key, item in value.items()}
        return value


class PlainContractFile(ContractBlock):
    """``*.contract.yaml``: a contract at top level, plus its ``name``."""

    name: str
    entry_point: str


def _as_entries(value: Any) -> Any:
    """The mapping form ``{logical_name: {...}}`` as the list form the ecosystem writes."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [
            {"logical_name": name, **(entry if isinstance(entry, dict) else {})}
            if entry is not None
            else {"logical_name": name}
            for name, entry in value.items()
        ]
    return value


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


class _SpecEntry(BaseModel):
    # Ecosystem files carry more keys than we read (semantic matching hints, builder settings).
    model_config = ConfigDict(extra="allow")

    logical_name: str
    aliases: list[str] = Field(default_factory=list)
    semantic_keywords: list[str] = Field(default_factory=list)
    data_type: str | None = None
    description: str | None = None

    @field_validator(
        "aliases",
        "semantic_keywords",
        mode="before",
        json_schema_input_type=Union[str, list[str], None],  # noqa: UP007
    )
    @classmethod
    def _list(cls, value: Any) -> Any:
        return _as_list(value)


class SpecDependency(_SpecEntry):
    """One dependency of a step: ``logical_name`` is its key in the contract's inputs."""

    dependency_type: str | None = None
    required: bool = True
    compatible_sources: list[str] = Field(default_factory=list)

    @field_validator("compatible_sources", mode="before", json_schema_input_type=Union[str, list[str], None])  # noqa: UP007
    @classmethod
    def _sources(cls, value: Any) -> Any:
        return _as_list(value)


class SpecOutput(_SpecEntry):
    """One output of a step: ``logical_name`` is its key in the contract's outputs."""

    output_type: str | None = None
    property_path: str | None = None


# The mapping form {logical_name: {...}} (_as_entries): an entry there may leave out logical_name, its key.
_NamedDependency = create_model(
    "SpecDependencyByName",
    __base__=SpecDependency,
    logical_name=(Optional[str], None),  # noqa: UP045
)
_NamedOutput = create_model("SpecOutputByName", __base__=SpecOutput, logical_name=(Optional[str], None))  # noqa: UP045


class InterfaceSpec(BaseModel):
    """The ``spec:`` block of a ``*.step.yaml``: what the DAG wiring reads (docs/dag.md)."""

    model_config = ConfigDict(extra="allow")

    step_type: str | None = None
    node_type: str | None = None
    dependencies: list[SpecDependency] = Field(default_factory=list)
    outputs: list[SpecOutput] = Field(default_factory=list)

    @field_validator(
        "dependencies",
        mode="before",
        json_schema_input_type=Union[list[SpecDependency], dict[str, Optional[_NamedDependency]], None],  # type: ignore[valid-type]  # noqa: UP007, UP045, E501
    )
    @classmethod
    def _dependency_entries(cls, value: Any) -> Any:
        return _as_entries(value)

    @field_validator(
        "outputs",
        mode="before",
        json_schema_input_type=Union[list[SpecOutput], dict[str, Optional[_NamedOutput]], None],  # type: ignore[valid-type]  # noqa: UP007, UP045
    )
    @classmethod
    def _output_entries(cls, value: Any) -> Any:
        return _as_entries(value)

    @field_validator("dependencies", "outputs")
    @classmethod
    def _unique(cls, entries: list[Any]) -> list[Any]:
        names = [entry.logical_name for entry in entries]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"each logical_name may appear once; repeated: {', '.join(repeated)}")
        return entries


class StepInterfaceFile(BaseModel):
    """``*.step.yaml``: ``step_type``, the ``contract:`` block, the ``spec:`` block and per-job-type
    ``variants:`` (deep-merged over ``contract:`` and ``spec:`` for a DAG node of that job type)."""

    model_config = ConfigDict(extra="ignore")

    step_type: str
    contract: ContractBlock = Field(default_factory=ContractBlock)
    spec: InterfaceSpec | None = None
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)

    _empty_contract = null_as_empty_mapping("contract", ContractBlock)
    _empty_variants = null_as_empty_mapping("variants", dict[str, dict[str, Any]])


# The models of a *.step.yaml's contract block whose unknown keys drop_ecosystem_extras drops rather than rejects
# (the JSON Schema of a step file lets them through there: formats/json_schemas.py).
ECOSYSTEM_LENIENT_MODELS: tuple[type[BaseModel], ...] = (ContractBlock, ChannelSpec, JobArgument, EnvVars)
# Keys of the ecosystem's contract block we read; others are dropped before strict validation.
_ECOSYSTEM_CHANNEL_KEYS = {"path", "required", "description", "data"}
_ECOSYSTEM_JOB_ARGUMENT_KEYS = set(JobArgument.model_fields)
_ECOSYSTEM_ENV_KEYS = set(EnvVars.model_fields)


def drop_ecosystem_extras(block: Any) -> Any:
    """Remove keys the ecosystem may add to a ``contract:`` block, keeping ``data:`` strict."""
    if not isinstance(block, dict):
        return block
    kept = {key: value for key, value in block.items() if key in ContractBlock.model_fields}
    for channels in ("inputs", "outputs"):
        if isinstance(kept.get(channels), dict):
            kept[channels] = {
                name: {k: v for k, v in spec.items() if k in _ECOSYSTEM_CHANNEL_KEYS}
                if isinstance(spec, dict)
                else spec
                for name, spec in kept[channels].items()
            }
    if isinstance(kept.get("job_arguments"), list):
        kept["job_arguments"] = [
            {k: v for k, v in item.items() if k in _ECOSYSTEM_JOB_ARGUMENT_KEYS} if isinstance(item, dict) else item
            for item in kept["job_arguments"]
        ]
    if isinstance(kept.get("env_vars"), dict):
        kept["env_vars"] = {k: v for k, v in kept["env_vars"].items() if k in _ECOSYSTEM_ENV_KEYS}
    return kept


def env_string(value: Any, name: str = "") -> str:
    """How a YAML scalar reads once it is in an environment variable; anything else is an error
    (``str()`` of a list is no value a script could mean)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is not None and not isinstance(value, (str, int, float)):
        raise ValueError(
            f"env {name}: expected a string, number or true/false, found a {type(value).__name__}; "
            "an environment variable holds one string (write a list as one string, e.g. JSON in quotes)"
        )
    text = "" if value is None else str(value)
    if "\0" in text:
        raise ValueError(f"env {name}: the value contains a NUL character, which no environment variable can hold")
    return text


def env_mapping(value: Any) -> Any:
    """An ``env:`` mapping with checked names and scalar values as strings."""
    if isinstance(value, dict):
        return {check_env_name(str(key)): env_string(item, str(key)) for key, item in value.items()}
    return value


def check_env_name(name: str) -> str:
    """An environment variable name as the OS takes it: not empty, no '=' nor NUL."""
    if not name or "=" in name or "\0" in name:
        raise ValueError(
            f"env name {name!r} is not a valid environment variable name: it must be non-empty and contain "
            "neither '=' nor a NUL character (e.g. DATA_DIR)"
        )
    return name


def check_path_name(kind: str, name: str) -> str:
    """A name the plugin turns into one directory or file name: one path part, never outside its parent."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(
            f"{kind} {name!r} becomes a file or directory name in the workspace: it must be one path part, "
            "not empty, '.' or '..', without '/', '\\' or NUL (e.g. processed_data)"
        )
    return name
