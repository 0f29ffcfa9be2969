"""A sparse output (a file with holes) is copied as sparse, counted for the space it really takes,
and hashed right: a 5 GB file of a few written bytes is a few kilobytes in the step cache, stays
under the cap, and is not evicted at the end of every run."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.cache.key import StepKey
from pytest_cursus.cache.store import CacheEntryNotStored, OutputCache
from pytest_cursus.execution.sparse_files import allocated_bytes, block_digest, file_sha256
from pytest_cursus.execution.workspace import fingerprint, stage_input
from pytest_cursus.results import StepResult

GB = 2**30
# offset -> bytes written; the rest of the file is holes
WRITTEN = {0: b"head", 2 * GB: b"middle", 5 * GB - 4: b"tail"}

SPARSE_WRITER = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.path.join(output_paths["out"], "sparse.bin"), "wb") as handle:
        handle.truncate(5 * 2**30)
        handle.write(b"head")
"""


def sparse_file(path: Path, size: int = 5 * GB, written: dict[int, bytes] = WRITTEN) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset, data in written.items():
            handle.seek(offset)
            handle.write(data)
    if allocated_bytes(path) >= size:
        pytest.skip(f"the file system of {path} does not keep holes (a sparse file takes its whole size)")
    return path


def read_at(path: Path, offset: int, count: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(count)


def passed_step(outputs: Path) -> StepResult:
    return StepResult(
        scenario="s", step="sparse", outcome="passed", workspace=str(outputs), outputs={"out": str(outputs)}
    )


def test_a_sparse_output_is_stored_taking_its_allocated_size_and_counted_so_against_the_cap(tmp_path: Path) -> None:
    source = sparse_file(tmp_path / "step_out" / "sparse.bin")
    cache = OutputCache(tmp_path / "cache", "run-1", max_bytes=2**20)  # 1 MB: far below its 5 GB
    key = StepKey(digest="s" * 64, parts={})
    cache.store(key, passed_step(source.parent))
    entry = cache.entries_dir / key.digest
    assert (entry / "record.json").is_file(), "stored: it takes kilobytes, not the 5 GB it reads as"
    stored = entry / "outputs" / "out" / "sparse.bin"
    assert stored.stat().st_size == 5 * GB
    assert allocated_bytes(stored) < 2**20
    assert json.loads((entry / "record.json").read_text())["bytes"] == allocated_bytes(stored), "eviction counts this"
    assert {offset: read_at(stored, offset, len(data)) for offset, data in WRITTEN.items()} == WRITTEN
    assert read_at(stored, GB, 8) == bytes(8), "a hole reads as zeros"
    with open(source, "r+b") as handle:  # the workspace's file written after storing: the entry keeps its data
        handle.write(b"HEAD")
    assert read_at(stored, 0, 4) == b"head"
    assert OutputCache(tmp_path / "cache", "run-2").lookup(key.digest) is not None


def test_outputs_taking_more_than_the_cap_are_not_stored_with_a_warning_naming_the_option(tmp_path: Path) -> None:
    outputs = tmp_path / "step_out"
    outputs.mkdir()
    (outputs / "dense.bin").write_bytes(os.urandom(3 * 2**20))
    cache = OutputCache(tmp_path / "cache", "run-1", max_bytes=2**20)
    key = StepKey(digest="d" * 64, parts={})
    refused = r"sparse's outputs take 3\.0 MB, more than the step cache's cap of 1\.0 MB; not cached \(raise --cursus"
    with pytest.warns(CacheEntryNotStored, match=refused):
        cache.store(key, passed_step(outputs))
    assert cache.lookup(key.digest) is None
    assert list(cache.tmp_dir.iterdir()) == [] and list(cache.entries_dir.iterdir()) == []


def test_staging_a_sparse_file_into_a_workspace_keeps_its_holes(tmp_path: Path) -> None:
    source = sparse_file(tmp_path / "upstream" / "sparse.bin")
    target = tmp_path / "workspace" / "input" / "DATA"
    stage_input(source.parent, target, as_file=False)
    staged = target / "sparse.bin"
    assert staged.stat().st_size == 5 * GB and allocated_bytes(staged) < 2**20
    assert {offset: read_at(staged, offset, len(data)) for offset, data in WRITTEN.items()} == WRITTEN


@pytest.mark.parametrize(
    "written",
    [
        {0: b"a" * 5000, 20 * 2**20: b"b", 40 * 2**20 - 1: b"z"},  # ends in data
        {3 * 2**20 + 17: b"middle"},  # starts and ends in a hole
        {},  # all hole
    ],
    ids=["ends-in-data", "holes-at-both-ends", "all-hole"],
)
def test_digests_of_a_sparse_file_depend_on_its_content_not_on_where_its_holes_are(
    tmp_path: Path, written: dict[int, bytes]
) -> None:
    size = 40 * 2**20 + 3  # the last block is a short one
    path = sparse_file(tmp_path / "sparse.bin", size=size, written=written)
    content = path.read_bytes()
    dense = tmp_path / "dense.bin"
    dense.write_bytes(content)  # the same content, every zero written
    assert file_sha256(path) == file_sha256(dense) == hashlib.sha256(content).hexdigest()
    assert fingerprint(path) == {"sparse.bin": (size, hashlib.sha256(content).hexdigest())}
    assert block_digest(path) == block_digest(dense)
    with open(dense, "r+b") as handle:  # one byte more, where the sparse file has a hole
        handle.seek(30 * 2**20)
        handle.write(b"\x01")
    assert block_digest(path) != block_digest(dense)


def test_a_step_writing_a_5_gb_sparse_output_is_cached_across_runs(project: PipelineProject) -> None:
    """The default cap is 2048 MB: counted by its apparent size, the entry would be evicted at the
    end of every run."""
    project.contract("Sparse", entry_point="sparse.py")
    project.script("sparse.py", SPARSE_WRITER)
    project.scenario("holes", "steps:\n  write: {contract: Sparse}\n")
    project.run().assert_outcomes(passed=1)
    (entry,) = (project.root / ".pytest_cache" / "d" / "cursus-steps" / "entries").iterdir()
    stored = entry / "outputs" / "out" / "sparse.bin"
    if allocated_bytes(stored) >= GB:
        pytest.skip(f"the file system of {stored} does not keep holes")
    result = project.run("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["scenarios/holes.yaml::write CACHED*"])
