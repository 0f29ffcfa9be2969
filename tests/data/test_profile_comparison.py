"""Synthetic vs real profiles: what differs, and the hint for the synthetic spec."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from pytest_cursus.data import profile_comparison
from pytest_cursus.data.profile_comparison import (
    ProfileComparison,
    compare_datasets,
    compare_source,
    profile_dataset,
)
from pytest_cursus.data.schema import SyntheticSpec


def _write_csv(directory: Path, columns: dict[str, list[object]], name: str = "part-0.csv") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    pcsv.write_csv(pa.table(columns), directory / name)
    return directory


def _compare(tmp_path: Path, synthetic: dict[str, list[object]], real: dict[str, list[object]]) -> ProfileComparison:
    return compare_datasets(
        "scn",
        "data.src",
        _write_csv(tmp_path / "synthetic", synthetic),
        _write_csv(tmp_path / "real", real),
        synthetic_location="spec",
        real_location="s3://b/real/",
    )


def _kinds(comparison: ProfileComparison) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for difference in comparison.differences:
        found.setdefault(difference.column, []).append(difference.kind)
    return found


def test_the_same_data_has_no_differences(tmp_path: Path) -> None:
    columns = {"id": [1, 2, 3], "country": ["US", "GB", "US"], "amount": [1.5, None, 3.0]}
    comparison = _compare(tmp_path, columns, columns)
    assert comparison.differences == [] and comparison.error is None
    assert "no differences in columns, types, null rates, ranges or value sets" in comparison.render_text()


def test_columns_on_one_side_only_are_listed_with_what_to_do(tmp_path: Path) -> None:
    comparison = _compare(tmp_path, {"id": [1, 2], "note": ["a", "b"]}, {"id": [1, 2], "merchant": ["m1", "m2"]})
    by_column = {d.column: d for d in comparison.differences}
    assert (by_column["note"].kind, by_column["note"].real) == ("only_synthetic", "absent")
    assert (by_column["merchant"].kind, by_column["merchant"].hint) == ("only_real", "add column merchant (category)")


def test_a_type_difference_is_reported_alone(tmp_path: Path) -> None:
    comparison = _compare(tmp_path, {"score": [1, 2, 3]}, {"score": ["high", "low", "mid"]})
    assert _kinds(comparison) == {"score": ["dtype"]}
    assert comparison.differences[0].hint == "declare type category"


def test_null_rates_differ_only_beyond_the_tolerance_or_when_one_side_has_none(tmp_path: Path) -> None:
    hundred = list(range(100))
    few_nulls = [None if i < 10 else i for i in hundred]
    close = [None if i < 11 else i for i in hundred]
    ones = [1] * 100  # a second column: a CSV row holding one empty field would be a blank line
    assert "null_rate" not in _kinds(
        _compare(tmp_path / "a", {"x": few_nulls, "y": ones}, {"x": close, "y": ones})
    ).get("x", [])
    no_nulls = _compare(
        tmp_path / "b", {"x": hundred, "y": ones}, {"x": [None if i == 0 else i for i in hundred], "y": ones}
    )
    (difference,) = no_nulls.differences
    assert (difference.kind, difference.synthetic, difference.real, difference.hint) == (
        "null_rate",
        "0%",
        "1%",
        "set nulls: 0.01",
    )


def test_numeric_and_date_ranges_that_differ_give_the_real_bounds(tmp_path: Path) -> None:
    comparison = _compare(
        tmp_path,
        {"amount": [0.0, 100.0], "day": ["2024-01-01", "2024-12-31"]},
        {"amount": [-5.0, 4000.0], "day": ["2023-06-01", "2024-12-31"]},
    )
    hints = {d.column: d.hint for d in comparison.differences}
    assert hints == {"amount": "set min: -5, max: 4000", "day": "set start: 2023-06-01, end: 2024-12-31"}


def test_ranges_within_the_tolerance_are_not_a_difference(tmp_path: Path) -> None:
    assert _compare(tmp_path, {"amount": [0.0, 100.0]}, {"amount": [1.0, 99.0]}).differences == []


def test_a_small_set_of_integers_is_compared_by_its_range(tmp_path: Path) -> None:
    (difference,) = _compare(tmp_path, {"label": [0, 1, 0]}, {"label": [0, 1, 2]}).differences
    assert (difference.kind, difference.hint) == ("range", "set min: 0, max: 2")


def test_value_sets_that_differ_say_what_to_add_and_remove(tmp_path: Path) -> None:
    comparison = _compare(tmp_path, {"country": ["US", "GB", "US"]}, {"country": ["US", "FR", "DE"]})
    (difference,) = comparison.differences
    assert difference.kind == "categories"
    assert difference.hint == "add DE, FR to values; remove GB (never in the real data)"


def test_a_small_synthetic_set_against_many_real_values_suggests_a_string(tmp_path: Path) -> None:
    comparison = _compare(tmp_path, {"city": ["A", "B"] * 20}, {"city": [f"city-{i}" for i in range(40)]})
    (difference,) = comparison.differences
    assert difference.real == "40 distinct values"
    assert difference.hint.startswith("the real values are not a small set (40 distinct): use type string")


def test_formats_are_profiled_alike(tmp_path: Path) -> None:
    table = pa.table({"id": [1, 2, 3], "country": ["US", "GB", None]})
    (tmp_path / "pq").mkdir()
    pq.write_table(table, tmp_path / "pq" / "part-0.parquet")
    (tmp_path / "gz").mkdir()
    pcsv.write_csv(table, tmp_path / "gz" / "part-0.csv")
    (tmp_path / "gz" / "part-0.csv.gz").write_bytes(gzip.compress((tmp_path / "gz" / "part-0.csv").read_bytes()))
    (tmp_path / "gz" / "part-0.csv").unlink()
    (tmp_path / "jl").mkdir()
    (tmp_path / "jl" / "part-0.jsonl").write_text(
        '{"id": 1, "country": "US"}\n{"id": 2, "country": "GB"}\n{"id": 3, "country": null}\n'
    )
    profiles = [profile_dataset(tmp_path / name, name) for name in ("pq", "gz", "jl")]
    assert all(p is not None for p in profiles)
    assert {p.model_dump_json(exclude={"location"}) for p in profiles if p} == {
        profiles[0].model_dump_json(exclude={"location"})
    }  # type: ignore[union-attr]


def test_rows_are_all_counted_but_only_the_first_are_profiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_comparison, "PROFILE_ROWS", 10)
    _write_csv(tmp_path / "data", {"id": list(range(25))}, "part-0.csv")
    _write_csv(tmp_path / "data", {"id": list(range(100, 125))}, "part-1.csv")
    profile = profile_dataset(tmp_path / "data", "here")
    assert profile is not None
    assert (profile.rows, profile.profiled_rows, profile.files) == (50, 10, 2)
    assert (profile.columns["id"].minimum, profile.columns["id"].maximum) == (0, 9)


def test_unreadable_real_data_is_an_error_in_the_comparison_not_an_exception(tmp_path: Path) -> None:
    _write_csv(tmp_path / "synthetic", {"id": [1]})
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "part-0.parquet").write_bytes(b"not parquet at all")
    comparison = compare_datasets(
        "scn", "data.src", tmp_path / "synthetic", tmp_path / "real", synthetic_location="spec", real_location="s3://b/"
    )
    assert comparison.error is not None and "part-0.parquet" in comparison.error
    assert comparison.render_text().startswith(
        "scn: data.src: not compared (could not read the data (UnreadableTableError: "
    )


def test_a_side_without_table_files_is_not_compared(tmp_path: Path) -> None:
    _write_csv(tmp_path / "synthetic", {"id": [1]})
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "model.tar.gz").write_bytes(b"\x1f\x8b")
    comparison = compare_datasets(
        "scn", "data.src", tmp_path / "synthetic", tmp_path / "real", synthetic_location="spec", real_location="s3://b/"
    )
    assert comparison.error == "no table file on the real side"


def test_a_synthetic_source_is_generated_on_the_side_and_removed(tmp_path: Path) -> None:
    spec = SyntheticSpec.model_validate(
        {
            "rows": 500,
            "seed": 3,
            "format": "parquet",
            "shards": 4,
            "columns": {"id": {"type": "int", "unique": True}, "flag": {"type": "bool"}},
        }
    )
    _write_csv(tmp_path / "real", {"id": list(range(1, 501)), "flag": [True, False] * 250})
    comparison = compare_source("scn", "src", spec, tmp_path / "real", "s3://b/real/", tmp_path / "scratch")
    assert comparison.error is None and comparison.differences == []
    assert comparison.synthetic is not None and (comparison.synthetic.rows, comparison.synthetic.location) == (
        500,
        "spec",
    )
    assert not (tmp_path / "scratch").exists()


def test_the_text_rendering_is_a_side_by_side_table(tmp_path: Path) -> None:
    comparison = _compare(
        tmp_path, {"id": [1, 2], "country": ["US", "GB"]}, {"id": [1, 2, 3], "country": ["US", "US", "FR"]}
    )
    lines = comparison.render_text().splitlines()
    assert lines[0] == "scn: data.src: synthetic spec (2 rows, 1 file) vs real s3://b/real/ (3 rows, 1 file)"
    assert lines[1].split() == ["column", "synthetic", "real"]
    assert lines[2].split() == ["id", "int,", "0%", "null,", "1", "..", "2", "int,", "0%", "null,", "1", "..", "3"]
    assert lines[-1] == (
        "    - country: categories: synthetic {GB, US}, real {FR, US} -> add FR to values; "
        "remove GB (never in the real data)"
    )


def test_a_comparison_survives_json_for_reports(tmp_path: Path) -> None:
    comparison = _compare(tmp_path, {"id": [1, 2]}, {"id": [5, 9], "x": ["a", "b"]})
    assert ProfileComparison.model_validate_json(comparison.model_dump_json()) == comparison
