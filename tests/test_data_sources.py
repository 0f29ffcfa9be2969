"""Root data sources: each variant reaches the script as files, and problems name the source."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from pipeline_project import PipelineProject

# Writes what the script saw at its DATA input to listing.json: {relative path: text or None}.
LISTING_SCRIPT = """
import json, os

def main(input_paths, output_paths, environ_vars, job_args):
    root = input_paths["DATA"]
    seen = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            try:
                seen[os.path.relpath(path, root)] = open(path, encoding="utf-8").read()
            except UnicodeDecodeError:
                seen[os.path.relpath(path, root)] = None
    with open(os.path.join(output_paths["out"], "listing.json"), "w") as handle:
        json.dump(seen, handle)
"""


def _reader_project(project: PipelineProject, data: str, script: str = LISTING_SCRIPT) -> PipelineProject:
    """One step `read` whose DATA input is the data source `source`, declared by ``data``."""
    project.contract("Reader", entry_point="reader.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script("reader.py", script)
    project.scenario(
        "sources",
        "data:\n"
        + textwrap.indent(textwrap.dedent(data).strip("\n"), "  ")
        + "\nsteps:\n  read: {contract: Reader, inputs: {DATA: source}}\n",
    )
    return project


def _listing(project: PipelineProject) -> dict[str, str | None]:
    listing: dict[str, str | None] = json.loads(
        (project.step_dir("sources", "read") / "output" / "out" / "listing.json").read_text()
    )
    return listing


def _tree_digest(root: Path) -> dict[str, str]:
    if root.is_file():
        return {root.name: hashlib.sha256(root.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _no_internal_error(result: pytest.RunResult) -> None:
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    assert "Traceback (most recent call last)" not in output, "a data source problem is the user's, not a crash"


SYNTHETIC = """
source:
  synthetic:
    rows: 50
    seed: 3
    format: {format}
    compression: gzip
    shards: 2
    columns:
      id: {{type: int, unique: true}}
      amount: {{type: float, min: 0, max: 100}}
      country: {{type: category, values: [US, GB]}}
"""

PANDAS_READER = {
    "csv": "pd.read_csv(path)",
    "tsv": "pd.read_csv(path, sep='\\t')",
    "parquet": "pd.read_parquet(path)",
    "jsonl": "pd.read_json(path, lines=True)",
}


@pytest.mark.parametrize(
    ("file_format", "names"),
    [
        ("csv", ["part-00000.csv.gz", "part-00001.csv.gz"]),
        ("tsv", ["part-00000.tsv.gz", "part-00001.tsv.gz"]),
        ("parquet", ["part-00000.parquet", "part-00001.parquet"]),  # gzip is parquet's column codec
        ("jsonl", ["part-00000.jsonl.gz", "part-00001.jsonl.gz"]),
    ],
)
def test_synthetic_source_reaches_the_script_as_gzipped_shards(
    project: PipelineProject, file_format: str, names: list[str]
) -> None:
    script = f"""
    import os
    import pandas as pd

    def main(input_paths, output_paths, environ_vars, job_args):
        root = input_paths["DATA"]
        assert sorted(os.listdir(root)) == {names!r}, sorted(os.listdir(root))
        frames = []
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            frames.append({PANDAS_READER[file_format]})
        table = pd.concat(frames)
        assert len(table) == 50, len(table)
        assert list(table.columns) == ["id", "amount", "country"], list(table.columns)
        assert sorted(table["id"]) == list(range(1, 51))
        assert set(table["country"]) <= {{"US", "GB"}}
    """
    _reader_project(project, SYNTHETIC.format(format=file_format), textwrap.dedent(script))
    project.run().assert_outcomes(passed=1)


def test_same_seed_gives_identical_bytes_across_runs(project: PipelineProject) -> None:
    _reader_project(project, SYNTHETIC.format(format="csv"))
    staged = project.step_dir("sources", "read") / "input" / "DATA"
    project.run("--cursus-no-cache").assert_outcomes(passed=1)
    first = {path.name: path.read_bytes() for path in staged.iterdir()}
    project.run("--cursus-no-cache").assert_outcomes(passed=1)
    second = {path.name: path.read_bytes() for path in staged.iterdir()}
    assert sorted(first) == ["part-00000.csv.gz", "part-00001.csv.gz"]
    assert first == second


def test_file_source_with_a_file_is_presented_in_the_input_directory(project: PipelineProject) -> None:
    (project.root / "fixtures").mkdir()
    (project.root / "fixtures" / "hyperparameters.json").write_text('{"eta": 0.3}')
    _reader_project(project, "source: {file: ../fixtures/hyperparameters.json}")
    project.run().assert_outcomes(passed=1)
    assert _listing(project) == {"hyperparameters.json": '{"eta": 0.3}'}


def test_file_source_with_a_directory_is_presented_with_its_tree(project: PipelineProject) -> None:
    fixtures = project.root / "fixtures" / "raw"
    (fixtures / "2024" / "01").mkdir(parents=True)
    (fixtures / "a.csv").write_text("x\n1\n")
    (fixtures / "2024" / "01" / "b.csv").write_text("x\n2\n")
    _reader_project(project, "source: {file: ../fixtures/raw}")
    project.run().assert_outcomes(passed=1)
    assert _listing(project) == {"a.csv": "x\n1\n", "2024/01/b.csv": "x\n2\n"}


def test_text_source_is_written_to_a_file_named_after_the_source(project: PipelineProject) -> None:
    _reader_project(project, 'source: {text: "id,amount,label"}')
    project.run().assert_outcomes(passed=1)
    assert _listing(project) == {"source": "id,amount,label"}


def test_text_source_with_filename_uses_that_name(project: PipelineProject) -> None:
    _reader_project(project, 'source: {text: "id,amount\\n1,2.5\\n", filename: signature.csv}')
    project.run().assert_outcomes(passed=1)
    assert _listing(project) == {"signature.csv": "id,amount\n1,2.5\n"}


BOTH_VARIANTS = """
source:
  synthetic:
    rows: 3
    columns: {id: {type: int, unique: true}}
  local: ../local_data/
