"""The download cache: each object, or each sample of it, kept under a name hashed from bucket,
key and ETag (and ``sample_rows``), so a second run LISTs and hard-links files from it.

Entries are written under a temporary name and renamed, so an interrupted download is never
mistaken for a complete one. The cache is capped by size: :meth:`DownloadCache.evict`, called once
at the end of a session by the process that outlives the others, removes the least recently used
entries; a download holds a shared lock on the cache, and eviction only happens when it gets the
exclusive lock without waiting, so no entry is removed while any process is downloading with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_cursus.data.s3.listing import S3Object

# Temporary files a killed run left in the cache are swept once older than this.
STALE_TEMP_S = 3600


@dataclass
class CacheEviction:
    """What :meth:`DownloadCache.evict` did."""

    busy: bool = False  # another process was downloading: nothing removed
    kept_bytes: int = 0
    evicted: int = 0
    evicted_bytes: int = 0
    swept: int = 0  # stale temporary files removed


class DownloadCache:
    """``<root>/objects/<aa>/<sha256>``: an object (or a sample of it) per bucket, key, ETag.

    Only complete files carry the entry's name: they are written under a temporary name in the
    same directory and renamed, so a file at an entry's name is always whole. An entry's mtime
    is its last use (set on each hit), for eviction. ``<root>/lock`` is flock'ed shared by each
    download and exclusively by eviction.
    """

    ENTRIES = "objects"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: set[Path] = set()

    def entry(self, bucket: str, obj: S3Object, sample_rows: int | None) -> Path:
        variant = "whole" if sample_rows is None else f"rows={sample_rows}"
        digest = hashlib.sha256(f"{bucket}\0{obj.key}\0{obj.etag}\0{variant}".encode()).hexdigest()
        return self.root / self.ENTRIES / digest[:2] / digest

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """Held while downloading: eviction waits for no one and skips while any is held.
        The kernel releases a flock when its process dies."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def use(self, entry: Path, size: int | None) -> bool:
        """Whether the entry is there (with ``size`` bytes, if given); marks it used."""
        try:
            found = entry.stat().st_size
        except OSError:
            return False
        if size is not None and found != size:
            return False
        try:
            os.utime(entry)
        except OSError:
            pass  # another user's entry in a shared cache: it stays, only its age is off
        return True

    def place(self, entry: Path, destination: Path) -> None:
        """Put an entry in the (new) target: a hard link when the file system allows, else a copy."""
        try:
            os.link(entry, destination)
        except OSError:
            shutil.copyfile(entry, destination)

    def make_room_for(self, entry: Path) -> None:
        if entry.parent not in self._made:
            entry.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(entry.parent)

    def seal(self, entry: Path) -> None:
        entry.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)

    def sweep(self, directories: set[Path]) -> int:
        """Remove temporary files a killed run left in ``directories``."""
        now = time.time()
        swept = 0
        for directory in directories:
            try:
                names = [entry for entry in directory.iterdir() if "." in entry.name]
            except OSError:
                continue
            for stray in names:
                try:
                    if now - stray.stat().st_mtime > STALE_TEMP_S:
                        stray.unlink()
                        swept += 1
                except OSError:
                    pass
        return swept

    def evict(self, max_bytes: int | None) -> CacheEviction:
        """Trim to ``max_bytes``, least recently used entries first, and sweep stale temporary
        files; skipped (``busy``) while any process is downloading with the cache."""
        if not (self.root / self.ENTRIES).is_dir():
            return CacheEviction()
        with open(self.root / "lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return CacheEviction(busy=True)
            try:
                return self._evict(max_bytes)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _evict(self, max_bytes: int | None) -> CacheEviction:
        directories = [d for d in (self.root / self.ENTRIES).iterdir() if d.is_dir()]
        result = CacheEviction(swept=self.sweep(set(directories)))
        entries = []
        for directory in directories:
            with os.scandir(directory) as found:
                for item in found:
                    if "." in item.name:
                        continue  # a temporary file: not an entry (yet)
                    try:
                        info = item.stat()
                    except OSError:
                        continue
                    entries.append((info.st_mtime_ns, item.path, info.st_size))
        total = sum(size for _, _, size in entries)
        for _, path, size in sorted(entries):
            if max_bytes is None or total <= max_bytes:
                break
            try:
                os.unlink(path)  # an entry goes whole: a hard link made from it keeps its data
            except OSError:
                continue
            total -= size
            result.evicted += 1
            result.evicted_bytes += size
        result.kept_bytes = total
        return result
