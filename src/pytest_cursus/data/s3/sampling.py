"""The first ``sample_rows`` rows of table files, without reading them whole.

CSV/TSV/JSON lines (gzipped or not) are read by ranged GETs of growing size until enough records
(quoted CSV newlines respected, gzip inflated as it streams); Parquet by reading its footer and
then the first row group(s) through a file object whose reads are ranged GETs.

Caveats:
    * ``sample_rows`` applies to each table file (shards keep their layout); a ``.parquet.gz``
      is taken whole, as Parquet inside gzip cannot be read by ranges.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_cursus.data.s3.client import S3Client
from pytest_cursus.data.s3.download_cache import DownloadCache
from pytest_cursus.data.s3.errors import S3Error
from pytest_cursus.data.s3.listing import PlannedFile, S3Object
from pytest_cursus.data.s3.progress import PROGRESS_EVERY_S, Progress
from pytest_cursus.data.s3.transfer import FetchCount, fetch_range
from pytest_cursus.data.s3.uri import S3Uri

_FIRST_RANGE = 64 * 1024
_MAX_RANGE = 8 * 1024 * 1024


def fetch_samples(
    client: S3Client,
    uri: S3Uri,
    items: list[PlannedFile],
    rows: int,
    target: Path,
    cache: DownloadCache | None,
    progress: Progress,
    *,
    concurrency: int,
) -> tuple[dict[PurePosixPath, int], FetchCount]:
    """The first ``rows`` rows of each of ``items``, placed under ``target`` (from the cache, or
    read by ranged GETs into it); gives the size on disk of each sample."""

    def one(item: PlannedFile) -> tuple[int, bool]:
        """(size on disk, whether it came over the network)."""
        destination = target / item.relative
        fetched = True
        if cache is None:
            _write_sample(client, uri, item.obj, rows, destination)
        else:
            entry = cache.entry(uri.bucket, item.obj, rows)
            if cache.use(entry, None):
                fetched = False
            else:
                cache.make_room_for(entry)
                _write_sample(client, uri, item.obj, rows, entry)
                cache.seal(entry)
            cache.place(entry, destination)
        size = destination.stat().st_size
        progress.file_done(size, cached=not fetched)
        return size, fetched

    sizes: dict[PurePosixPath, int] = {}
    count = FetchCount()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cursus-s3-sample") as pool:
        futures = [(item, pool.submit(one, item)) for item in items]
        for item, future in futures:
            while True:
                try:
                    size, fetched = future.result(timeout=PROGRESS_EVERY_S)
                    break
                except TimeoutError:
                    progress.tick()
            count.fetched += fetched
            count.from_cache += not fetched
            sizes[item.relative] = size
    return sizes, count


def _write_sample(client: S3Client, uri: S3Uri, obj: S3Object, rows: int, destination: Path) -> None:
    """The object's first ``rows`` rows, written to ``destination`` via a temporary file."""
    from pytest_cursus.data.tabular import tabular_format

    fmt = tabular_format(obj.key)
    assert fmt is not None
    temporary = destination.with_name(f"{destination.name}.part-{uuid.uuid4().hex[:8]}")
    try:
        with client.translated(uri, obj.key):
            if fmt.kind == "parquet":
                _sample_parquet(client, uri, obj, rows, temporary)
            else:
                data = _sample_lines(client, uri, obj, rows, fmt.kind, fmt.gzip)
                temporary.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if fmt.gzip else data)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def _sample_lines(client: S3Client, uri: S3Uri, obj: S3Object, rows: int, kind: str, gzipped: bool) -> bytes:
    wanted = rows + 1 if kind in ("csv", "tsv") else rows  # a CSV header is a record, not a row
    counter = _RecordCounter(quoted=kind != "jsonl")
    inflater = _Inflater() if gzipped else None
    sample = bytearray()
    offset, length = 0, _FIRST_RANGE
    while offset < obj.size:
        end = min(offset + length, obj.size) - 1
        raw = fetch_range(client, uri, obj, offset, end)
        offset = end + 1
        data = inflater.feed(raw) if inflater else raw
        cut = counter.feed(data, wanted)
        if cut is not None:
            return bytes(sample + data[:cut])
        sample += data
        length = min(length * 2, _MAX_RANGE)
    return bytes(sample)


def _sample_parquet(client: S3Client, uri: S3Uri, obj: S3Object, rows: int, destination: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = _RangedObject(lambda start, end: fetch_range(client, uri, obj, start, end), obj.size)
    try:
        # one ranged GET of the tail for the footer, then one (coalesced) for the row groups
        # that hold the first rows: pre-buffering may only be given the groups to read
        parquet = pq.ParquetFile(source, pre_buffer=True)
        groups: list[int] = []
        covered = 0
        while covered < rows and len(groups) < parquet.metadata.num_row_groups:
            covered += parquet.metadata.row_group(len(groups)).num_rows
            groups.append(len(groups))
        table = parquet.read_row_groups(groups) if groups else parquet.schema_arrow.empty_table()
        pq.write_table(table.slice(0, rows), destination)
    except pa.ArrowException as exc:
        raise S3Error(
            f"{uri.of_key(obj.key)} is not a readable Parquet file ({str(exc).splitlines()[0]}); "
            "drop sample_rows to take it whole"
        ) from None


class _RecordCounter:
    """Counts records in a byte stream fed in chunks: newlines, outside double quotes for CSV
    (a quoted value may span lines); for JSON lines, non-blank lines."""

    _SPECIAL = re.compile(rb'["\n]')

    def __init__(self, quoted: bool) -> None:
        self.quoted = quoted
        self.records = 0
        self.in_quotes = False
        self.pending_content = False

    def feed(self, data: bytes, wanted: int) -> int | None:
        """The offset in ``data`` just after record number ``wanted`` ends, if it does here."""
        if self.quoted:
            for match in self._SPECIAL.finditer(data):
                if match.group() == b'"':
                    self.in_quotes = not self.in_quotes
                elif not self.in_quotes:
                    self.records += 1
                    if self.records == wanted:
                        return match.end()
            return None
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                self.pending_content = self.pending_content or bool(data[start:].strip())
                return None
            if self.pending_content or data[start:newline].strip():
                self.records += 1
            self.pending_content = False
            start = newline + 1
            if self.records == wanted:
                return start


class _Inflater:
    """Streaming gzip, including files of several concatenated gzip members."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(wbits=31)

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            try:
                out.append(self._inflate.decompress(data))
            except zlib.error as exc:
                raise S3Error(f"not a valid gzip stream ({exc}); drop sample_rows to take the file whole") from None
            if not self._inflate.eof:
                break
            data = self._inflate.unused_data
            self._inflate = zlib.decompressobj(wbits=31)
        return b"".join(out)


class _RangedObject(io.RawIOBase):
    """A read-only, seekable file whose reads are ranged GETs (for pyarrow's Parquet reader)."""

    def __init__(self, fetch: Callable[[int, int], bytes], size: int) -> None:
        super().__init__()
        self._fetch = fetch
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self._size - self._position)
        if count <= 0:
            return 0
        data = self._fetch(self._position, self._position + count - 1)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
