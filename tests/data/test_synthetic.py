"""Synthetic data: every column option, exact nulls, uniqueness, determinism and the files written."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pytest_cursus.data import tabular
from pytest_cursus.data.schema import ColumnSpec, SyntheticSpec
from pytest_cursus.data.synthetic import (
    GenerationProgress,
    generate_table,
    iter_synthetic_batches,
    synthetic_file_names,
    write_synthetic,
)

EVERY_TYPE: dict[str, dict[str, Any]] = {
    "i": {"type": "int"},
    "f": {"type": "float"},
    "b": {"type": "bool"},
    "c": {"type": "category", "values": ["US", "GB", "DE"]},
    "s": {"type": "string"},
    "d": {"type": "datetime"},
}
LOGICAL = {"i": "int", "f": "float", "b": "bool", "c": "string", "s": "string", "d": "datetime"}


def columns(**specs: dict[str, Any]) -> dict[str, ColumnSpec]:
    return {name: ColumnSpec.model_validate(spec) for name, spec in specs.items()}


def one_column(rows: int = 500, seed: int = 0, **spec: Any) -> pa.ChunkedArray:
    return generate_table(columns(x=spec), rows, seed).column("x")


def spec_of(**overrides: Any) -> SyntheticSpec:
    fields: dict[str, Any] = {"rows": 300, "seed": 3, "columns": EVERY_TYPE}
    fields.update(overrides)
    return SyntheticSpec.model_validate(fields)


# --- types and options ------------------------------------------------------------------------


def test_each_type_has_its_arrow_type() -> None:
    table = generate_table(columns(**EVERY_TYPE), 50, 0)
    assert table.schema.types == [pa.int64(), pa.float64(), pa.bool_(), pa.string(), pa.string(), pa.timestamp("s")]
    assert table.num_rows == 50


def test_int_default_range() -> None:
    values = one_column(type="int")
    assert 0 <= pc.min(values).as_py() and pc.max(values).as_py() <= 1_000_000


def test_int_range_is_inclusive() -> None:
    values = one_column(type="int", min=-2, max=2)
    assert set(values.to_pylist()) == {-2, -1, 0, 1, 2}


def test_float_range() -> None:
    values = one_column(type="float", min=10, max=20)
    assert 10 <= pc.min(values).as_py() and pc.max(values).as_py() <= 20


def test_bool_takes_both_values() -> None:
    assert set(one_column(type="bool").to_pylist()) == {True, False}


def test_string_lengths_stay_within_bounds() -> None:
    lengths = pc.utf8_length(one_column(type="string", min_length=3, max_length=5))
    assert (pc.min(lengths).as_py(), pc.max(lengths).as_py()) == (3, 5)


def test_strings_never_look_like_numbers_booleans_or_nulls() -> None:
    # Their first character can start none of "1", "true", "nan", "NULL", "inf"...
    first = {text[0] for text in one_column(rows=5000, type="string", max_length=3).to_pylist()}
    assert first.isdisjoint(set("0123456789nNtTfFiI+-."))


def test_datetimes_stay_within_start_and_end() -> None:
    values = one_column(type="datetime", start="2024-01-01", end="2024-01-31")
    assert values.type == pa.timestamp("s")
    assert pc.min(values).as_py() >= dt.datetime(2024, 1, 1)
    assert pc.max(values).as_py() <= dt.datetime(2024, 1, 31)


def test_category_draws_only_its_values() -> None:
    assert set(one_column(type="category", values=["US", "GB", "DE"]).to_pylist()) == {"US", "GB", "DE"}


@pytest.mark.parametrize(
    ("values", "arrow_type"),
    [
        ([0, 1], pa.int64()),
        (["a", "b"], pa.string()),
        ([True, False], pa.bool_()),
        ([0.5, 1], pa.float64()),
        ([1, "a"], pa.string()),
    ],
)
def test_category_keeps_the_type_of_its_values(values: list[Any], arrow_type: pa.DataType) -> None:
    assert one_column(rows=20, type="category", values=values).type == arrow_type


def test_category_weights_are_roughly_honoured() -> None:
    values = one_column(rows=10_000, seed=1, type="category", values=[0, 1], weights=[0.9, 0.1])
    share = pc.mean(values).as_py()
    assert 0.08 < share < 0.12


def test_zero_weight_values_are_never_drawn() -> None:
    values = one_column(rows=2000, type="category", values=["a", "b"], weights=[1, 0])
    assert set(values.to_pylist()) == {"a"}


# --- nulls ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EVERY_TYPE))
def test_nulls_are_exactly_the_requested_fraction(name: str) -> None:
    values = one_column(rows=1000, **EVERY_TYPE[name], nulls=0.02)
    assert values.null_count == 20


def test_nulls_are_exact_across_chunks() -> None:
    batches = iter_synthetic_batches(columns(x={"type": "int", "nulls": 0.3}), 1001, 0, chunk_rows=7)
    assert sum(batch.column(0).null_count for batch in batches) == round(1001 * 0.3)


def test_all_null_column() -> None:
    assert one_column(rows=10, type="string", nulls=1.0).null_count == 10


def test_null_positions_vary() -> None:
    values = one_column(rows=1000, type="int", nulls=0.5)
    head = values.slice(0, 100).null_count
    assert 20 < head < 80


# --- unique -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "int"},
        {"type": "int", "min": 0, "max": 1500},
        {"type": "int", "min": 10, "max": 1009},
        {"type": "float"},
        {"type": "string", "max_length": 2},
        {"type": "string"},
        {"type": "datetime", "start": "2024-01-01", "end": "2024-01-01T00:16:39"},
        {"type": "category", "values": list(range(1000))},
    ],
    ids=lambda spec: "-".join(str(value)[:12] for value in spec.values()),
)
@pytest.mark.parametrize("nulls", [0.0, 0.1])
def test_unique_columns_have_no_repeats(spec: dict[str, Any], nulls: float) -> None:
    values = one_column(rows=1000, **spec, unique=True, nulls=nulls)
    assert len(pc.unique(values.drop_null())) == 1000 - values.null_count
    assert values.null_count == round(1000 * nulls)


def test_unique_bool_allows_two_rows() -> None:
    assert sorted(one_column(rows=2, type="bool", unique=True).to_pylist()) == [False, True]


def test_unique_int_without_range_is_a_sequential_id() -> None:
    assert one_column(rows=5, type="int", unique=True).to_pylist() == [1, 2, 3, 4, 5]


def test_unique_holds_across_chunks() -> None:
    specs = columns(
        i={"type": "int", "unique": True, "min": 0, "max": 3000},
        s={"type": "string", "unique": True, "max_length": 2, "nulls": 0.1},
        seq={"type": "int", "unique": True, "nulls": 0.2},
    )
    table = pa.Table.from_batches(list(iter_synthetic_batches(specs, 1000, 0, chunk_rows=64)))
    for name in specs:
        values = table.column(name).drop_null()
        assert len(pc.unique(values)) == len(values), name


def test_unique_strings_can_use_every_possible_string() -> None:
    # One-character strings: as many as the letters allowed first.
    values = one_column(rows=44, type="string", unique=True, max_length=1)
    assert len(set(values.to_pylist())) == 44


@pytest.mark.parametrize(
    ("spec", "rows", "expected"),
    [
        ({"type": "int", "min": 0, "max": 100}, 5000, "at most 101 unique"),
        ({"type": "category", "values": ["a", "b", "c"]}, 4, "at most 3 unique"),
        ({"type": "bool"}, 3, "at most 2 unique"),
        ({"type": "string", "max_length": 1}, 45, "at most 44 unique"),
        ({"type": "float", "min": 1, "max": 1}, 2, "at most 1 unique"),
    ],
)
def test_infeasible_unique_is_a_clear_error(spec: dict[str, Any], rows: int, expected: str) -> None:
    with pytest.raises(ValueError, match=f"{expected} non-null values in column 'x'"):
        generate_table(columns(x={**spec, "unique": True}), rows, 0)


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_same_table() -> None:
    assert generate_table(columns(**EVERY_TYPE), 200, 5).equals(generate_table(columns(**EVERY_TYPE), 200, 5))


def test_different_seed_different_table() -> None:
    first, second = generate_table(columns(**EVERY_TYPE), 200, 5), generate_table(columns(**EVERY_TYPE), 200, 6)
    for name in ("i", "f", "s", "d"):
        assert not first.column(name).equals(second.column(name)), name


def test_a_column_does_not_depend_on_the_others() -> None:
    alone = generate_table(columns(s=EVERY_TYPE["s"]), 100, 1).column("s")
    together = generate_table(columns(**EVERY_TYPE), 100, 1).column("s")
    assert alone.equals(together)


# --- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "compression", "name"),
    [
        ("csv", None, "part-00001.csv"),
        ("csv", "gzip", "part-00001.csv.gz"),
        ("tsv", "gzip", "part-00001.tsv.gz"),
        ("jsonl", "gzip", "part-00001.jsonl.gz"),
        ("parquet", None, "part-00001.parquet"),
        ("parquet", "gzip", "part-00001.parquet"),
    ],
)
def test_shard_file_names(fmt: str, compression: str | None, name: str) -> None:
    names = synthetic_file_names(spec_of(format=fmt, compression=compression, shards=3))
    assert names[1] == name and names[0] == name.replace("00001", "00000") and len(names) == 3


def test_parquet_gzip_is_the_column_codec(tmp_path: Path) -> None:
    (path,) = write_synthetic(spec_of(format="parquet", compression="gzip"), tmp_path)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "GZIP"


def test_rows_are_split_evenly_across_shards(tmp_path: Path) -> None:
    files = write_synthetic(spec_of(rows=10, shards=3, format="parquet"), tmp_path)
    assert [tabular.count_rows(path) for path in files] == [4, 3, 3]


def test_shards_hold_the_generated_table_in_order(tmp_path: Path) -> None:
    spec = spec_of(format="parquet", shards=4)
    files = write_synthetic(spec, tmp_path)
    written = pa.concat_tables(pq.read_table(path) for path in files)
    expected = generate_table(spec.columns, spec.rows, spec.seed)
    # Parquet stores seconds as milliseconds: compare the instants.
    assert written.cast(expected.schema).equals(expected)


FORMATS = [(fmt, compression) for fmt in ("csv", "tsv", "jsonl", "parquet") for compression in (None, "gzip")]


@pytest.mark.parametrize(("fmt", "compression"), FORMATS)
@pytest.mark.parametrize("shards", [1, 3])
def test_written_files_read_back_with_their_rows_and_types(
    tmp_path: Path, fmt: str, compression: str | None, shards: int
) -> None:
    spec = spec_of(
        format=fmt,
        compression=compression,
        shards=shards,
        columns={
            **{name: {**column, "nulls": 0.1} for name, column in EVERY_TYPE.items()},
            "id": {"type": "int", "unique": True},
        },
    )
    files = write_synthetic(spec, tmp_path)
    assert files == tabular.list_tabular_files(tmp_path)
    assert sum(tabular.count_rows(path) for path in files) == spec.rows
    for path in files:
        assert tabular.read_columns(path) == {**LOGICAL, "id": "int"}


@pytest.mark.parametrize(("fmt", "compression"), FORMATS)
def test_same_seed_gives_byte_identical_files(tmp_path: Path, fmt: str, compression: str | None) -> None:
    spec = spec_of(format=fmt, compression=compression, shards=2)
    first = write_synthetic(spec, tmp_path / "a")
    second = write_synthetic(spec, tmp_path / "b")
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]


@pytest.mark.parametrize(("fmt", "compression"), FORMATS)
def test_different_seed_gives_different_files(tmp_path: Path, fmt: str, compression: str | None) -> None:
    (first,) = write_synthetic(spec_of(format=fmt, compression=compression, seed=1), tmp_path / "a")
    (second,) = write_synthetic(spec_of(format=fmt, compression=compression, seed=2), tmp_path / "b")
    assert first.read_bytes() != second.read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_text_formats_keep_values_exactly(tmp_path: Path, fmt: str) -> None:
    spec = spec_of(
        format=fmt,
        columns={
            "f": {"type": "float", "min": -1e9, "max": 1e9, "nulls": 0.2},
            "s": {"type": "string", "max_length": 3, "nulls": 0.2},
            "c": {"type": "category", "values": ['quote"d', "new\nline", "back\\slash", "tab\there", "é"]},
        },
    )
    (path,) = write_synthetic(spec, tmp_path)
    frame = tabular.read_frame(path)
    expected = generate_table(spec.columns, spec.rows, spec.seed).to_pandas()
    for name in ("f", "s", "c"):
        assert frame[name].isna().tolist() == expected[name].isna().tolist(), name
        assert frame[name].dropna().tolist() == expected[name].dropna().tolist(), name


def test_zero_rows_write_empty_tables(tmp_path: Path) -> None:
    for fmt in ("csv", "parquet", "jsonl"):
        (path,) = write_synthetic(spec_of(rows=0, format=fmt), tmp_path / fmt)
        assert tabular.count_rows(path) == 0


def test_infeasible_unique_writes_nothing(tmp_path: Path) -> None:
    spec = spec_of(rows=10)
    bad = {"x": ColumnSpec(type="bool", unique=True)}
    with pytest.raises(ValueError, match="at most 2 unique"):
        write_synthetic(spec.model_copy(update={"columns": bad}), tmp_path / "out")
    assert not list((tmp_path / "out").glob("*"))


# --- volume: chunks, shards and progress ------------------------------------------------------


VOLUME_COLUMNS = {
    "id": {"type": "int", "unique": True},
    "ref": {"type": "int", "unique": True, "min": 0, "max": 10_000_000},
    "amount": {"type": "float", "min": 0, "max": 10, "nulls": 0.05},
    "label": {"type": "category", "values": [0, 1], "weights": [0.9, 0.1]},
}


def test_a_table_of_several_chunks_is_the_same_whatever_the_shards(tmp_path: Path) -> None:
    rows = 250_001  # two full 100,000-row chunks and a partial one
    one = write_synthetic(spec_of(rows=rows, columns=VOLUME_COLUMNS, format="parquet"), tmp_path / "one")
    five = write_synthetic(spec_of(rows=rows, columns=VOLUME_COLUMNS, format="parquet", shards=5), tmp_path / "five")
    whole = pq.read_table(one[0])
    assert pa.concat_tables([pq.read_table(path) for path in five]).equals(whole)
    assert whole.num_rows == rows
    assert pc.count_distinct(whole.column("ref")).as_py() == rows
    assert whole.column("amount").null_count == round(rows * 0.05)


def test_gzipped_csv_shards_of_a_multi_chunk_table_are_byte_identical_per_seed(tmp_path: Path) -> None:
    spec = spec_of(rows=210_000, columns=VOLUME_COLUMNS, format="csv", compression="gzip", shards=3)
    first = write_synthetic(spec, tmp_path / "first")
    second = write_synthetic(spec, tmp_path / "second")
    assert [path.name for path in first] == ["part-00000.csv.gz", "part-00001.csv.gz", "part-00002.csv.gz"]
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]


def test_parquet_dictionary_encoding_choice_keeps_the_data(tmp_path: Path) -> None:
    # low-cardinality columns are dictionary-encoded, the others not; either way the values read back
    spec = spec_of(rows=1000, columns={**VOLUME_COLUMNS, "s": {"type": "string"}}, format="parquet")
    (path,) = write_synthetic(spec, tmp_path)
    encodings = {
        column.path_in_schema: column.encodings
        for column in (pq.ParquetFile(path).metadata.row_group(0).column(i) for i in range(5))
    }
    assert "RLE_DICTIONARY" in encodings["label"]
    assert "RLE_DICTIONARY" not in encodings["ref"]
    assert pq.read_table(path).equals(generate_table(spec.columns, spec.rows, spec.seed))


class _Clock:
    """A clock that advances ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_progress_is_silent_for_a_quick_generation(tmp_path: Path) -> None:
    stream = io.StringIO()
    progress = GenerationProgress("generating t", 1000, stream=stream, clock=_Clock(0.01))
    write_synthetic(spec_of(rows=1000), tmp_path, progress=progress)
    assert stream.getvalue() == ""


