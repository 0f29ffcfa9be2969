"""Comparing found column types with a contract's declared data schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_cursus.data.compatibility import compare_to_schema
from pytest_cursus.data.schema import ColumnSpec, DataSchema, SyntheticSpec
from pytest_cursus.data.synthetic import write_synthetic
from pytest_cursus.data.tabular import read_columns


def schema(**columns: dict[str, object]) -> dict[str, ColumnSpec]:
    return {name: ColumnSpec.model_validate(column) for name, column in columns.items()}


def test_matching_columns_have_no_differences() -> None:
    assert compare_to_schema(schema(id={"type": "int"}, note={"type": "string"}), {"id": "int", "note": "string"}) == []


def test_missing_column_is_reported_with_its_expected_type() -> None:
    assert compare_to_schema(schema(label={"type": "bool"}), {}) == ["missing column 'label' (expected bool)"]


def test_type_mismatch_shows_expected_and_found() -> None:
    found = {"amount": "string"}
    assert compare_to_schema(schema(amount={"type": "float"}), found) == [
        "column 'amount': expected float, found string"
    ]


def test_extra_columns_are_fine() -> None:
    assert compare_to_schema(schema(id={"type": "int"}), {"id": "int", "extra": "string"}) == []


def test_differences_follow_the_schema_order() -> None:
    declared = schema(b={"type": "int"}, a={"type": "int"})
    assert compare_to_schema(declared, {}) == ["missing column 'b' (expected int)", "missing column 'a' (expected int)"]


def test_whole_number_floats_read_as_ints_are_fine() -> None:
    assert compare_to_schema(schema(amount={"type": "float"}), {"amount": "int"}) == []


@pytest.mark.parametrize(("nulls", "compatible"), [(0.0, False), (0.1, True)])
def test_ints_read_as_floats_only_when_nulls_are_allowed(nulls: float, compatible: bool) -> None:
    differences = compare_to_schema(schema(n={"type": "int", "nulls": nulls}), {"n": "float"})
    assert (differences == []) is compatible


def test_a_column_with_no_values_matches_any_type() -> None:
    assert compare_to_schema(schema(d={"type": "datetime"}), {"d": "null"}) == []


@pytest.mark.parametrize(
    ("values", "found"),
    [([0, 1], "int"), (["US", "GB"], "string"), ([True, False], "bool"), ([0.5, 1], "float")],
)
def test_category_is_expected_as_the_type_of_its_values(values: list[object], found: str) -> None:
    declared = schema(c={"type": "category", "values": values})
    assert compare_to_schema(declared, {"c": found}) == []
    other = "datetime"
    assert compare_to_schema(declared, {"c": other}) == [f"column 'c': expected {found}, found {other}"]


def test_a_data_schema_model_is_accepted() -> None:
    data = DataSchema.model_validate({"columns": {"id": {"type": "int"}}})
    assert compare_to_schema(data, {"id": "string"}) == ["column 'id': expected int, found string"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_generated_data_matches_its_own_schema(tmp_path: Path, fmt: str) -> None:
    spec = SyntheticSpec.model_validate(
        {
            "rows": 200,
            "format": fmt,
            "columns": {
                "id": {"type": "int", "unique": True},
                "amount": {"type": "float", "min": 0, "max": 5000, "nulls": 0.02},
                "country": {"type": "category", "values": ["US", "GB", "DE"]},
                "created": {"type": "datetime", "start": "2024-01-01", "end": "2024-12-31"},
                "note": {"type": "string", "max_length": 40},
                "label": {"type": "category", "values": [0, 1], "weights": [0.9, 0.1]},
                "flag": {"type": "bool", "nulls": 0.5},
            },
        }
    )
    (path,) = write_synthetic(spec, tmp_path)
    assert compare_to_schema(spec.columns, read_columns(path)) == []
