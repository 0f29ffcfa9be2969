"""Content-addressed store of step outputs, shared by every process of a run and across runs.

Layout under the cache root::

    entries/<key>/record.json      the StepResult and key parts (written last)
    entries/<key>/files.json       size, SHA-256 and times of each output file (cache/entry_files.py)
    entries/<key>/outputs/<name>/  the step's outputs
    entries/<key>/edges/<check>.json  the verdict of an edge check of these outputs (see edge_verdict)
    latest/<digest>.json           the key a step (scenario and step name) last stored, to tell why it ran again
    locks/<key>.lock               flock'ed while a process looks up, runs or stores the step
    sessions.lock                  flock'ed shared by every session using the cache, exclusively by eviction
    tmp/                           entries being written; renamed into entries/ when complete

An entry is complete or absent: it is built under ``tmp/`` and renamed into place, so a run
killed half way leaves at worst a stray temporary directory, which eviction removes. A
process that needs a step takes the step's lock first; a second process needing the same step
waits on the lock and then finds the entry, so a step runs once per run (xdist).

Outputs are copied as reflinks or sparse copies (execution/sparse_files.py), and an entry's size
is what it takes on disk (allocated blocks), so a 5 GB sparse file of a few written bytes counts for
kilobytes. Outputs that would take more than the cap are not stored at all (checked before copying),
nor is an entry the cache's disk has no room for: a :class:`CacheEntryNotStored` warning says which,
and the step keeps its outcome.

Failed results are stored too, tagged with the run id, so other workers of the *same* run
report the same failure instead of running the step again; a later run ignores them.

An entry whose files no longer match its ``files.json`` (edited, truncated, added to) is a miss,
with a :class:`CacheEntryChanged` warning: the step runs again and its entry is replaced.

A session's steps read entries for the whole session (a downstream step is staged from its
upstream's entry), so each process using the cache holds ``sessions.lock`` shared until its session
ends, as the S3 download cache does while downloading; eviction takes it exclusively without
waiting, and evicts nothing while another session holds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pytest_cursus.cache.entry_files import changed_files, output_digests, record_files, write_files
from pytest_cursus.errors import is_disk_full
from pytest_cursus.execution.sparse_files import allocated_bytes, copy_file_data
from pytest_cursus.execution.workspace import make_read_only, make_writable
from pytest_cursus.project_root import STEP_CACHE_DEFAULT_MAX_MB as DEFAULT_MAX_MB

# The record model (pydantic, with StepResult) is imported by the methods that read or write
# records: eviction, which the xdist controller runs at the end of a session, needs only sizes.
if TYPE_CHECKING:
    from pytest_cursus.cache.key import StepKey
    from pytest_cursus.cache.record import CacheRecord
    from pytest_cursus.results import StepResult

STALE_TMP_SECONDS = 3600
SESSIONS_LOCK = "sessions.lock"
EDGES_DIR = "edges"
LATEST_DIR = "latest"

# this process's shared hold on each cache root it uses (one per root: flock locks belong to an
# open file, so two handles of one process would block each other's eviction)
_SESSION_HOLDS: dict[str, BinaryIO] = {}


class CacheEntryChanged(UserWarning):
    """A step cache entry's files changed on disk since it was stored: it is not served."""


class CacheEntryNotStored(UserWarning):
    """A step's result was not stored: its outputs are larger than the cap, or the cache's disk is full."""