"""


@pytest.fixture
def two_variants(project: PipelineProject) -> PipelineProject:
    (project.root / "local_data").mkdir()
    (project.root / "local_data" / "sample.csv").write_text("id\n100\n200\n")
    return _reader_project(project, BOTH_VARIANTS)


def test_synthetic_variant_is_the_default(two_variants: PipelineProject) -> None:
    two_variants.run().assert_outcomes(passed=1)
    assert list(_listing(two_variants)) == ["part-00000.csv"]


def test_local_variant_is_used_with_cursus_source_local(two_variants: PipelineProject) -> None:
    two_variants.run("--cursus-source", "local").assert_outcomes(passed=1)
    assert _listing(two_variants) == {"sample.csv": "id\n100\n200\n"}


def test_a_source_lacking_the_selected_variant_is_an_error_naming_it(project: PipelineProject) -> None:
    _reader_project(
        project,
        """
        source:
          synthetic:
            rows: 3
            columns: {id: {type: int}}
          s3: s3://bucket/data/
        """,
    )
    result = project.run("--cursus-source", "local")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*scenarios/sources.yaml:*data.source*'local' variant*only has synthetic, s3*"])
    _no_internal_error(result)


def test_selecting_the_s3_variant_without_credentials_fails_clearly_naming_the_source(
    project: PipelineProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(project.root / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project.root / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    _reader_project(
        project,
        """
        source:
          synthetic:
            rows: 3
            columns: {id: {type: int}}
          s3: s3://bucket/data/
        """,
    )
    result = project.run("--cursus-source", "s3")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*data.source.s3: no AWS credentials found to read s3://bucket/data/*"])
    _no_internal_error(result)


def test_missing_file_source_is_a_collection_error_naming_the_source_and_the_resolved_path(
    project: PipelineProject,
) -> None:
    _reader_project(project, "source: {file: ../fixtures/missing.csv}")
    result = project.run()
    result.assert_outcomes(errors=1)  # found before any step runs
    resolved = project.root / "fixtures" / "missing.csv"
    result.stdout.fnmatch_lines(
        [f"*scenarios/sources.yaml:*: data.source.file: '../fixtures/missing.csv' not found (resolved to {resolved}*"]
    )
    _no_internal_error(result)


def test_infeasible_synthetic_spec_is_reported_clearly(project: PipelineProject) -> None:
    _reader_project(
        project,
        """
        source:
          synthetic:
            rows: 100
            columns: {id: {type: int, unique: true, min: 0, max: 10}}
        """,
    )
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*scenarios/sources.yaml:*data.source.synthetic*11 unique*'id'*rows=100*"])
    _no_internal_error(result)


def test_user_source_files_are_byte_identical_after_the_run(project: PipelineProject) -> None:
    fixtures = project.root / "fixtures"
    (fixtures / "tree").mkdir(parents=True)
    (fixtures / "tree" / "a.csv").write_text("id\n1\n")
    (fixtures / "single.csv").write_text("id\n2\n")
    (project.root / "local_data").mkdir()
    (project.root / "local_data" / "c.csv").write_text("id\n3\n")
    sources = [fixtures / "tree", fixtures / "single.csv", project.root / "local_data"]
    before = [_tree_digest(path) for path in sources]
    project.contract(
        "Vandal",
        entry_point="vandal.py",
        inputs={name: {"path": f"/opt/ml/processing/input/{name.lower()}"} for name in ("TREE", "SINGLE", "LOCAL")},
    )
    project.script(
        "vandal.py",
        """
        import os

        def main(input_paths, output_paths, environ_vars, job_args):
            for root in input_paths.values():
                for directory, _, names in os.walk(root):
                    for name in names:
                        try:
                            with open(os.path.join(directory, name), "w") as handle:
                                handle.write("overwritten")
                        except PermissionError:
                            pass
        """,
    )
    project.scenario(
        "sources",
        """
        data:
          tree: {file: ../fixtures/tree}
          single: {file: ../fixtures/single.csv}
          lake: {local: ../local_data}
        steps:
          vandal: {contract: Vandal, inputs: {TREE: tree, SINGLE: single, LOCAL: lake}}
        """,
    )
    project.run("--cursus-source", "local")
    assert [_tree_digest(path) for path in sources] == before


@pytest.mark.parametrize(
    "spec",
    [
        {"synthetic": {"rows": 2, "columns": {"id": {"type": "int"}}}},
        {"local": "data.csv"},
        {"s3": "s3://bucket/data/"},
        {"file": "data.csv"},
        {"text": "id\n1\n"},
        {"custom": {"kind": "sql_query"}},
    ],
    ids=lambda spec: next(iter(spec)),
)
def test_every_variant_a_scenario_can_declare_is_known_to_the_sources_module(tmp_path: Path, spec: dict) -> None:
    from pytest_cursus.formats.scenario_file import DataSource
    from pytest_cursus.run.sources import SourceContext, source_variant

    source = DataSource.model_validate(spec)
    (variant,) = source.variants
    found = source_variant("source", source, variant, SourceContext(tmp_path / "scenario.yaml", tmp_path / "_data"))
    assert found.kind == variant
    assert found.label == f"data.source.{variant}"
