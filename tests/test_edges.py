"""Edge items ``compat[up.out-down.in]``: is what the upstream step wrote something the downstream
input can read, and does it match the schema the downstream contract declares?"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.checks.edge_checks import sampled

EDGE = "compat[[]make.out-use.DATA[]]"  # fnmatch escapes for compat[make.out-use.DATA]

TOLERANT_SCRIPT = """
def main(input_paths, output_paths, environ_vars, job_args):
    pass
"""

SCHEMA = {"columns": {"id": {"type": "int"}, "amount": {"type": "float"}}}


def _edge(project: PipelineProject, writes: str, schema: dict[str, Any] | None = None) -> PipelineProject:
    """Step `make` runs ``writes`` (``out`` is its output directory); step `use` reads it as DATA.

    `use` itself accepts anything, so only the edge judges the data.
    """
    data_input: dict[str, Any] = {"path": "/opt/ml/processing/input/data"}
    if schema is not None:
        data_input["data"] = schema
    project.contract("Maker", entry_point="maker.py")
    project.contract("User", entry_point="user.py", inputs={"DATA": data_input})
    body = textwrap.indent(textwrap.dedent(writes).strip("\n"), "    ")
    project.script(
        "maker.py",
        "import gzip, os\n\ndef main(input_paths, output_paths, environ_vars, job_args):\n    out = "
        f'output_paths["out"]\n{body}\n',
    )
    project.script("user.py", TOLERANT_SCRIPT)
    project.scenario(
        "edges",
        """
        steps:
          make: {contract: Maker}
          use: {contract: User, inputs: {DATA: make.out}}
        """,
    )
    return project


def _edge_fails_with(project: PipelineProject, problem: str) -> pytest.RunResult:
    result = project.run("-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([f"*edges.yaml::{EDGE} FAILED*"])
    result.stdout.fnmatch_lines(["*incompatible data on edge make.out -> use.DATA:", f"*  - {problem}"])
    assert "INTERNALERROR" not in result.stdout.str()
    return result


CSV = 'open(os.path.join(out, "data.csv"), "w").write("id,amount\\n1,2.5\\n2,3.5\\n")'


def test_a_readable_output_passes_the_edge(project: PipelineProject) -> None:
    _edge(project, CSV)
    result = project.run("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"*edges.yaml::{EDGE} PASSED*"])


def test_an_output_matching_the_downstream_schema_passes_the_edge(project: PipelineProject) -> None:
    _edge(project, CSV, SCHEMA)
    project.run().assert_outcomes(passed=3)


def test_an_upstream_that_wrote_nothing_fails_the_edge_as_empty(project: PipelineProject) -> None:
    _edge(project, "pass")
    _edge_fails_with(project, "the output is empty: no file under *edges/make/output/out")


def test_a_file_output_the_upstream_did_not_write_fails_the_edge(project: PipelineProject) -> None:
    project.contract("Maker", entry_point="maker.py", outputs={"out": {"path": "/opt/ml/processing/output/result.csv"}})
    project.contract("User", entry_point="user.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script("maker.py", TOLERANT_SCRIPT)
    project.script("user.py", TOLERANT_SCRIPT)
    project.scenario(
        "edges",
        """
        steps:
          make: {contract: Maker}
          use: {contract: User, inputs: {DATA: make.out}}
        """,
    )
    result = project.run("-v")
    result.assert_outcomes(passed=1, failed=2)  # the downstream step has no input to run on either
    result.stdout.fnmatch_lines([f"*edges.yaml::{EDGE} FAILED*"])
    result.stdout.fnmatch_lines(["*  - the output was not written: *edges/make/output/out/result.csv does not exist"])


def test_an_output_of_zero_byte_files_fails_the_edge_as_empty(project: PipelineProject) -> None:
    _edge(project, 'open(os.path.join(out, "a.csv"), "w").close()\nopen(os.path.join(out, "b.csv"), "w").close()')
    _edge_fails_with(project, "the output is empty: 2 file(s) under *edges/make/output/out, all of 0 bytes")


def test_a_corrupt_parquet_output_fails_the_edge_as_unreadable(project: PipelineProject) -> None:
    _edge(project, 'open(os.path.join(out, "data.parquet"), "wb").write(b"PAR1 but not really")')
    _edge_fails_with(project, "unreadable: *data.parquet: not a readable Parquet file (*)")


def test_a_corrupt_gzipped_csv_output_fails_the_edge_as_unreadable(project: PipelineProject) -> None:
    _edge(project, 'open(os.path.join(out, "part-00000.csv.gz"), "wb").write(b"id,amount\\n1,2.5\\n")  # not gzip')
    _edge_fails_with(project, "unreadable: *part-00000.csv.gz: not a readable gzipped CSV file (*)")


def test_a_column_missing_from_the_declared_schema_fails_the_edge(project: PipelineProject) -> None:
    _edge(project, 'open(os.path.join(out, "data.csv"), "w").write("id,total\\n1,2.5\\n")', SCHEMA)
    _edge_fails_with(
        project, "data.csv does not match the downstream input's schema: missing column 'amount' (expected float)"
    )


def test_a_dtype_mismatch_shows_column_expected_and_found(project: PipelineProject) -> None:
    _edge(project, 'open(os.path.join(out, "data.csv"), "w").write("id,amount\\n1,cheap\\n2,dear\\n")', SCHEMA)
    _edge_fails_with(
        project, "data.csv does not match the downstream input's schema: column 'amount': expected float, found string"
    )


def test_schema_is_checked_in_every_shard_and_subdirectory(project: PipelineProject) -> None:
    _edge(
        project,
        """
        for split, amount in (("train", "2.5"), ("val", "2.5"), ("test", "unknown")):
            os.makedirs(os.path.join(out, split))
            with gzip.open(os.path.join(out, split, "part-00000.csv.gz"), "wt") as handle:
                handle.write(f"id,amount\\n1,{amount}\\n")
        """,
        SCHEMA,
    )
    _edge_fails_with(
        project,
        "test/part-00000.csv.gz does not match the downstream input's schema: column 'amount': expected float, found "
        "string",
    )


def test_selecting_only_the_edge_runs_its_upstream_as_setup(project: PipelineProject) -> None:
    _edge(project, CSV, SCHEMA)
    result = project.run("-v", "-k", "compat")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*edges.yaml::{EDGE} PASSED*"])
    assert (project.step_dir("edges", "make") / "output" / "out" / "data.csv").is_file()
    assert not project.step_dir("edges", "use").exists(), "the downstream step is not needed to check the edge"


# --- a bounded sample of a large output -----------------------------------------------------------------

# 3 splits x 40 one-row CSV shards: 120 table files, more than the default sample of 32
SHARDS = """
for split in ("test", "train", "val"):
    os.makedirs(os.path.join(out, split))
    for i in range(40):
        amount = AMOUNTS.get((split, i), "2.5")
        with open(os.path.join(out, split, f"part-{i:05d}.csv"), "w") as handle:
            handle.write(f"id,amount\\n{i},{amount}\\n")
