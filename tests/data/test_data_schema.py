"""The column grammar: what a scenario's synthetic source or a contract's data block may say."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from pydantic import ValidationError

from pytest_cursus.data.schema import ColumnSpec, DataSchema, SyntheticSpec


def test_spec_example_from_the_docs_is_valid() -> None:
    source = yaml.safe_load(
        """
        rows: 5000
        seed: 7
        format: csv
        compression: gzip
        shards: 2
        columns:
          id:      {type: int, unique: true}
          amount:  {type: float, min: 0, max: 5000, nulls: 0.02}
          country: {type: category, values: [US, GB, DE]}
          created: {type: datetime, start: 2024-01-01, end: 2024-12-31}
          note:    {type: string, max_length: 40}
          label:   {type: category, values: [0, 1], weights: [0.9, 0.1]}
        """
    )
    spec = SyntheticSpec.model_validate(source)
    assert spec.columns["created"].start == dt.datetime(2024, 1, 1)
    assert spec.columns["label"].category_kind() == "int"


def test_defaults() -> None:
    spec = SyntheticSpec.model_validate({"columns": {"x": {"type": "int"}}})
    assert (spec.rows, spec.seed, spec.format, spec.compression, spec.shards) == (1000, 0, "csv", None, 1)
    column = spec.columns["x"]
    assert (column.nulls, column.unique, column.int_bounds()) == (0.0, False, (0, 1_000_000))


def test_unknown_key_is_an_error_naming_the_key() -> None:
    with pytest.raises(ValidationError, match="colour"):
        ColumnSpec.model_validate({"type": "int", "colour": "red"})


def test_unknown_key_at_spec_level_is_an_error_naming_the_key() -> None:
    with pytest.raises(ValidationError, match="row_count"):
        SyntheticSpec.model_validate({"row_count": 5, "columns": {"x": {"type": "int"}}})


@pytest.mark.parametrize(
    ("column", "key"),
    [
        ({"type": "int", "values": [1, 2]}, "values"),
        ({"type": "float", "max_length": 3}, "max_length"),
        ({"type": "string", "min": 0}, "min"),
        ({"type": "bool", "weights": [1.0]}, "weights"),
        ({"type": "category", "values": ["a"], "start": "2024-01-01"}, "start"),
        ({"type": "datetime", "max": 3}, "max"),
    ],
)
def test_key_of_another_type_is_an_error_naming_key_and_type(column: dict[str, object], key: str) -> None:
    with pytest.raises(ValidationError) as info:
        ColumnSpec.model_validate(column)
    message = str(info.value)
    assert f"Expected {key!r} only on" in message
    assert f"type={column['type']!r}" in message


def test_min_above_max_is_an_error_showing_both() -> None:
    with pytest.raises(ValidationError, match="Expected min <= max but got min=10, max=1"):
        ColumnSpec(type="int", min=10, max=1)


def test_int_bounds_must_be_whole_numbers() -> None:
    with pytest.raises(ValidationError, match="whole number min.*min=0.5"):
        ColumnSpec(type="int", min=0.5)


def test_bounds_must_be_numbers_not_booleans_or_text() -> None:
    with pytest.raises(ValidationError):
        ColumnSpec.model_validate({"type": "float", "max": True})
    with pytest.raises(ValidationError):
        ColumnSpec.model_validate({"type": "float", "max": "5"})


def test_one_sided_range_extends_from_the_given_bound() -> None:
    assert ColumnSpec(type="int", min=5000).int_bounds() == (5000, 1_005_000)
    assert ColumnSpec(type="float", max=-3).float_bounds() == (-4.0, -3.0)


@pytest.mark.parametrize("nulls", [-0.1, 1.5])
def test_nulls_is_a_fraction(nulls: float) -> None:
    with pytest.raises(ValidationError, match="nulls"):
        ColumnSpec(type="int", nulls=nulls)


def test_category_needs_values() -> None:
    with pytest.raises(ValidationError, match="non-empty 'values'"):
        ColumnSpec(type="category")


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([0.5], "one weight per value"),
        ([1.0, -1.0], "non-negative weights"),
        ([0.0, 0.0], "positive sum"),
    ],
)
def test_category_weights_are_checked(weights: list[float], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        ColumnSpec(type="category", values=["a", "b"], weights=weights)


def test_category_values_keep_their_yaml_types() -> None:
    values = yaml.safe_load("[0, 1]")
    assert ColumnSpec(type="category", values=values).category_kind() == "int"
    assert ColumnSpec(type="category", values=[True, False]).category_kind() == "bool"
    assert ColumnSpec(type="category", values=[1, 2.5]).category_kind() == "float"
    assert ColumnSpec(type="category", values=[1, "a"]).category_kind() == "string"


def test_string_lengths_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="min_length=5, max_length=2"):
        ColumnSpec(type="string", min_length=5, max_length=2)


@pytest.mark.parametrize(
    "bound",
    [dt.date(2024, 3, 1), dt.datetime(2024, 3, 1), "2024-03-01", "2024-03-01T00:00:00", "2024-03-01T01:00:00+01:00"],
)
def test_datetime_bounds_accept_dates_datetimes_and_iso_text(bound: object) -> None:
    column = ColumnSpec.model_validate({"type": "datetime", "start": bound})
    assert column.start == dt.datetime(2024, 3, 1)


def test_datetime_start_after_end_is_an_error() -> None:
    with pytest.raises(ValidationError, match="Expected start <= end"):
        ColumnSpec.model_validate({"type": "datetime", "start": "2024-02-01", "end": "2024-01-01"})


@pytest.mark.parametrize(
    ("field", "value"),
    [("rows", -1), ("shards", 0), ("format", "xlsx"), ("compression", "zstd")],
)
def test_spec_level_values_are_checked(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        SyntheticSpec.model_validate({field: value, "columns": {"x": {"type": "int"}}})


def test_a_spec_needs_at_least_one_column() -> None:
    with pytest.raises(ValidationError, match="columns"):
        SyntheticSpec.model_validate({"columns": {}})


def test_blank_column_name_is_an_error() -> None:
    with pytest.raises(ValidationError, match="non-blank column names"):
        SyntheticSpec.model_validate({"columns": {" ": {"type": "int"}}})


def test_infeasible_unique_is_caught_with_the_row_count() -> None:
    with pytest.raises(ValidationError) as info:
        SyntheticSpec.model_validate(
            {"rows": 5000, "columns": {"id": {"type": "int", "unique": True, "min": 0, "max": 100}}}
        )
    message = str(info.value)
    assert "'id'" in message and "at most 101 unique" in message and "rows=5000" in message


def test_nulls_do_not_count_against_uniqueness() -> None:
    column = {"type": "int", "unique": True, "min": 1, "max": 10, "nulls": 0.5}
    SyntheticSpec.model_validate({"rows": 20, "columns": {"id": column}})


def test_data_schema_takes_columns_and_an_optional_format() -> None:
    schema = DataSchema.model_validate({"columns": {"id": {"type": "int"}}, "format": "parquet"})
    assert schema.format == "parquet"
    assert DataSchema.model_validate({"columns": {"id": {"type": "int"}}}).format is None


def test_data_schema_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="rows"):
        DataSchema.model_validate({"columns": {"id": {"type": "int"}}, "rows": 10})