class OutputCache:
    def __init__(
        self,
        root: Path,
        run_id: str,
        *,
        reuse_earlier_runs: bool = True,
        max_bytes: int | None = DEFAULT_MAX_MB * 2**20,
        no_reuse_reason: str = "--cursus-no-cache",
    ) -> None:
        self.root = root
        self.run_id = run_id
        self.reuse_earlier_runs = reuse_earlier_runs
        self.no_reuse_reason = no_reuse_reason  # why earlier runs' entries are not reused: said of each step run
        self.max_bytes = max_bytes
        for directory in (self.entries_dir, self.locks_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._hold()

    def _hold(self) -> BinaryIO:
        """This process's shared lock on the cache, taken once and kept until :meth:`end_session`."""
        name = os.path.realpath(self.root)
        handle = _SESSION_HOLDS.get(name)
        if handle is None or handle.closed:
            handle = open(self.root / SESSIONS_LOCK, "a+b")  # held past this call, until end_session()
            fcntl.flock(handle, fcntl.LOCK_SH)  # waits only for an eviction in progress
            _SESSION_HOLDS[name] = handle
        return handle

    def end_session(self) -> None:
        """Let go of the shared lock: this process reads no more entries (until it uses the cache again)."""
        handle = _SESSION_HOLDS.pop(os.path.realpath(self.root), None)
        if handle is not None:
            handle.close()  # closing the file releases its flock

    @property
    def entries_dir(self) -> Path:
        return self.root / "entries"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @contextmanager
    def claim(self, key: str) -> Iterator[None]:
        """Hold the step's lock: other processes wanting the same step wait here.

        The kernel releases a flock when its process dies, so a killed worker never leaves a
        lock held.
        """
        with open(self.locks_dir / f"{key}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def lookup(self, key: str) -> StepResult | None:
        """The stored result (outputs pointing into the entry), if this run may use it."""
        record = self._read(key)
        if record is None:
            return None
        same_run = record.run_id == self.run_id
        if not same_run and not (self.reuse_earlier_runs and record.result.passed):
            return None
        self._hold()
        entry = self.entries_dir / key
        changed = changed_files(entry, entry / "outputs")
        if changed is not None:
            warnings.warn(
                CacheEntryChanged(
                    f"step cache entry {entry} was changed on disk since it was stored: {changed}; "
                    f"it is not used, the step {record.result.step!r} runs again and replaces it"
                ),
                stacklevel=2,
            )
            return None
        os.utime(entry)  # last use, for eviction
        return record.result.model_copy(update={"cached": True, "produced_by_run": record.run_id})

    def store(self, key: StepKey, result: StepResult) -> None:
        """Save ``result`` and its outputs under ``key``; replaces an entry that may not be reused.

        Not stored, with a :class:`CacheEntryNotStored` warning, and the step keeps its outcome:
        outputs that would take more than the cap on disk (checked before copying anything), and
        an entry the cache's disk has no room for (its half-written copy is removed).
        """
        if result.passed and self.max_bytes is not None:
            needed = sum(allocated_bytes(Path(source)) for source in result.outputs.values() if Path(source).exists())
            if needed > self.max_bytes:
                warnings.warn(
                    CacheEntryNotStored(
                        f"{result.step}'s outputs take {_size_text(needed)}, more than the step cache's cap of "
                        f"{_size_text(self.max_bytes)}; not cached (raise --cursus-cache-max-mb, or cache_max_mb "
                        f"of the notebook API, to {math.ceil(needed / 2**20)} or more to keep them)"
                    ),
                    stacklevel=2,
                )
                return
        staging = self.tmp_dir / f"{key.digest}-{uuid.uuid4().hex}"
        self._hold()
        try:
            self._write_entry(staging, key, result)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            warnings.warn(
                CacheEntryNotStored(
                    f"step cache full at {self.root}: {result.step} not stored (no space left on its disk while "
                    f"writing the entry; what was written is removed); the step keeps its outcome. Free space "
                    "there, lower --cursus-cache-max-mb, or move the cache with --cursus-cache-dir"
                ),
                stacklevel=2,
            )
        finally:
            if staging.exists():
                _remove(staging)

    def _write_entry(self, staging: Path, key: StepKey, result: StepResult) -> None:
        """Build the entry in ``staging`` and rename it into place."""
        final = self.entries_dir / key.digest
        outputs: dict[str, str] = {}
        staging.mkdir(parents=True)
        if result.passed:
            for name, source in result.outputs.items():
                stored = _copy_output(Path(source), staging / "outputs" / name)
                outputs[name] = str(final / stored.relative_to(staging))
        from pytest_cursus.cache.record import CacheRecord

        stored_result = result.model_copy(update={"outputs": outputs or result.outputs, "cache_key": key.digest})
        record = CacheRecord(
            key=key.digest,
            run_id=self.run_id,
            created=time.time(),
            bytes=allocated_bytes(staging / "outputs") if outputs else 0,
            parts=key.parts,
            result=stored_result,
        )
        make_read_only(staging / "outputs")
        write_files(staging, record_files(staging / "outputs"))  # after the chmod, which moves ctimes
        (staging / "record.json").write_text(record.model_dump_json(), encoding="utf-8")
        if final.exists():
            _remove(final)  # a failed or foreign-run entry we were not allowed to reuse
        os.rename(staging, final)
        self._note_latest(result.scenario, result.step, key.digest)

    def record(self, key: str) -> CacheRecord | None:
        """Entry ``key``'s record (key parts and result) as stored, whether or not this run may use it."""
        return self._read(key)

    def stored_output_digests(self, key: str, run_id: str | None = None) -> dict[str, str] | None:
        """The content digest of each output of entry ``key`` (from its ``files.json``: nothing is
        hashed), if it holds a passed result stored by run ``run_id`` (any run, when None); else None."""
        try:  # the two fields only: validating the whole record (an output listing of 100,000 files) costs
            record = json.loads((self.entries_dir / key / "record.json").read_bytes())
            stored_by, outcome = record["run_id"], record["result"]["outcome"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if (run_id is not None and stored_by != run_id) or outcome != "passed":
            return None  # not the result the caller has: an entry left by another run, or a failure
        return output_digests(self.entries_dir / key)

    def latest_record(self, scenario: str, step: str) -> CacheRecord | None:
        """The record of the entry ``step`` of ``scenario`` last stored, if it is still in the cache."""
        try:
            latest = json.loads((self.root / LATEST_DIR / f"{_step_name_digest(scenario, step)}.json").read_bytes())
        except (OSError, ValueError):
            return None
        key = latest.get("key") if isinstance(latest, dict) else None
        return self._read(key) if isinstance(key, str) and key.isalnum() else None

    def _note_latest(self, scenario: str, step: str, key: str) -> None:
        """Point the step at the entry just stored; what it says only explains a run, so a failure
        to write it (a full disk) leaves the entry stored all the same."""
        directory = self.root / LATEST_DIR
        name = _step_name_digest(scenario, step)
        partial = directory / f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            directory.mkdir(exist_ok=True)
            partial.write_text(json.dumps({"scenario": scenario, "step": step, "key": key}), encoding="utf-8")
            os.replace(partial, directory / f"{name}.json")
        except OSError:
            partial.unlink(missing_ok=True)

    def edge_verdict(self, key: str, check: str) -> list[str] | None:
        """The problems an earlier edge check ``check`` found in entry ``key``'s outputs, or None if
        there is none (or it cannot be read). ``check`` names what was checked against what (a digest
        of the output's name, the downstream input's schema, the sample; run/pipeline.py); the
        entry's files are the ones verified by :meth:`lookup` before it was served, and an entry
        stored again (a replaced entry) starts with no verdict."""
        try:
            remembered = json.loads((self.entries_dir / key / EDGES_DIR / f"{check}.json").read_bytes())
        except (OSError, ValueError):
            return None
        problems = remembered.get("problems") if isinstance(remembered, dict) else None
        if not isinstance(problems, list) or not all(isinstance(problem, str) for problem in problems):
            return None
        return problems

    def remember_edge_verdict(self, key: str, check: str, problems: list[str]) -> None:
        """Keep the verdict of edge check ``check`` of entry ``key``'s outputs for later sessions."""
        entry = self.entries_dir / key
        # under the step's lock: the entry cannot be replaced or evicted while its verdict is written
        with self.claim(key):
            if not (entry / "record.json").is_file():
                return  # evicted, or never stored (a result of --cursus-debug): nothing to attach it to
            directory = entry / EDGES_DIR
            directory.mkdir(exist_ok=True)
            partial = directory / f".{check}.{uuid.uuid4().hex}.tmp"
            partial.write_text(json.dumps({"problems": problems, "checked": time.time()}), encoding="utf-8")
            os.replace(partial, directory / f"{check}.json")

    def evict(self) -> list[str]:
        """Drop least recently used entries until the cache fits ``max_bytes``; sweep stale temps.

        Nothing is evicted while another session uses the cache (holds ``sessions.lock``)."""
        handle = self._hold()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(handle, fcntl.LOCK_SH)  # a failed conversion may have dropped our own shared lock
            return []
        try:
            return self._evict()
        finally:
            fcntl.flock(handle, fcntl.LOCK_SH)

    def _evict(self) -> list[str]:
        now = time.time()
        for stray in self.tmp_dir.iterdir():
            try:
                if now - stray.stat().st_mtime > STALE_TMP_SECONDS:
                    _remove(stray)
            except FileNotFoundError:
                pass
        if self.max_bytes is None:
            return []
        entries = []
        for entry in self.entries_dir.iterdir():
            try:
                used = entry.stat().st_mtime
            except FileNotFoundError:
                continue
            entries.append((used, entry.name, _recorded_size(entry)))
        total = sum(size for _, _, size in entries)
        evicted = []
        for _, key, size in sorted(entries):
            if total <= self.max_bytes:
                break
            if self._remove_unless_busy(key):
                total -= size
                evicted.append(key)
        return evicted

    def _remove_unless_busy(self, key: str) -> bool:
        with open(self.locks_dir / f"{key}.lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # in use by a running step
            try:
                _remove(self.entries_dir / key)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        (self.locks_dir / f"{key}.lock").unlink(missing_ok=True)
        return True

    def _read(self, key: str) -> CacheRecord | None:
        from pytest_cursus.cache.record import CacheRecord

        try:
            return CacheRecord.model_validate_json((self.entries_dir / key / "record.json").read_bytes())
        except (OSError, ValueError):  # pydantic's ValidationError is a ValueError
            return None  # absent, or written by an incompatible version: a miss


def _recorded_size(entry: Path) -> int:
    """The bytes an entry's record says it holds; 0 for a record that cannot be read, as for a
    half-deleted entry (only its size matters here, not that the rest of the record is valid)."""
    try:
        size = json.loads((entry / "record.json").read_bytes()).get("bytes", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return size if isinstance(size, int) else 0


def _copy_output(source: Path, target_dir: Path) -> Path:
    """Copy an output (directory, or single file for a file channel); return its stored path.

    A reflink where the file system can make one, else a copy that keeps a sparse file's holes:
    never a hard link, so the entry does not change when the workspace's file is written to later."""
    target_dir.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        copy_file_data(source, target_dir / source.name)
        return target_dir / source.name
    if source.is_dir():
        shutil.copytree(source, target_dir, dirs_exist_ok=True, symlinks=False, copy_function=_copy_data)
    return target_dir


def _copy_data(source: str, target: str) -> str:
    copy_file_data(source, target)
    return target


def _step_name_digest(scenario: str, step: str) -> str:
    """A file name for a step of a scenario, whatever characters their names hold."""
    return hashlib.sha256(json.dumps([scenario, step]).encode("utf-8")).hexdigest()


def _size_text(size: int) -> str:
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"


def _remove(path: Path) -> None:
    make_writable(path)
    shutil.rmtree(path, ignore_errors=True)
