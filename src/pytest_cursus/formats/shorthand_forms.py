"""Shorthand forms the file loaders accept, declared so the JSON Schema (formats/json_schemas.py) shows them too.

A before-validator that rewrites a shorthand gives pydantic the type it accepts as ``json_schema_input_type``;
one validator serves one field here, since each field accepts its own type.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import field_validator


def _empty_mapping(value: Any) -> Any:
    return {} if value is None else value


def _empty_list(value: Any) -> Any:
    return [] if value is None else value


def null_as_empty_mapping(field: str, accepted: Any) -> Any:
    """A validator for ``field``: a key written with nothing under it (``steps:``) is an empty mapping."""
    return field_validator(field, mode="before", json_schema_input_type=Optional[accepted])(_empty_mapping)  # noqa: UP045


def null_as_empty_list(field: str, accepted: Any) -> Any:
    """A validator for ``field``: a key written with nothing under it is an empty list."""
    return field_validator(field, mode="before", json_schema_input_type=Optional[accepted])(_empty_list)  # noqa: UP045