def test_progress_reports_rows_once_generation_takes_more_than_a_second(tmp_path: Path) -> None:
    stream = io.StringIO()
    progress = GenerationProgress("generating transactions", 300_000, stream=stream, clock=_Clock(0.6))
    write_synthetic(spec_of(rows=300_000, columns={"x": {"type": "int"}}), tmp_path, progress=progress)
    lines = stream.getvalue().splitlines()
    # the clock reads 0.6 at the start and after each 100,000-row chunk: 1.2 s in, after the second
    assert lines[0] == "cursus: generating transactions: 200,000/300,000 rows"
    assert lines[-1].startswith("cursus: generating transactions: 300,000/300,000 rows in ")


def test_progress_prints_at_most_once_per_interval() -> None:
    stream = io.StringIO()
    progress = GenerationProgress("g", 10, stream=stream, after=1.0, every=1.0, clock=_Clock(0.4))
    for done in range(1, 11):
        progress.update(done)
    # started at 0.4; updates at 0.8, 1.2 (silent: under a second), 1.6 (line), 2.0, 2.4 (too soon), 2.8 (line)...
    assert [line.split(": ")[-1] for line in stream.getvalue().splitlines()] == ["3/10 rows", "6/10 rows", "9/10 rows"]


def test_a_data_source_reports_progress_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_cursus.data import synthetic
    from pytest_cursus.formats.scenario_file import DataSource
    from pytest_cursus.run.sources import SourceContext, source_variant

    source = DataSource.model_validate({"synthetic": {"rows": 5, "columns": {"x": {"type": "int"}}}})
    monkeypatch.setattr(synthetic, "PROGRESS_AFTER_S", -1.0)  # as if generating had been slow
    source_variant("transactions", source, "synthetic", SourceContext(tmp_path / "s.yaml", tmp_path / "out")).data()
    assert "cursus: generating transactions: 5/5 rows" in capsys.readouterr().err
