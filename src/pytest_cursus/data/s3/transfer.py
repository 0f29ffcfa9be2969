"""Whole objects fetched by a thread pool over one shared client, and ranged GETs.

Each object is a plain GetObject streamed into a temporary file, renamed when complete; objects
over twice ``part_bytes`` are split into ranged GETs fetched in parallel into the same file. The
size and ETag come from the listing: no HEAD request, and every GET carries ``If-Match: <listed
ETag>`` (:meth:`S3Client.pin_etags`). A body that drops mid-transfer is fetched again. Chosen over
boto3's ``download_file`` (a HEAD and a transfer manager per call) and over one shared transfer
manager, which costs about 30% more client CPU per object (measured: benchmarks/bench_s3.py and
docs/s3.md).
"""

from __future__ import annotations

import os
import threading
import uuid
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from pytest_cursus.data.s3.client import S3Client
from pytest_cursus.data.s3.download_cache import DownloadCache
from pytest_cursus.data.s3.errors import S3Error
from pytest_cursus.data.s3.listing import PlannedFile, S3Object
from pytest_cursus.data.s3.progress import PROGRESS_EVERY_S, Progress
from pytest_cursus.data.s3.uri import S3Uri

_CHUNK = 1 << 20


@dataclass
class FetchCount:
    """Files a transfer placed in the target: over the network, or from the download cache."""

    fetched: int = 0
    from_cache: int = 0


def fetch_whole(
    client: S3Client,
    uri: S3Uri,
    items: list[PlannedFile],
    target: Path,
    cache: DownloadCache | None,
    progress: Progress,
    *,
    concurrency: int,
    part_bytes: int,
) -> FetchCount:
    """Place each of ``items`` whole under ``target``: from the cache, or fetched (into the cache
    first when there is one) by ``concurrency`` threads."""
    count = FetchCount()
    jobs: list[_FileJob] = []
    for item in items:
        destination = target / item.relative
        path = destination
        if cache is not None:
            path = cache.entry(uri.bucket, item.obj, None)
            if cache.use(path, item.obj.size):
                cache.place(path, destination)
                count.from_cache += 1
                progress.file_done(item.obj.size, cached=True)
                continue
            cache.make_room_for(path)
        job = _FileJob(item, path, destination, _ranges(item.obj.size, part_bytes))
        if job.ranges:
            jobs.append(job)
        else:  # an empty object: nothing to GET
            os.replace(job.temporary, path)
            if cache is not None:
                cache.place(path, destination)
            count.fetched += 1
            progress.file_done(0)
    if not jobs:
        return count
    if cache is not None:
        cache.sweep({job.path.parent for job in jobs})
    with client.translated(uri, None):
        _ = client.api  # created (and its errors worded) before the threads start
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cursus-s3")
    parts = {
        pool.submit(_fetch_part, client, uri, job, start, end, progress): job
        for job in jobs
        for start, end in job.ranges
    }
    try:
        pending = set(parts)
        while pending:
            done, pending = wait(pending, timeout=PROGRESS_EVERY_S, return_when=FIRST_EXCEPTION)
            progress.tick()
            for future in done:
                if future.exception() is not None:
                    with client.translated(uri, parts[future].item.obj.key):
                        future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for job in jobs:
            job.temporary.unlink(missing_ok=True)  # what a failed transfer left
    for job in jobs:
        if cache is not None:
            cache.seal(job.path)
            cache.place(job.path, job.destination)
        count.fetched += 1
    return count


def fetch_range(client: S3Client, uri: S3Uri, obj: S3Object, start: int, end: int) -> bytes:
    """Bytes ``start..end`` (inclusive) of an object."""

    def attempt() -> bytes:
        response = client.api.get_object(Bucket=uri.bucket, Key=obj.key, Range=f"bytes={start}-{end}")
        data: bytes = response["Body"].read()
        if len(data) != end - start + 1:
            raise S3Error(f"{uri.of_key(obj.key)} answered {len(data)} bytes for a range of {end - start + 1}; rerun")
        return data

    return client.retrying(attempt)


class _FileJob:
    """One object being fetched, in one GET or several ranged ones."""

    def __init__(self, item: PlannedFile, path: Path, destination: Path, ranges: list[tuple[int, int]]) -> None:
        self.item = item
        self.path = path  # where the complete file goes: a cache entry, or the destination
        self.destination = destination
        self.ranges = ranges
        self.temporary = path.with_name(f"{path.name}.part-{uuid.uuid4().hex[:8]}")
        self._left = len(ranges)
        self._lock = threading.Lock()
        self.temporary.touch()  # parts write into it at their offsets

    def part_done(self) -> bool:
        """Count a finished part; True for the last one."""
        with self._lock:
            self._left -= 1
            return self._left == 0


def _ranges(size: int, part_bytes: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges: one GET up to ``2 * part_bytes``, parts of ``part_bytes`` above."""
    if size == 0:
        return []
    if size <= 2 * part_bytes:
        return [(0, size - 1)]
    return [(start, min(start + part_bytes, size) - 1) for start in range(0, size, part_bytes)]


def _fetch_part(client: S3Client, uri: S3Uri, job: _FileJob, start: int, end: int, progress: Progress) -> None:
    """GET bytes ``start..end`` of the job's object into its temporary file; the last part to
    finish renames it."""
    ranged = {"Range": f"bytes={start}-{end}"} if len(job.ranges) > 1 else {}
    written = [0]

    def attempt() -> None:
        written[0] = 0
        response = client.api.get_object(Bucket=uri.bucket, Key=job.item.obj.key, **ranged)
        with open(job.temporary, "r+b") as sink:
            sink.seek(start)
            while chunk := response["Body"].read(_CHUNK):
                sink.write(chunk)
                written[0] += len(chunk)
                progress.add_bytes(len(chunk))

    client.retrying(attempt, undo=lambda: progress.add_bytes(-written[0]))
    if job.part_done():
        size = job.temporary.stat().st_size
        if size != job.item.obj.size:
            raise S3Error(
                f"{uri.of_key(job.item.obj.key)} arrived with {size} bytes instead of {job.item.obj.size}; rerun"
            )
        os.replace(job.temporary, job.path)
        progress.file_done(0)
