"""A step cache entry is served only as it was stored, and only while no other session reads it
is it evicted."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline_project import PipelineProject
from pytest_cursus.cache.key import StepKey
from pytest_cursus.cache.store import CacheEntryChanged, OutputCache
from pytest_cursus.results import StepResult

SCRIPT = """
import os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.environ["RUN_LOG"], "a") as log:
        log.write(environ_vars["STEP_NAME"] + "\\n")
    with open(os.path.join(output_paths["out"], "data.txt"), "w") as handle:
        handle.write("value=" + environ_vars["STEP_NAME"])
"""


@pytest.fixture
def two_steps(project: PipelineProject) -> PipelineProject:
    project.contract("Step", entry_point="step.py")
    project.script("step.py", SCRIPT)
    log = project.root / "runs.log"
    project.scenario(
        "pair",
        f"""
        defaults: {{env: {{RUN_LOG: {log}}}}}
        steps:
          a: {{contract: Step, env: {{STEP_NAME: a}}}}
          b: {{contract: Step, env: {{STEP_NAME: b}}}}
        """,
    )
    project.run().assert_outcomes(passed=2)
    log.write_text("")
    return project


def entry_file(project: PipelineProject, content: str) -> Path:
    entries = project.root / ".pytest_cache" / "d" / "cursus-steps" / "entries"
    (found,) = [f for f in entries.glob("*/outputs/out/data.txt") if f.read_text() == content]
    return found


def edit(path: Path, content: str) -> None:
    path.chmod(0o644)  # entries are stored read-only: an edit is deliberate
    path.write_text(content)


def test_an_entry_edited_on_disk_is_a_miss_with_a_warning_and_the_step_runs_again(two_steps: PipelineProject) -> None:
    stored = entry_file(two_steps, "value=a")
    edit(stored, "value=X")  # same size: only the digest can tell
    result = two_steps.run("-W", "always")
    result.assert_outcomes(passed=2)
    assert (two_steps.root / "runs.log").read_text().split() == ["a"]  # b's entry is untouched: still cached
    result.stdout.fnmatch_lines(
        [
            "*CacheEntryChanged: step cache entry *"
            f"{stored.parents[2].name} was changed on disk since it was stored: "
            "out/data.txt has other content than when stored*",
        ]
    )
    assert entry_file(two_steps, "value=a").read_text() == "value=a"  # the entry was replaced


def stored_entry(tmp_path: Path) -> tuple[StepKey, Path]:
    """An entry of run-1 whose one output file, out/data.txt, holds ``0123456789``; and that file."""
    outputs = tmp_path / "step_out"
    outputs.mkdir()
    (outputs / "data.txt").write_text("0123456789")
    cache = OutputCache(tmp_path / "cache", "run-1")
    key = StepKey(digest="k" * 64, parts={})
    cache.store(
        key,
        StepResult(scenario="s", step="a", outcome="passed", workspace=str(tmp_path), outputs={"out": str(outputs)}),
    )
    return key, cache.entries_dir / key.digest / "outputs" / "out" / "data.txt"


def test_a_truncated_added_or_removed_file_makes_the_entry_a_miss(tmp_path: Path) -> None:
    key, stored = stored_entry(tmp_path)
    later = OutputCache(tmp_path / "cache", "run-2")
    assert later.lookup(key.digest) is not None
    edit(stored, "01234")
    with pytest.warns(CacheEntryChanged, match="out/data.txt has 5 bytes, 10 when stored"):
        assert later.lookup(key.digest) is None
    edit(stored, "0123456789")
    assert later.lookup(key.digest) is not None  # rewritten as it was: the digest matches again
    (stored.parent / "extra.txt").write_text("x")
    with pytest.warns(CacheEntryChanged, match="out/extra.txt was added"):
        assert later.lookup(key.digest) is None
    (stored.parent / "extra.txt").unlink()
    stored.unlink()
    with pytest.warns(CacheEntryChanged, match="out/data.txt was removed"):
        assert later.lookup(key.digest) is None


def test_an_entry_stored_with_plain_sha256_digests_is_still_checked_by_them(tmp_path: Path) -> None:
    """Entries stored before digests by blocks (execution/sparse_files.py): a file whose times moved
    is hashed the way its digest was made."""
    key, stored = stored_entry(tmp_path)
    files = stored.parents[2] / "files.json"
    table = json.loads(files.read_text())
    table["out/data.txt"][1] = hashlib.sha256(b"0123456789").hexdigest()
    files.write_text(json.dumps(table))
    os.utime(stored, ns=(1, 1))  # times moved, content as stored
    later = OutputCache(tmp_path / "cache", "run-2")
    assert later.lookup(key.digest) is not None
    edit(stored, "0123456780")
    with pytest.warns(CacheEntryChanged, match="same size, SHA-256 differs"):
        assert later.lookup(key.digest) is None


def test_a_copied_entry_is_hashed_once_then_known_by_its_new_times(tmp_path: Path) -> None:
    outputs = tmp_path / "step_out"
    (outputs / "sub").mkdir(parents=True)
    (outputs / "data.txt").write_text("0123456789")
    (outputs / "sub" / "more.txt").write_text("abc")
    key = StepKey(digest="c" * 64, parts={})
    result = StepResult(
        scenario="s", step="a", outcome="passed", workspace=str(tmp_path), outputs={"out": str(outputs)}
    )
    storing = OutputCache(tmp_path / "cache", "run-1")
    storing.store(key, result)
    storing.end_session()
    shutil.copytree(tmp_path / "cache", tmp_path / "copy")  # as a CI cache restored: every ctime moves
    entry = tmp_path / "copy" / "entries" / key.digest
    recorded = json.loads((entry / "files.json").read_text())

    copied = OutputCache(tmp_path / "copy", "run-2")
    assert copied.lookup(key.digest) is not None  # the same content: served

    now = json.loads((entry / "files.json").read_text())
    assert sorted(now) == sorted(recorded) == ["out/data.txt", "out/sub/more.txt"]
    for relative, (size, digest, mtime_ns, ctime_ns) in now.items():
        info = (entry / "outputs" / relative).lstat()
        assert (mtime_ns, ctime_ns) == (info.st_mtime_ns, info.st_ctime_ns), "the next check hashes nothing"
        assert [size, digest] == recorded[relative][:2]
        assert ctime_ns != recorded[relative][3]
    edit(entry / "outputs" / "out" / "data.txt", "9876543210")  # still noticed after the times were renewed
    with pytest.warns(CacheEntryChanged, match="out/data.txt has other content than when stored"):
        assert copied.lookup(key.digest) is None
    copied.end_session()


def test_eviction_waits_for_no_one_and_spares_the_entries_of_a_session_still_running(tmp_path: Path) -> None:
    """Two real processes: a session that holds the cache, and one that evicts with a cap of 0."""
    root = tmp_path / "cache"
    outputs = tmp_path / "step_out"
    outputs.mkdir()
    (outputs / "data.txt").write_text("x" * 1000)
    key = StepKey(digest="e" * 64, parts={})
    storing = OutputCache(root, "run-0")
    result = StepResult(
        scenario="s", step="a", outcome="passed", workspace=str(tmp_path), outputs={"out": str(outputs)}
    )
    storing.store(key, result)
    storing.end_session()  # the storing session is over: this test process holds nothing
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pathlib import Path
                from pytest_cursus.cache.store import OutputCache
                cache = OutputCache(Path({str(root)!r}), "run-reader")
                result = cache.lookup({key.digest!r})
                print("holding", flush=True)
                sys.stdin.readline()  # the other session evicts meanwhile
                print(Path(result.outputs["out"], "data.txt").read_text()[:3], flush=True)
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "holding"
        evicting = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from pathlib import Path\nfrom pytest_cursus.cache.store import OutputCache\n"
                f"print(OutputCache(Path({str(root)!r}), 'run-evict', max_bytes=0).evict())",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert evicting.stdout.strip() == "[]"
        reader.stdin.write("go\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "xxx"
    finally:
        reader.communicate(timeout=60)
    assert reader.returncode == 0
    after = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from pathlib import Path\nfrom pytest_cursus.cache.store import OutputCache\n"
            f"print(OutputCache(Path({str(root)!r}), 'run-evict', max_bytes=0).evict())",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert after.stdout.strip() == str([key.digest])  # once the reader ended, its entry may go
