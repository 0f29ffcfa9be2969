"""``files.json`` of a step cache entry: each output file's size, digest (SHA-256) and the times it had
once stored, so an entry edited on disk is noticed before it is served.

Kept out of ``record.json``: eviction (run by the xdist controller, without the engine) reads every
entry's record for its size, and an entry may hold 100,000 files.

Checking an entry (:func:`changed_files`) costs a ``stat`` per file; a file is read and hashed again
only when its size is unchanged but its mtime or ctime is not what was recorded. Any write moves the
ctime, and the ctime cannot be set back by a user (only the clock can), so an unchanged ctime and
size mean unchanged content, and an entry nobody touched is served without reading it (see
docs/caching.md for what each costs). The digest runs over 1 MiB blocks, an all-zero one counting
as one byte: a sparse file's holes are neither read nor hashed (execution/sparse_files.py).
"""

from __future__ import annotations

import json
import os
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
    for relative, path in _files(outputs_dir):
        info = path.lstat()
        table[relative] = [info.st_size, block_digest(path), info.st_mtime_ns, info.st_ctime_ns]
    return table


def write_files(entry: Path, table: FileTable) -> None:
    (entry / FILES_NAME).write_text(json.dumps(table, separators=(",", ":")), encoding="utf-8")


def changed_files(entry: Path, outputs_dir: Path) -> str | None:
    """What differs between the entry's files and ``files.json`` (first difference), or None."""
    try:
        table: FileTable = json.loads((entry / FILES_NAME).read_bytes())
    except (OSError, ValueError):
        return f"its {FILES_NAME} is missing or unreadable"
    if not isinstance(table, dict):
        return f"its {FILES_NAME} is not a mapping"
    seen = set()
    for relative, path in _files(outputs_dir):
        seen.add(relative)
        recorded = table.get(relative)
        if recorded is None:
            return f"{relative} was added"
        info = path.lstat()
        if not os.path.isfile(path) or os.path.islink(path):
            return f"{relative} is no longer a regular file"
        size, digest, mtime_ns, ctime_ns = recorded
        if info.st_size != size:
            return f"{relative} has {info.st_size:,} bytes, {size:,} when stored"
        if (info.st_mtime_ns, info.st_ctime_ns) != (mtime_ns, ctime_ns) and _digest_as_recorded(path, digest) != digest:
            return f"{relative} has other content than when stored (same size, SHA-256 differs)"
    missing = sorted(set(table) - seen)
    if missing:
        return f"{missing[0]} was removed" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    return None


def _digest_as_recorded(path: Path, recorded: object) -> str:
    """The file's digest made the way ``recorded`` was: by blocks, or (entries stored before blocks)
    a plain SHA-256."""
    if isinstance(recorded, str) and recorded.startswith(BLOCK_DIGEST_PREFIX):
        return block_digest(path)
    return file_sha256(path)


def _files(outputs_dir: Path) -> list[tuple[str, Path]]:
    found = []
    for directory, subdirs, files in os.walk(outputs_dir):
        # a symlinked directory is not walked into; it is listed, to be reported as not a regular file
        names = files + [name for name in subdirs if os.path.islink(os.path.join(directory, name))]
        for name in names:
            path = Path(directory, name)
            found.append((path.relative_to(outputs_dir).as_posix(), path))
    return sorted(found)
