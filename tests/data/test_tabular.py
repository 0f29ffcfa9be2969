"""Reading step outputs: which files are tables, their rows, their column types, clear failures."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytest_cursus.data import tabular
from pytest_cursus.data.tabular import (
    TabularFormat,
    UnreadableTableError,
    count_rows,
    list_tabular_files,
    read_columns,
    read_frame,
    tabular_format,
)


def write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("part-00000.csv", TabularFormat("csv", False)),
        ("part-00000.csv.gz", TabularFormat("csv", True)),
        ("x.TSV", TabularFormat("tsv", False)),
        ("x.parquet", TabularFormat("parquet", False)),
        ("x.pq", TabularFormat("parquet", False)),
        ("x.jsonl.gz", TabularFormat("jsonl", True)),
        ("x.ndjson", TabularFormat("jsonl", False)),
        ("x.json", None),
        ("model.tar.gz", None),
        ("x.gz", None),
        ("_SUCCESS", None),
    ],
)
def test_format_from_the_file_name(name: str, expected: TabularFormat | None) -> None:
    assert tabular_format(name) == expected


def test_listing_is_recursive_sorted_and_skips_markers_and_hidden_files(tmp_path: Path) -> None:
    for name in (
        "train/b.csv",
        "train/a.csv",
        "val/x.parquet",
        "_SUCCESS",
        "train/.a.csv.crc",
        "_temporary/part-0.csv",
        "model.tar.gz",
        "metrics.json",
        ".hidden.csv",
    ):
        write(tmp_path / name, "a\n1\n")
    assert list_tabular_files(tmp_path) == [
        tmp_path / "train/a.csv",
        tmp_path / "train/b.csv",
        tmp_path / "val/x.parquet",
    ]


def test_listing_a_single_file(tmp_path: Path) -> None:
    path = write(tmp_path / "out.tsv", "a\n1\n")
    assert list_tabular_files(path) == [path]


def test_listing_a_missing_root_is_empty(tmp_path: Path) -> None:
    assert list_tabular_files(tmp_path / "nowhere") == []


def test_csv_rows_exclude_the_header_and_count_quoted_newlines_once(tmp_path: Path, csv_counter: str) -> None:
    path = write(tmp_path / "x.csv", 'id,note\n1,"two\nlines"\n2,plain\n')
    assert count_rows(path) == 2


def test_csv_rows_counted_past_a_type_change_in_a_later_block(tmp_path: Path, csv_counter: str) -> None:
    # More than the 1 MiB sample block of ints, then text: counting must not trip on it.
    path = write(tmp_path / "x.csv.gz", "n\n" + "12\n" * 600_000 + "abc\n")
    assert count_rows(path) == 600_001


# Small CSVs are counted by the standard library's parser, large ones by pyarrow's: the two must
# agree on every file, and on every file one of them would reject.
AWKWARD_CSVS = {
    "quoted_newlines.csv": 'id,note\n1,"two\nlines"\n2,plain\n',
    "crlf.csv": "id,note\r\n1,a\r\n2,b\r\n",
    "blank_lines.csv": "id,note\n\n1,a\n\n\n2,b\n",
    "no_final_newline.csv": "id,note\n1,a\n2,b",
    "quoted_delimiters.tsv": 'a\tb\n"x\ty"\t2\n3\t"say ""hi"""\n',
    "one_column.csv": "id\n1\n\n2\n3\n",
    "header_only.csv.gz": "id,amount\n",
    "unicode.csv": "name,city\nJosé,Zürich\n李,北京\n",
    "many_rows.csv.gz": "n\n" + "12\n" * 50_000 + "abc\n",
}
REJECTED_CSVS = {
    "ragged.csv": "a,b\n1,2\n1,2,3\n",
    "short_row.csv": "a,b,c\n1,2,3\n4,5\n",
    "whitespace_line.csv": "a,b\n1,2\n   \n3,4\n",
}


@pytest.fixture(params=["standard library", "pyarrow"])
def csv_counter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pyarrow":
        monkeypatch.setattr(tabular, "CSV_COUNT_WITHOUT_ARROW_BYTES", -1)
    return str(request.param)


@pytest.mark.parametrize("name", sorted(AWKWARD_CSVS))
def test_both_csv_counters_agree_on_awkward_files(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / name, AWKWARD_CSVS[name])
    plain = count_rows(path)
    monkeypatch.setattr(tabular, "CSV_COUNT_WITHOUT_ARROW_BYTES", -1)
    assert count_rows(path) == plain


@pytest.mark.parametrize("name", sorted(REJECTED_CSVS))
def test_a_csv_pyarrow_rejects_is_unreadable_whichever_counter_is_used(
    tmp_path: Path, name: str, csv_counter: str
) -> None:
    with pytest.raises(UnreadableTableError, match=r"not a readable CSV file \(.*Expected \d columns, got \d"):
        count_rows(write(tmp_path / name, REJECTED_CSVS[name]))


def test_invalid_utf8_counts_as_pyarrow_counts_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "latin1.csv", "name,n\nJosé,1\n".encode("latin-1"))
    try:
        expected: object = count_rows(path)
    except UnreadableTableError as exc:
        expected = str(exc)
    monkeypatch.setattr(tabular, "CSV_COUNT_WITHOUT_ARROW_BYTES", -1)
    try:
        arrow: object = count_rows(path)
    except UnreadableTableError as exc:
        arrow = str(exc)
    assert expected == arrow


