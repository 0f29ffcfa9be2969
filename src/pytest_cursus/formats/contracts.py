"""Finding contracts on disk and presenting them as one resolved ``Contract`` type."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pytest_cursus.errors import ConfigError, ConfigErrors, CursusError, SourceLocation
from pytest_cursus.formats.contract_files import (
    ChannelSpec,
    ContractBlock,
    InterfaceSpec,
    JobArgument,
    PlainContractFile,
    StepInterfaceFile,
    drop_ecosystem_extras,
)
from pytest_cursus.formats.yaml_document import YamlDocument, did_you_mean, top_level_string

STEP_SUFFIXES = (".step.yaml", ".step.yml")
CONTRACT_SUFFIXES = (".contract.yaml", ".contract.yml")


@dataclass(frozen=True)
class Contract:
    """A script's interface, whichever file form it came from."""

    name: str
    path: Path
    block: ContractBlock
    line: int = 1
    # the ``spec:`` block of an ecosystem interface, and its ``variants:`` per job type
    spec: InterfaceSpec | None = None
    variants: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    # the file's ``contract:`` and ``spec:`` as written, for merging a variant over them
    written: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def entry_point(self) -> str | None:
        return self.block.entry_point

    @property
    def inputs(self) -> dict[str, ChannelSpec]:
        return self.block.inputs

    @property
    def outputs(self) -> dict[str, ChannelSpec]:
        return self.block.outputs

    @property
    def job_arguments(self) -> list[JobArgument]:
        return self.block.job_arguments

    @property
    def required_env(self) -> list[str]:
        return self.block.env_vars.required

    @property
    def optional_env(self) -> dict[str, str]:
        return self.block.env_vars.optional

    def fingerprint(self) -> str:
        """Stable text of everything in the contract that can change a step's outputs."""
        return self.block.model_dump_json()


def is_contract_file(path: Path) -> bool:
    return path.name.endswith(STEP_SUFFIXES + CONTRACT_SUFFIXES)


def contract_stem(path: Path) -> str:
    for suffix in STEP_SUFFIXES + CONTRACT_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def load_contract(path: Path) -> Contract:
    """Read one contract file; raises ``ConfigErrors`` naming file, line and field."""
    document = YamlDocument.load(path)
    data = document.data
    if not isinstance(data, dict):
        raise document.error((), f"expected a mapping at the top of a contract file, found {type(data).__name__}")
    try:
        if path.name.endswith(STEP_SUFFIXES):
            block = data.get("contract")
            if block is None and data.get("spec") is None:
                raise document.error((), "a *.step.yaml file needs a 'contract:' block (or a 'spec:' block)")
            model: type[BaseModel] = StepInterfaceFile
            parsed = StepInterfaceFile.model_validate({**data, "contract": drop_ecosystem_extras(block or {})})
            return Contract(
                parsed.step_type,
                path,
                parsed.contract,
                document.line_of(("contract",)) or 1,
                parsed.spec,
                parsed.variants,
                {"contract": block or {}, "spec": data.get("spec") or {}},
            )
        model = PlainContractFile
        parsed_plain = PlainContractFile.model_validate(data)
        return Contract(parsed_plain.name, path, parsed_plain, 1)
    except ValidationError as exc:
        raise document.validation_errors(exc, model=model) from None


def contract_variant(contract: Contract, job_type: str) -> Contract:
    """The contract for a DAG node of ``job_type``: its ``variants:`` entry for that job type (matched
    case-insensitively) deep-merged over ``contract:`` and ``spec:``; the contract itself when it has none."""
    variant = next((v for name, v in contract.variants.items() if name.lower() == job_type.lower()), None)
    if not variant:
        return contract
    merged = deep_merge(contract.written, variant)
    try:
        block = ContractBlock.model_validate(drop_ecosystem_extras(merged.get("contract") or {}))
        spec = InterfaceSpec.model_validate(merged.get("spec") or {}) if merged.get("spec") else None
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ConfigError(
            f"variant {job_type!r} of {contract.name} does not make a valid interface once merged: {details}",
            SourceLocation(contract.path, None, f"variants.{job_type}"),
        ) from None
    return Contract(contract.name, contract.path, block, contract.line, spec, contract.variants, merged)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``: mappings merge key by key, anything else is replaced; for the
    spec's ``dependencies:``/``outputs:`` lists, entries with the same ``logical_name`` merge."""
    merged = dict(base)
    for key, value in over.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = deep_merge(current, value)
        elif _named_entries(current) and _named_entries(value):
            by_name = {entry["logical_name"]: entry for entry in current}
            for entry in value:
                name = entry["logical_name"]
                by_name[name] = deep_merge(by_name[name], entry) if name in by_name else entry
            merged[key] = list(by_name.values())
        else:
            merged[key] = value
    return merged


def _named_entries(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) and "logical_name" in item for item in value)


@dataclass
class ContractRegistry:
    """Every contract under some directories or files, found by step_type, name or file stem."""

    contracts: list[Contract] = field(default_factory=list)
    broken: dict[Path, CursusError] = field(default_factory=dict)
    broken_names: dict[Path, str | None] = field(default_factory=dict)
    searched: tuple[Path, ...] = ()

    @classmethod
    def scan(cls, roots: Sequence[Path]) -> ContractRegistry:
        registry = cls(searched=tuple(roots))
        for path in _contract_paths(roots):
            try:
                registry.contracts.append(load_contract(path))
            except (ConfigError, ConfigErrors) as exc:
                registry.broken[path] = exc
                registry.broken_names[path] = _declared_name(path)
        return registry

    def find(self, wanted: str) -> Contract:
        named = [contract for contract in self.contracts if contract.name == wanted]
        if len(named) > 1:
            listed = ", ".join(str(contract.path) for contract in named)
            raise ContractNotFound(f"contract name {wanted!r} is declared by more than one file: {listed}; rename one")
        if named:
            return named[0]
        for contract in self.contracts:
            if contract_stem(contract.path) == wanted:
                return contract
        for path, error in self.broken.items():
            if wanted in (contract_stem(path), self.broken_names.get(path)):
                raise ContractNotFound(f"contract {wanted!r} is in {path}, which is invalid:\n{error}")
        raise ContractNotFound(self._not_found_message(wanted))

    def _not_found_message(self, wanted: str) -> str:
        names = sorted({c.name for c in self.contracts})
        where = ", ".join(str(root) for root in self.searched) or "(no contract directories given)"
        stems = [contract_stem(c.path) for c in self.contracts]
        message = f"no contract named {wanted!r}{did_you_mean(wanted, names + stems)}; searched {where}"
        if names:
            message += f"; found: {', '.join(names)}"
        else:
            message += "; found no *.step.yaml or *.contract.yaml files there"
        if self.broken:
            message += f"; could not read: {', '.join(str(p) for p in sorted(self.broken))}"
        return message + ". Add the directory with 'contracts:' in the scenario or --cursus-contracts."


class ContractNotFound(CursusError):
    pass


def _declared_name(path: Path) -> str | None:
    """The step_type or name of a contract file that failed validation, if it can be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return top_level_string(text, "step_type", "name")


def _contract_paths(roots: Iterable[Path]) -> list[Path]:
    found: set[Path] = set()
    for root in roots:
        if root.is_file():
            found.add(root)
        elif root.is_dir():
            found.update(path for path in root.rglob("*") if path.is_file() and is_contract_file(path))
    return sorted(found)
