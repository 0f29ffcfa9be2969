"""``files.json`` of a step cache entry: each output file's size, digest (SHA-256) and the times it had
once stored, so an entry edited on disk is noticed before it is served.

Kept out of ``record.json``: eviction (run by the xdist controller, without the engine) reads every
entry's record for its size, and an entry may hold 100,000 files.

Checking an entry (:func:`changed_files`) costs a ``stat`` per file; a file is read and hashed again
only when its size is unchanged but its mtime or ctime is not what was recorded. Any write moves the
ctime, and the ctime cannot be set back by a user (only the clock can), so an unchanged ctime and
size mean unchanged content, and an entry nobody touched is served without reading it (see
docs/caching.md for what each costs). A file hashed again with the same digest has its new times
recorded: an entry whose ctimes all moved at once (a copy of the cache) is read once, not at every
lookup. The digest runs over 1 MiB blocks, an all-zero one counting as one byte: a sparse file's
holes are neither read nor hashed (execution/sparse_files.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from pytest_cursus.execution.sparse_files import BLOCK_DIGEST_PREFIX, block_digest, file_sha256

FILES_NAME = "files.json"

# relative path (posix) -> [size, digest, mtime_ns, ctime_ns]; digest: "blocks:<sha256>", or a plain sha256
# in entries stored before
FileTable = dict[str, list[int | str]]


def record_files(outputs_dir: Path) -> FileTable:
    """Size, digest and times of every file under ``outputs_dir``, as stored (call it last: after
    the modes are set, since a chmod moves the ctime)."""
    table: FileTable = {}
    for relative, entry in _files(outputs_dir):
        info = entry.stat(follow_symlinks=False)
        table[relative] = [info.st_size, block_digest(Path(entry.path)), info.st_mtime_ns, info.st_ctime_ns]
    return table


def output_digests(entry: Path) -> dict[str, str] | None:
    """The content digest of each output of the entry (``outputs/<name>/``), from its ``files.json``:
    what a downstream step's key takes for an input, so no file is read or hashed again. None when
    ``files.json`` is missing or unreadable."""
    try:
        table: FileTable = json.loads((entry / FILES_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(table, dict):
        return None
    per_output: dict[str, list[list[int | str]]] = {}
    for relative, (size, digest, *_) in sorted(table.items()):
        name, _, inside = relative.partition("/")
        per_output.setdefault(name, []).append([inside, size, digest])
    outputs_dir = entry / "outputs"
    try:  # an output that wrote no file is an empty directory: in no row of the table, still an output
        names = [item.name for item in os.scandir(outputs_dir) if item.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        names = []
    return {name: _listing_digest(per_output.get(name, [])) for name in sorted({*names, *per_output})}


def _listing_digest(rows: list[list[int | str]]) -> str:
    """A digest of an output's files (path inside the output, size, digest), in path order."""
    return "content:" + hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode("utf-8")).hexdigest()


def write_files(entry: Path, table: FileTable, name: str = FILES_NAME) -> None:
    (entry / name).write_text(json.dumps(table, separators=(",", ":")), encoding="utf-8")


def changed_files(entry: Path, outputs_dir: Path) -> str | None:
    """What differs between the entry's files and ``files.json`` (first difference), or None.

    A file whose times moved but whose digest did not (a copy of the cache, an archive restored) has
    its new times recorded, so the next check of the entry reads nothing again.
    """
    try:
        table: FileTable = json.loads((entry / FILES_NAME).read_bytes())
    except (OSError, ValueError):
        return f"its {FILES_NAME} is missing or unreadable"
    if not isinstance(table, dict):
        return f"its {FILES_NAME} is not a mapping"
    found = 0
    moved = False
    for relative, item in _files(outputs_dir):
        recorded = table.get(relative)
        if recorded is None:
            return f"{relative} was added"
        found += 1
        info = item.stat(follow_symlinks=False)  # the one system call per file (see the module's docstring)
        if not stat.S_ISREG(info.st_mode):
            return f"{relative} is no longer a regular file"
        size, digest, mtime_ns, ctime_ns = recorded
        if info.st_size != size:
            return f"{relative} has {info.st_size:,} bytes, {size:,} when stored"
        if (info.st_mtime_ns, info.st_ctime_ns) != (mtime_ns, ctime_ns):
            if _digest_as_recorded(Path(item.path), digest) != digest:
                return f"{relative} has other content than when stored (same size, SHA-256 differs)"
            # the times of the stat before the read: a write during or after it moves the ctime past them
            recorded[2:] = [info.st_mtime_ns, info.st_ctime_ns]
            moved = True
    if found < len(table):  # every file found is in the table, so fewer means some were removed
        present = {relative for relative, _ in _files(outputs_dir)}
        missing = sorted(set(table) - present)
        return f"{missing[0]} was removed" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    if moved:
        _record_times(entry, table)
    return None


def _record_times(entry: Path, table: FileTable) -> None:
    partial = entry / f".{FILES_NAME}.{os.getpid()}.tmp"
    try:
        write_files(entry, table, partial.name)
        os.replace(partial, entry / FILES_NAME)
    except OSError:
        partial.unlink(missing_ok=True)  # a read-only cache: the next check hashes again, as before


def _digest_as_recorded(path: Path, recorded: object) -> str:
    """The file's digest made the way ``recorded`` was: by blocks, or (entries stored before blocks)
    a plain SHA-256."""
    if isinstance(recorded, str) and recorded.startswith(BLOCK_DIGEST_PREFIX):
        return block_digest(path)
    return file_sha256(path)


def _files(outputs_dir: Path, prefix: str = "") -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry under ``outputs_dir`` that is not a directory, as (relative posix path, entry), in
    name order; a symlinked directory is not walked into but listed, to be reported as not a regular
    file. The type comes from the directory listing: no system call per file."""
    try:
        entries = sorted(os.scandir(outputs_dir), key=lambda entry: entry.name)
    except FileNotFoundError:
        return
    for entry in entries:
        relative = prefix + entry.name
        if entry.is_dir(follow_symlinks=False):
            yield from _files(Path(entry.path), relative + "/")
        else:
            yield relative, entry
