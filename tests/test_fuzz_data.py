"""The datasets fuzzing generates: they honour each column's schema and reach real data's edge cases."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from pytest_cursus.data.schema import ColumnSpec
from pytest_cursus.data.tabular import read_columns
from pytest_cursus.formats.scenario_file import FuzzInputEdges
from pytest_cursus.plan.input_schemas import InputSchema
from pytest_cursus.run.fuzzing import (
    SavedExample,
    dataset_strategy,
    feasible_rows,
    null_edge_datasets,
    render_table,
    write_example,
)

SCHEMA: dict[str, dict[str, Any]] = {
    "id": {"type": "int", "unique": True},
    "qty": {"type": "int", "min": 1, "max": 5},
    "amount": {"type": "float", "nulls": 0.1},
    "price": {"type": "float", "min": 0, "max": 10},
    "flag": {"type": "bool"},
    "label": {"type": "category", "values": [0, 1]},
    "note": {"type": "string", "min_length": 0, "max_length": 6, "nulls": 0.2},
    "code": {"type": "string", "min_length": 2, "max_length": 3},
    "when": {"type": "datetime", "start": "2024-01-01", "end": "2024-12-31"},
}


def schema_of(columns: dict[str, dict[str, Any]], file_format: str = "csv") -> InputSchema:
    specs = {name: ColumnSpec.model_validate(spec) for name, spec in columns.items()}
    return InputSchema(specs, file_format, None, Path("contracts/x.step.yaml"), "inputs.DATA.data")  # type: ignore[arg-type]


def generated(columns: dict[str, dict[str, Any]], examples: int = 300, max_rows: int = 8) -> list[pa.Table]:
    tables: list[pa.Table] = []

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(dataset_strategy({"DATA": schema_of(columns)}, max_rows))
    def collect(dataset: dict[str, pa.Table]) -> None:
        tables.append(dataset["DATA"])

    collect()
    return tables


@pytest.fixture(scope="module")
def tables() -> list[pa.Table]:
    return generated(SCHEMA)


def values(tables: list[pa.Table], column: str) -> list[Any]:
    return [value for table in tables for value in table.column(column).to_pylist()]


def test_every_table_has_the_schema_columns_in_order_and_at_most_max_rows(tables: list[pa.Table]) -> None:
    assert all(table.column_names == list(SCHEMA) and table.num_rows <= 8 for table in tables)


def test_int_bounds_are_honoured(tables: list[pa.Table]) -> None:
    assert {value for value in values(tables, "qty")} <= {1, 2, 3, 4, 5}


def test_an_int_without_bounds_reaches_extremes(tables: list[pa.Table]) -> None:
    ids = [value for value in values(tables, "id") if value is not None]
    assert max(ids) > 2**40 and min(ids) < -(2**40)


def test_float_bounds_are_honoured_and_keep_specials_out(tables: list[pa.Table]) -> None:
    prices = values(tables, "price")
    assert all(value is not None and 0 <= value <= 10 for value in prices)
    assert any(str(value) == "-0.0" for value in prices)  # 0 is within the range: so is -0.0


def test_a_float_without_bounds_gets_special_and_extreme_values(tables: list[pa.Table]) -> None:
    amounts = [value for value in values(tables, "amount") if value is not None]
    assert any(value == math.inf for value in amounts)
    assert any(value == -math.inf for value in amounts)
    assert any(math.isnan(value) for value in amounts)  # the column declares nulls
    assert any(abs(value) == 1e308 for value in amounts)
    assert any(str(value) == "-0.0" for value in amounts)


def test_nan_only_where_the_column_declares_nulls() -> None:
    amounts = values(generated({"x": {"type": "float"}}, examples=150), "x")
    assert all(value is not None and not math.isnan(value) for value in amounts)


def test_category_values_only(tables: list[pa.Table]) -> None:
    assert set(values(tables, "label")) <= {0, 1}


def test_string_lengths_honoured_and_unicode_reached(tables: list[pa.Table]) -> None:
    codes = values(tables, "code")
    assert all(2 <= len(code) <= 3 for code in codes)
    assert any(not code.isascii() for code in codes)


def test_empty_strings_only_where_min_length_is_zero(tables: list[pa.Table]) -> None:
    assert "" in values(tables, "note")
    assert "" not in values(tables, "code")


def test_datetimes_within_start_and_end_in_whole_seconds(tables: list[pa.Table]) -> None:
    moments = values(tables, "when")
    assert all(
        dt.datetime(2024, 1, 1) <= moment <= dt.datetime(2024, 12, 31) and moment.microsecond == 0 for moment in moments
    )


def test_unique_columns_never_repeat_a_value(tables: list[pa.Table]) -> None:
    for table in tables:
        ids = [value for value in table.column("id").to_pylist() if value is not None]
        assert len(ids) == len(set(ids))


def test_columns_without_unique_get_duplicates(tables: list[pa.Table]) -> None:
    duplicated = [
        table for table in tables if table.num_rows > 1 and len(set(table.column("qty").to_pylist())) < table.num_rows
    ]
    assert duplicated


def test_nulls_only_where_declared(tables: list[pa.Table]) -> None:
    for name in ("id", "qty", "price", "flag", "label", "code", "when"):
        assert all(table.column(name).null_count == 0 for table in tables), name


def test_edge_cases_zero_rows_one_row_all_null_column_and_single_class(tables: list[pa.Table]) -> None:
    sizes = {table.num_rows for table in tables}
    assert {0, 1} <= sizes
    assert any(table.num_rows > 1 and table.column("note").null_count == table.num_rows for table in tables)
    assert any(table.num_rows > 1 and len(set(table.column("label").to_pylist())) == 1 for table in tables)


def test_rows_are_capped_so_a_unique_column_can_be_distinct() -> None:
    narrow = schema_of({"x": {"type": "int", "unique": True, "min": 1, "max": 3}})
    assert feasible_rows(narrow.columns, 20) == 3
    assert all(
        table.num_rows <= 3
        for table in generated({"x": {"type": "int", "unique": True, "min": 1, "max": 3}}, examples=60, max_rows=20)
    )


def test_a_null_edge_is_one_row_with_every_nullable_column_null_and_the_simplest_other_values() -> None:
    (edge,) = null_edge_datasets({"DATA": schema_of(SCHEMA)}, max_rows=8)

    assert edge.input == "DATA" and list(edge.tables) == ["DATA"]
    (row,) = edge.tables["DATA"].to_pylist()
    assert row == {
        "id": 0,
        "qty": 1,
        "amount": None,
        "price": 0.0,
        "flag": False,
        "label": 0,
        "note": None,
        "code": "00",
        "when": dt.datetime(2024, 1, 1),
    }


def test_null_edges_are_the_same_on_every_call() -> None:
    schemas = {"DATA": schema_of(SCHEMA), "OTHER": schema_of({"score": {"type": "float", "nulls": 0.5}})}
    first, second = null_edge_datasets(schemas, max_rows=8), null_edge_datasets(schemas, max_rows=8)
    assert [edge.input for edge in first] == ["DATA", "OTHER"]
    assert [{name: table.to_pylist() for name, table in edge.tables.items()} for edge in first] == [
        {name: table.to_pylist() for name, table in edge.tables.items()} for edge in second
    ]
    # the other input has a row too, with no null: the edge is about one input's nulls only
    assert first[1].tables["DATA"].num_rows == 1 and first[1].tables["DATA"].column("amount").null_count == 0
    assert first[1].tables["OTHER"].column("score").to_pylist() == [None]


def test_null_edges_follow_min_rows_and_are_left_out_without_nulls() -> None:
    schemas = {"DATA": schema_of(SCHEMA)}
    (three,) = null_edge_datasets(schemas, max_rows=8, edges={"DATA": FuzzInputEdges(min_rows=3)})
    assert three.tables["DATA"].num_rows == 3 and three.tables["DATA"].column("amount").null_count == 3
    assert len(set(three.tables["DATA"].column("id").to_pylist())) == 3  # unique, as declared
    assert null_edge_datasets(schemas, max_rows=8, edges={"DATA": FuzzInputEdges(nulls=False)}) == []
    assert null_edge_datasets({"DATA": schema_of({"id": {"type": "int"}})}, max_rows=8) == []
    assert null_edge_datasets(schemas, max_rows=0) == []


def test_render_table_tells_empty_strings_nulls_and_special_floats_apart() -> None:
    table = pa.table({"s": pa.array(["", None, "é"]), "f": pa.array([math.nan, -0.0, math.inf])})
    lines = render_table(table).splitlines()
    assert [line.split("|")[0].strip() for line in lines[2:]] == ["''", "null", "'é'"]
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["nan", "-0.0", "inf"]


def test_render_table_of_zero_rows_and_of_many_rows() -> None:
    assert render_table(pa.table({"a": pa.array([], pa.int64())})).splitlines()[-1] == "(0 rows)"
    assert render_table(pa.table({"a": list(range(30))}), max_rows=5).splitlines()[-1] == "... 25 more rows"


@pytest.mark.parametrize(
    ("file_format", "name"),
    [("csv", "part-00000.csv"), ("parquet", "part-00000.parquet"), ("jsonl", "part-00000.jsonl")],
)
def test_examples_are_written_in_the_schema_format_and_read_back(tmp_path: Path, file_format: str, name: str) -> None:
    schema = schema_of({"a": {"type": "int"}, "s": {"type": "string"}}, file_format)
    written = write_example({"DATA": pa.table({"a": [1, 2], "s": ["x", "y"]})}, {"DATA": schema}, tmp_path)
    assert sorted(path.name for path in written["DATA"].iterdir()) == [name]
    assert read_columns(written["DATA"] / name) == {"a": "int", "s": "string"}


def test_a_saved_example_loads_back(tmp_path: Path) -> None:
    schema = schema_of({"a": {"type": "int"}})
    saved = SavedExample.save(
        tmp_path / "saved", Path("/x/scenarios/s.yaml"), "train", {"DATA": pa.table({"a": [1]})}, {"DATA": schema}
    )
    loaded = SavedExample.load(tmp_path / "saved")
    assert (loaded.scenario_file, loaded.step, loaded.inputs) == ("/x/scenarios/s.yaml", "train", saved.inputs)
    assert (loaded.inputs["DATA"] / "part-00000.csv").read_text() == '"a"\n1\n'


def test_a_saved_example_with_missing_data_is_refused(tmp_path: Path) -> None:
    schema = schema_of({"a": {"type": "int"}})
    SavedExample.save(tmp_path, Path("/x/s.yaml"), "train", {"DATA": pa.table({"a": [1]})}, {"DATA": schema})
    (tmp_path / "inputs/DATA/part-00000.csv").unlink()
    (tmp_path / "inputs/DATA").rmdir()
    with pytest.raises(ValueError, match="names input data that is missing"):
        SavedExample.load(tmp_path)
