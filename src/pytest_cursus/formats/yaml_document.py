"""YAML loading that remembers the line of every key, so errors can point at it.

The document is composed once into a node tree; values come from the same nodes with
``yaml.SafeLoader`` semantics (scenario and contract files mean what ``yaml.safe_load`` makes of
them: docs/contracts.md). Lines are looked up in the node tree when asked for: most documents are
asked for a few, not for every key.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pytest_cursus.errors import ConfigError, ConfigErrors, SourceLocation

FieldPath = tuple[str | int, ...]
# libyaml's loader is ~7x faster than the pure-Python one (collection of hundreds of scenarios),
# with the same safe_load semantics and node marks; PyYAML built without libyaml falls back.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Values a document may hold once its aliases are expanded: an alias repeats the node it names,
# so ten nested levels of ten aliases ("billion laughs") make 10^10 values from 100 lines, which
# a hash of job_args or str() of an env value would then walk for hours. Real files hold thousands.
MAX_EXPANDED_VALUES = 1_000_000
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass
class YamlDocument:
    """A parsed YAML file: its data, and the node tree that knows the line of every mapping
    key and sequence item."""

    path: Path
    # Not in the repr: pytest shows the arguments of every frame of a failing test's traceback,
    # and a node's repr (or the data's) walks what the aliases repeat, up to the bound below.
    data: Any = field(repr=False)
    root: yaml.Node | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path) -> YamlDocument:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read file: {exc}", SourceLocation(path)) from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: Path) -> YamlDocument:
        try:
            node, data = _compose_and_construct(_SAFE_LOADER, text, path)
        except yaml.MarkedYAMLError as exc:
            raise _syntax_error(exc, text, path) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML: {exc}", SourceLocation(path)) from None
        return cls(path=path, data=data, root=node)

    def line_of(self, at: Sequence[str | int]) -> int | None:
        """The line of the deepest known prefix of ``at`` (pydantic locations can go deeper):
        of the key for a mapping entry, of the item for a sequence entry."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in at:
            if isinstance(node, yaml.MappingNode):
                # the last of duplicate keys, as the loaded data has its value
                found = next(((k, v) for k, v in reversed(node.value) if k.value == part), None)
                if found is None:
                    break
                line, node = found[0].start_mark.line + 1, found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def error(self, at: Sequence[str | int], message: str) -> ConfigError:
        return ConfigError(message, SourceLocation(self.path, self.line_of(at), dotted(at)))

    def validation_errors(
        self, exc: ValidationError, *, model: type[BaseModel] | None = None, under: FieldPath = ()
    ) -> ConfigErrors:
        """Turn a pydantic error into one line per problem, pointing at the YAML line."""
        errors = []
        for detail in exc.errors(include_url=False):
            loc = _clean_loc(detail["loc"])
            known = _fields_at(model, loc[:-1]) if model is not None else ()
            errors.append(self.error((*under, *loc), _describe(dict(detail), loc, known)))
        return ConfigErrors(errors)


def _compose_and_construct(loader_class: type[yaml.SafeLoader], text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        too_large = _expansion_error(node, path) if node is not None else None
        if too_large is not None:
            # raised here, not in a frame that takes the node tree as an argument: a traceback
            # shown with its frames' arguments (pytest's) would repr the tree, aliases expanded
            raise too_large
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, path: Path) -> ConfigError:
    """The line, column and offending character of a YAML syntax error.

    libyaml's messages leave the character out ("found character that cannot start any token"), so
    the text is parsed again with the pure-Python loader, whose message names it ('\\t'); a file
    is parsed this slowly only when it is broken."""
    if _SAFE_LOADER is not yaml.SafeLoader:
        try:
            _compose_and_construct(yaml.SafeLoader, text, path)
        except yaml.MarkedYAMLError as pure:
            exc = pure
        except (yaml.YAMLError, ConfigError):
            pass  # the two loaders disagree: libyaml's error stands
    mark = exc.problem_mark or exc.context_mark
    problem = " ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
    if mark is None:
        return ConfigError(f"invalid YAML: {problem}", SourceLocation(path))
    if "'\\t'" in problem:
        problem += "; YAML indents with spaces, not tabs"
    return ConfigError(f"invalid YAML at column {mark.column + 1}: {problem}", SourceLocation(path, mark.line + 1))