def test_counting_a_small_csv_does_not_import_pyarrow(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv.gz", "id,note\n1,a\n2,b\n")
    code = (
        "import sys\n"
        "from pytest_cursus.data.tabular import count_rows\n"
        f"print(count_rows({str(path)!r}), 'pyarrow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["2", "False"]


def test_jsonl_rows_skip_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "x.jsonl", '{"a": 1}\n\n{"a": 2}\n   \n')
    assert count_rows(path) == 2


def test_parquet_rows_come_from_the_footer(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": range(7)}), path)
    assert count_rows(path) == 7


def test_csv_column_types_are_inferred(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "i,f,b,s,d,e\n1,1.5,true,a,2024-01-01,\n,2.5,false,b,2024-01-02 10:00:00,\n")
    assert read_columns(path) == {"i": "int", "f": "float", "b": "bool", "s": "string", "d": "datetime", "e": "null"}


def test_tsv_uses_tabs(tmp_path: Path) -> None:
    path = write(tmp_path / "x.tsv.gz", "a\tb\n1\tx,y\n")
    assert read_columns(path) == {"a": "int", "b": "string"}


def test_header_only_csv_has_null_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "id,amount\n")
    assert (count_rows(path), read_columns(path)) == (0, {"id": "null", "amount": "null"})


def test_jsonl_column_types_are_inferred(tmp_path: Path) -> None:
    path = write(tmp_path / "x.ndjson.gz", '{"i": 1, "f": 0.5, "t": "2024-01-01T00:00:00", "s": "x"}\n{"i": null}\n')
    assert read_columns(path) == {"i": "int", "f": "float", "t": "datetime", "s": "string"}


def test_parquet_column_types_come_from_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    table = pa.table(
        {
            "i": pa.array([1], pa.int32()),
            "dec": pa.array([1], pa.decimal128(5, 2)),
            "day": pa.array([0], pa.date32()),
            "cat": pa.array(["a"]).dictionary_encode(),
            "flag": pa.array([True]),
        }
    )
    pq.write_table(table, path)
    assert read_columns(path) == {"i": "int", "dec": "float", "day": "datetime", "cat": "string", "flag": "bool"}


@pytest.mark.parametrize("name", ["x.csv", "x.tsv.gz", "x.jsonl", "x.parquet"])
def test_read_frame_limits_rows(tmp_path: Path, name: str) -> None:
    frame = pd.DataFrame({"a": range(10), "b": [f"v{n}" for n in range(10)]})
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    elif ".jsonl" in name:
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, sep="\t" if ".tsv" in name else ",", index=False)
    assert read_frame(path).shape == (10, 2)
    assert read_frame(path, nrows=3)["a"].tolist() == [0, 1, 2]


def test_a_name_that_is_not_a_table_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Expected a .csv.*path='.*notes.txt'"):
        count_rows(write(tmp_path / "notes.txt", "hello"))


@pytest.mark.parametrize("read", [count_rows, read_columns, read_frame])
def test_corrupt_parquet_names_the_file_and_the_cause(tmp_path: Path, read: object) -> None:
    path = write(tmp_path / "part-00000.parquet", b"PAR1 but not really" * 10)
    with pytest.raises(UnreadableTableError, match=r"part-00000\.parquet: not a readable Parquet file \(.*magic bytes"):
        read(path)  # type: ignore[operator]


@pytest.mark.parametrize("read", [count_rows, read_columns, read_frame])
def test_garbage_gzip_names_the_file(tmp_path: Path, read: object) -> None:
    path = tmp_path / "part-00000.csv.gz"
    path.write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(UnreadableTableError, match=r"part-00000\.csv\.gz: not a readable gzipped CSV file \(.+\)"):
        read(path)  # type: ignore[operator]


def test_truncated_gzip_is_unreadable(tmp_path: Path, csv_counter: str) -> None:
    whole = gzip.compress(b"a,b\n" + b"1,2\n" * 10_000)
    path = tmp_path / "x.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UnreadableTableError, match="x.csv.gz"):
        count_rows(path)


@pytest.mark.parametrize("name", ["x.csv", "x.parquet"])
def test_empty_file_is_unreadable(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnreadableTableError, match=f"{name}: .*the file is empty"):
        count_rows(write(tmp_path / name, b""))


def test_empty_jsonl_is_an_empty_table(tmp_path: Path) -> None:
    path = write(tmp_path / "x.jsonl", b"")
    assert (count_rows(path), read_columns(path), read_frame(path).shape) == (0, {}, (0, 0))


def test_ragged_csv_is_unreadable(tmp_path: Path, csv_counter: str) -> None:
    with pytest.raises(UnreadableTableError, match=r"x\.csv: .*Expected 2 columns, got 3"):
        count_rows(write(tmp_path / "x.csv", "a,b\n1,2\n1,2,3\n"))


def test_invalid_json_line_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableTableError, match=r"x\.jsonl: not a readable JSON lines file"):
        read_columns(write(tmp_path / "x.jsonl", '{"a": 1}\n{"a": \n'))


def test_the_error_keeps_path_and_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "x.parquet", b"nope")
    with pytest.raises(UnreadableTableError) as info:
        count_rows(path)
    assert info.value.path == path and "Parquet" in info.value.reason
    assert isinstance(info.value.__cause__, Exception)


def test_missing_file_is_a_plain_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        count_rows(tmp_path / "missing.csv")