"""


def _shards(project: PipelineProject, amounts: dict[tuple[str, int], str]) -> PipelineProject:
    return _edge(project, f"AMOUNTS = {amounts!r}\n{SHARDS}", SCHEMA)


@pytest.mark.parametrize(
    "planted",
    [("test", 0), ("val", 0), ("val", 39)],
    ids=["first-file", "first-of-a-split", "last-file"],
)
def test_the_sampled_check_catches_a_mismatch_in_a_file_it_always_reads(
    project: PipelineProject, planted: tuple[str, int]
) -> None:
    split, index = planted
    _shards(project, {planted: "unknown"})
    result = _edge_fails_with(
        project,
        f"{split}/part-{index:05d}.csv does not match the downstream input's schema: column 'amount': expected float, "
        "found string",
    )
    result.stdout.fnmatch_lines(["*  - (read * of the 120 table files, a sample: *--cursus-edge-sample 0 reads every*"])


def test_an_empty_table_file_is_caught_wherever_it_is(project: PipelineProject) -> None:
    _edge(project, f"AMOUNTS = {{}}\n{SHARDS}\nopen(os.path.join(out, 'train', 'part-00017.csv'), 'w').close()", SCHEMA)
    _edge_fails_with(project, "unreadable: *train/part-00017.csv: not a readable CSV file (the file is empty)")


def test_a_mismatch_outside_the_sample_passes_unless_every_file_is_read(project: PipelineProject) -> None:
    # part-00017 of train is neither a first file nor on the evenly spread positions of 120 files
    _shards(project, {("train", 17): "unknown"})
    project.run("-v").assert_outcomes(passed=3)

    result = project.run("-v", "--cursus-edge-sample", "0")

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*  - train/part-00017.csv does not match the downstream input's schema: *"])
    assert "a sample" not in result.stdout.str()


def test_sampled_reads_the_first_of_each_format_and_split_and_a_spread_including_the_last() -> None:
    tables = [f"{split}/part-{i:05d}.csv" for split in ("test", "train", "val") for i in range(1000)]
    tables.insert(1500, "train/part-00499.parquet")

    chosen = sampled(tables, 32)

    assert len(chosen) <= 32
    assert chosen == sorted(chosen, key=tables.index), "in the output's order"
    assert {"test/part-00000.csv", "train/part-00000.csv", "val/part-00000.csv"} <= set(chosen)
    assert "train/part-00499.parquet" in chosen
    assert chosen[-1] == "val/part-00999.csv"
    positions = [tables.index(name) for name in chosen]
    gaps = [later - earlier for earlier, later in zip(positions, positions[1:], strict=False)]
    assert max(gaps) <= 3001 // 16, "spread over the whole list, not bunched at its start"
    assert sampled(tables[:32], 32) == tables[:32]
    assert sampled(tables, 0) == tables


# --- a remembered verdict --------------------------------------------------------------------------------


def test_a_cached_edge_is_not_checked_again(project: PipelineProject) -> None:
    _edge(project, CSV, SCHEMA)
    first = project.run("-v")
    first.assert_outcomes(passed=3)
    first.stdout.fnmatch_lines([f"*edges.yaml::{EDGE} PASSED*"])

    again = project.run("-v")

    again.assert_outcomes(passed=3)
    again.stdout.fnmatch_lines(["*edges.yaml::make CACHED*", f"*edges.yaml::{EDGE} CACHED*"])


def test_a_remembered_failure_fails_again_and_says_it_was_remembered(project: PipelineProject) -> None:
    _edge(project, 'open(os.path.join(out, "data.csv"), "w").write("id,total\\n1,2.5\\n")', SCHEMA)
    _edge_fails_with(project, "data.csv does not match the downstream input's schema: missing column 'amount' *")

    again = _edge_fails_with(
        project, "data.csv does not match the downstream input's schema: missing column 'amount' *"
    )

    again.stdout.fnmatch_lines(["*edges.yaml::make CACHED*", "*found by an earlier check of the same cache entry*"])


def test_a_remembered_unreadable_file_names_the_copy_this_run_checked(project: PipelineProject) -> None:
    _edge(project, 'open(os.path.join(out, "data.parquet"), "wb").write(b"PAR1 but not really")')
    _edge_fails_with(project, "unreadable: *edges/make/output/out/data.parquet: *")  # the step's workspace

    again = _edge_fails_with(project, "unreadable: *cursus-steps/entries/*/outputs/out/data.parquet: *")

    assert not [line for line in again.stdout.lines if "unreadable:" in line and "edges/make/output" in line]


def test_a_cached_edge_is_checked_again_when_the_downstream_schema_changes(project: PipelineProject) -> None:
    _edge(project, CSV, SCHEMA)
    project.run().assert_outcomes(passed=3)
    project.contract(
        "User",
        entry_point="user.py",
        inputs={"DATA": {"path": "/opt/ml/processing/input/data", "data": {"columns": {"score": {"type": "float"}}}}},
    )

    result = _edge_fails_with(
        project, "data.csv does not match the downstream input's schema: missing column 'score' *"
    )

    result.stdout.fnmatch_lines(["*edges.yaml::make CACHED*"])
    assert "found by an earlier check" not in result.stdout.str()


def test_a_cached_edge_is_checked_again_when_the_sample_changes(project: PipelineProject) -> None:
    _shards(project, {("train", 17): "unknown"})
    project.run("-v").assert_outcomes(passed=3)

    result = project.run("-v", "--cursus-edge-sample", "0")

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*edges.yaml::make CACHED*", f"*edges.yaml::{EDGE} FAILED*"])