def _expansion_error(root: yaml.Node, path: Path) -> ConfigError | None:
    """The error for a document whose aliases expand it beyond :data:`MAX_EXPANDED_VALUES`, naming
    the line of the innermost value that is too large once expanded; None when it is within."""
    sizes: dict[int, int] = {}  # id(node) -> values under it, aliases expanded (an alias is the same node)

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a recursive alias (&a [*a]) counts once instead of looping
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        sizes[id(node)] = min(total, MAX_EXPANDED_VALUES + 1)
        return sizes[id(node)]

    try:
        if size(root) <= MAX_EXPANDED_VALUES:
            return None
    except RecursionError:
        return ConfigError("invalid YAML: nested too deeply", SourceLocation(path))
    node = root
    while True:  # down to the innermost node that is too large by itself
        children = node.value if isinstance(node, yaml.SequenceNode) else []
        if isinstance(node, yaml.MappingNode):
            children = [value for _, value in node.value]
        larger = next((child for child in children if sizes[id(child)] > MAX_EXPANDED_VALUES), None)
        if larger is None:
            break
        node = larger
    return ConfigError(
        f"the document expands to more than {MAX_EXPANDED_VALUES:,} values once its aliases (*name) are "
        "resolved, here: a scenario or contract file is bounded to that (is this an alias bomb?); "
        "write the values out, or use fewer nested aliases",
        SourceLocation(path, node.start_mark.line + 1),
    )


def top_level_string(text: str, *keys: str) -> str | None:
    """The value of the first of ``keys`` that the document's top-level mapping holds as a non-empty
    string. Read from the node tree, never constructed: no alias is expanded, so a document refused
    for its expanded size can still be named by it."""
    values = top_level_nodes(text) or {}
    for key in keys:
        value = values.get(key)
        if isinstance(value, yaml.ScalarNode) and value.tag == _STR_TAG and value.value:
            return str(value.value)
    return None


def top_level_nodes(text: str) -> dict[str, yaml.Node] | None:
    """The values of the document's top-level mapping by key, as nodes: composed, never constructed, so
    no alias is expanded. None when the text is not YAML or not a mapping."""
    try:
        root = yaml.compose(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    # the last of duplicate keys, as the loaded data has its value
    return {key.value: value for key, value in root.value if isinstance(key, yaml.ScalarNode) and key.tag == _STR_TAG}


def dotted(at: Sequence[str | int]) -> str:
    text = ""
    for part in at:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    options = list(choices)
    same_but_case = [choice for choice in options if choice.lower() == word.lower()]
    match = same_but_case or difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _clean_loc(loc: tuple[Any, ...]) -> FieldPath:
    # pydantic adds union/validator tags such as 'function-after[...]' that are not YAML keys
    return tuple(part for part in loc if not (isinstance(part, str) and ("[" in part and part.endswith("]"))))


def _fields_at(model: type[BaseModel], loc: FieldPath) -> tuple[str, ...]:
    """Field names of the model found by walking ``loc`` through fields, dicts and lists."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(str(part))
            if field_info is None:
                return ()
            current = field_info.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is list:
            current = typing.get_args(current)[0]
        else:
            return ()
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return tuple(current.model_fields)
    return ()


def _unwrap(annotation: Any) -> Any:
    # `X | None` and similar unions: the model, dict or list member is the one keys live under
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            if (isinstance(member, type) and issubclass(member, BaseModel)) or typing.get_origin(member) in (
                dict,
                list,
            ):
                return member
    return annotation


def _describe(detail: dict[str, Any], loc: FieldPath, known: Iterable[str]) -> str:
    kind = detail["type"]
    found = detail.get("input")
    if kind == "extra_forbidden":
        expected = f"; expected one of: {', '.join(known)}" if known else ""
        return f"unknown field{did_you_mean(str(loc[-1]), known)}{expected}"
    if kind == "missing":
        return "required field is missing"
    message = detail["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if isinstance(found, (dict, list)) or found is None:
        return message
    return f"{message}; found {found!r} (type {type(found).__name__})"
