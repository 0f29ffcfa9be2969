"""Downloading an ``s3:`` data source (a prefix or one object) to local files.

    >>> access = S3Access(S3Settings(endpoint_url="http://127.0.0.1:9000", cache_dir=Path("cache")))
    >>> summary = access.download(S3Uri.parse("s3://bucket/exec-1/preprocess/"), S3Limits(max_files=10), Path("data"))

How a source is fetched:

* The client is botocore's (boto3's credential chain and configuration, without importing
  boto3), created on first use; see :func:`_new_session` for what is shared between the
  clients of one process and what is left out.
* One paginated LIST gives keys, ETags and sizes. The files taken (``max_files``, ``max_bytes``)
  are chosen on it in key order, so one listing always gives the same files, and the step
  cache key of a step fed by S3 is a hash of it (:meth:`S3Access.digest`): no download needed.
* Whole objects are fetched by a thread pool of ``concurrency`` workers over one shared client
  (botocore clients are thread-safe), each a plain GetObject streamed into a temporary file,
  renamed when complete; objects over twice ``part_bytes`` are split into ranged GETs fetched in
  parallel into the same file. The size and ETag come from the listing: no HEAD request, and
  every GET carries ``If-Match: <listed ETag>``, so what is stored under an ETag is that ETag's
  content. A body that drops mid-transfer is fetched again (``attempts``); botocore's own
  retries (standard mode) cover failures before the response headers. Chosen over boto3's
  ``download_file`` (a HEAD and a transfer manager per call) and over one shared transfer
  manager, which costs about 30% more client CPU per object (measured: benchmarks/bench_s3.py
  and docs/s3.md).
* With ``sample_rows``, table files are cut to their first rows without reading them whole:
  CSV/TSV/JSON lines (gzipped or not) by ranged GETs of growing size until enough records
  (quoted CSV newlines respected, gzip inflated as it streams); Parquet by reading its footer
  and then the first row group(s) through a file object whose reads are ranged GETs.
* The download cache (``cache_dir``) keeps each object, or each sample, under a name hashed
  from bucket, key and ETag (and ``sample_rows``): a second run LISTs and hard-links files from
  it. Entries are written under a temporary name and renamed, so an interrupted download is
  never mistaken for a complete one. It is capped by size (``cache_max_bytes``):
  :meth:`S3Access.evict_cache`, called once at the end of a session by the process that
  outlives the others, removes the least recently used entries; a download holds a shared
  lock on the cache, and eviction only happens when it gets the exclusive lock without waiting,
  so no entry is removed while any process is downloading with it.

Caveats:
    * ``max_bytes`` counts whole objects by their listed size; with ``sample_rows``, samples are
      fetched first and counted by their size on disk, and the files past the budget dropped.
    * ``sample_rows`` applies to each table file (shards keep their layout); a ``.parquet.gz``
      is taken whole, as Parquet inside gzip cannot be read by ranges.
    * The progress line goes to ``S3Settings.progress`` (stderr by default) once a transfer has
      lasted a second.
    * Credentials come from boto3's usual chain and are never written anywhere by this module:
      error messages name the URI and the credential *source*, and botocore's debug logging
      has secret values replaced (see :class:`_SecretLogFilter`).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import stat
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pytest_cursus.errors import DataSourceError

DEFAULT_CONCURRENCY = 16
PART_BYTES = 32 * 2**20  # objects over twice this are fetched in ranged parts, in parallel
_CHUNK = 1 << 20
DOWNLOAD_ATTEMPTS = 5
PROGRESS_AFTER_S = 1.0
PROGRESS_EVERY_S = 0.5
_FIRST_RANGE = 64 * 1024
_MAX_RANGE = 8 * 1024 * 1024
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
# Temporary files a killed run left in the cache are swept once older than this.
STALE_TEMP_S = 3600
DEFAULT_CACHE_MAX_MB = 10240
_T = TypeVar("_T")


class S3Error(DataSourceError):
    """An S3 problem, worded for the user: names the URI and what to do."""


class S3NotFound(S3Error):
    """Nothing at the URI: no such object, or an empty prefix."""


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str  # "" for the whole bucket; ending in "/" for a prefix

    @classmethod
    def parse(cls, text: str) -> S3Uri:
        if not isinstance(text, str) or not text.startswith("s3://"):
            raise ValueError(f"expected an s3://bucket/key URI, got {text!r}")
        bucket, _, key = text[len("s3://") :].partition("/")
        if not _BUCKET.match(bucket):
            raise ValueError(f"expected an s3://bucket/key URI, got {text!r} (bucket name {bucket!r} is not valid)")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def of_key(self, key: str) -> S3Uri:
        return S3Uri(self.bucket, key)


def check_s3_uri(text: str) -> str:
    """Validator for option and scenario fields; raises ``ValueError`` with the reason."""
    S3Uri.parse(text)
    return text


@dataclass(frozen=True)
class S3Limits:
    """How much of a source to take: first ``max_files`` objects in key order, at most
    ``max_bytes`` on disk, the first ``sample_rows`` rows of each table file."""

    max_files: int | None = None
    max_bytes: int | None = None
    sample_rows: int | None = None


@dataclass(frozen=True)
class S3Object:
    key: str
    etag: str
    size: int


@dataclass(frozen=True)
class Listing:
    """The objects of a URI: under a prefix (``prefix`` set) or one object (``prefix`` None)."""

    uri: S3Uri
    prefix: str | None
    objects: tuple[S3Object, ...]


@dataclass(frozen=True)
class PlannedFile:
    obj: S3Object
    relative: PurePosixPath
    sampled: bool


@dataclass
class DownloadSummary:
    path: Path  # the directory holding a prefix, or the file of a single object
    files: int = 0
    bytes: int = 0
    fetched: int = 0  # files that came over the network this time
    from_cache: int = 0
    sampled: int = 0
    left_out: int = 0  # objects listed but not taken (limits)
    seconds: float = 0.0
    note: str = ""


class ProgressStream(Protocol):
    """Where progress lines go: a text stream (sys.stderr), or pytest's terminal past capture."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...

    def isatty(self) -> bool: ...


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None
    cache_dir: Path | None = None  # None: no download cache
    cache_max_bytes: int | None = DEFAULT_CACHE_MAX_MB * 2**20  # evict_cache() trims to this; None: no cap
    concurrency: int = DEFAULT_CONCURRENCY
    attempts: int = DOWNLOAD_ATTEMPTS
    part_bytes: int = PART_BYTES
    progress: ProgressStream | None = None  # where the progress line goes; None: sys.stderr


class S3Access:
    """One botocore S3 client shared by every transfer of a run (clients are thread-safe);
    listings are remembered for the run, so the step key and the download see the same objects."""

    def __init__(self, settings: S3Settings | None = None) -> None:
        self.settings = settings or S3Settings()
        self._client: Any = None
        self._credential_source: str | None = None
        self._lock = threading.Lock()
        self._listings: dict[S3Uri, Listing] = {}
        self._pinned: dict[tuple[str, str], str] = {}
        self._scrubber = _Redactor()

    # --- public -------------------------------------------------------------------------------

    def listing(self, uri: S3Uri) -> Listing:
        with self._lock:
            known = self._listings.get(uri)
        if known is None:
            with self._translated(uri, None):
                known = self._list(uri)
            with self._lock:
                self._listings[uri] = known
                self._pinned.update({(uri.bucket, o.key): o.etag for o in known.objects if o.etag})
        return known

    def digest(self, uri: S3Uri, limits: S3Limits) -> str:
        """A hash of what :meth:`download` would take: (key, ETag, size) of each object, and the
        limits. One LIST, no download."""
        planned = _plan(self.listing(uri), limits)
        described = {
            "uri": str(uri),
            "limits": [limits.max_files, limits.max_bytes, limits.sample_rows],
            "objects": [[p.obj.key, p.obj.etag, p.obj.size] for p in planned],
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()

    def download(self, uri: S3Uri, limits: S3Limits, target: Path, label: str = "") -> DownloadSummary:
        """Fetch the objects of ``uri`` into ``target`` (emptied first), keeping their layout
        under the prefix; a single object lands as ``target/<its name>``."""
        cache = _DownloadCache(self.settings.cache_dir) if self.settings.cache_dir else None
        with cache.in_use() if cache is not None else nullcontext():
            return self._download(uri, limits, target, label, cache)

    def evict_cache(self) -> CacheEviction:
        """Trim the download cache to ``cache_max_bytes``, least recently used entries first,
        and sweep stale temporary files; skipped while any process is downloading with it."""
        if self.settings.cache_dir is None or not (self.settings.cache_dir / _DownloadCache.ENTRIES).is_dir():
            return CacheEviction()
        return _DownloadCache(self.settings.cache_dir).evict(self.settings.cache_max_bytes)

    def _download(
        self, uri: S3Uri, limits: S3Limits, target: Path, label: str, cache: _DownloadCache | None
    ) -> DownloadSummary:
        started = time.monotonic()
        listing = self.listing(uri)
        planned = _plan(listing, limits)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        # _plan refused keys with '..', '.' or a leading '/', and target is new (no symlinks in
        # it): every file lands under target
        for directory in sorted(
            {item.relative.parent for item in planned if item.relative.parent != PurePosixPath(".")}
        ):
            (target / directory).mkdir(parents=True, exist_ok=True)
        progress = _Progress(label or str(uri), len(planned), sum(p.obj.size for p in planned), self.settings.progress)
        summary = DownloadSummary(path=target if listing.prefix is not None else target / planned[0].relative)

        sizes: dict[PurePosixPath, int] = {}
        sampled = [p for p in planned if p.sampled]
        if sampled:
            assert limits.sample_rows is not None
            sizes.update(self._fetch_samples(uri, sampled, limits.sample_rows, target, cache, progress, summary))
        whole = [p for p in planned if not p.sampled]
        taken = _fit(uri, planned, sizes, limits.max_bytes)
        kept = {item.relative for item in taken}
        for item in sampled:
            if item.relative not in kept:
                (target / item.relative).unlink(missing_ok=True)
        self._fetch_whole(uri, [p for p in whole if p.relative in kept], target, cache, progress, summary)

        summary.files = len(taken)
        summary.bytes = sum(sizes.get(p.relative, p.obj.size) for p in taken)
        summary.sampled = sum(1 for p in taken if p.sampled)
        summary.left_out = len(listing.objects) - len(taken)
        summary.seconds = time.monotonic() - started
        if summary.left_out:
            summary.note = f"took {len(taken)} of {len(listing.objects)} objects ({_describe_limits(limits)})"
        progress.finish(summary.note)
        return summary

    # --- listing ------------------------------------------------------------------------------

    def _list(self, uri: S3Uri) -> Listing:
        # pages followed by hand: botocore's paginator would load and parse one more model file
        found: list[S3Object] = []
        after: dict[str, str] = {}
        while True:
            page = self.client.list_objects_v2(Bucket=uri.bucket, Prefix=uri.key, **after)
            found += [
                S3Object(item["Key"], item.get("ETag", ""), int(item.get("Size", 0)))
                for item in page.get("Contents", [])
            ]
            if not page.get("IsTruncated"):
                break
            after = {"ContinuationToken": page["NextContinuationToken"]}
        if uri.key and not uri.key.endswith("/"):
            exact = [obj for obj in found if obj.key == uri.key]
            if exact:
                return Listing(uri, None, tuple(exact))
            prefix = uri.key + "/"
        else:
            prefix = uri.key
        # "folder" placeholder objects (keys ending in "/") hold no data
        objects = sorted(
            (obj for obj in found if obj.key.startswith(prefix) and not obj.key.endswith("/")), key=lambda o: o.key
        )
        if not objects:
            if uri.key and not uri.key.endswith("/"):
                raise S3NotFound(
                    f"no object {uri} and nothing under {uri}/{self._at()} (the bucket exists): check the key in the URI"
                )
            raise S3NotFound(
                f"nothing under {uri}{self._at()} (the bucket exists, the prefix is empty): check the prefix in the URI"
            )
        return Listing(uri, prefix, tuple(objects))

    # --- transfers ----------------------------------------------------------------------------

    def _fetch_whole(
        self,
        uri: S3Uri,
        items: list[PlannedFile],
        target: Path,
        cache: _DownloadCache | None,
        progress: _Progress,
        summary: DownloadSummary,
    ) -> None:
        jobs: list[_FileJob] = []
        for item in items:
            destination = target / item.relative
            path = destination
            if cache is not None:
                path = cache.entry(uri.bucket, item.obj, None)
                if cache.use(path, item.obj.size):
                    _place(path, destination)
                    summary.from_cache += 1
                    progress.file_done(item.obj.size, cached=True)
                    continue
                cache.make_room_for(path)
            job = _FileJob(item, path, destination, _ranges(item.obj.size, self.settings.part_bytes))
            if job.ranges:
                jobs.append(job)
            else:  # an empty object: nothing to GET
                os.replace(job.temporary, path)
                if cache is not None:
                    _place(path, destination)
                summary.fetched += 1
                progress.file_done(0)
        if not jobs:
            return
        if cache is not None:
            cache.sweep({job.path.parent for job in jobs})
        with self._translated(uri, None):
            _ = self.client  # created (and its errors worded) before the threads start
        pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="cursus-s3")
        parts = {
            pool.submit(self._fetch_part, uri, job, start, end, progress): job
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
                        with self._translated(uri, parts[future].item.obj.key):
                            future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for job in jobs:
                job.temporary.unlink(missing_ok=True)  # what a failed transfer left
        for job in jobs:
            if cache is not None:
                cache.seal(job.path)
                _place(job.path, job.destination)
            summary.fetched += 1

    def _fetch_part(self, uri: S3Uri, job: _FileJob, start: int, end: int, progress: _Progress) -> None:
        """GET bytes ``start..end`` of the job's object into its temporary file; the last part
        to finish renames it."""
        ranged = {"Range": f"bytes={start}-{end}"} if len(job.ranges) > 1 else {}
        written = [0]

        def attempt() -> None:
            written[0] = 0
            response = self.client.get_object(Bucket=uri.bucket, Key=job.item.obj.key, **ranged)
            with open(job.temporary, "r+b") as sink:
                sink.seek(start)
                while chunk := response["Body"].read(_CHUNK):
                    sink.write(chunk)
                    written[0] += len(chunk)
                    progress.add_bytes(len(chunk))

        self._retrying(attempt, undo=lambda: progress.add_bytes(-written[0]))
        if job.part_done():
            size = job.temporary.stat().st_size
            if size != job.item.obj.size:
                raise S3Error(
                    f"{uri.of_key(job.item.obj.key)} arrived with {size} bytes instead of {job.item.obj.size}; rerun"
                )
            os.replace(job.temporary, job.path)
            progress.file_done(0)

    def _retrying(self, attempt: Callable[[], _T], undo: Callable[[], None] | None = None) -> _T:
        """Run ``attempt`` again when the connection drops mid-body (botocore retries a request
        only until its headers arrive); a full disk or any other error is not retried."""
        retryable = _dropped_connection_errors()
        last: BaseException | None = None
        for _ in range(self.settings.attempts):
            try:
                return attempt()
            except retryable as exc:
                last = exc
                if undo is not None:
                    undo()
        raise _RetriesExhausted(self.settings.attempts, last)

    def _fetch_samples(
        self,
        uri: S3Uri,
        items: list[PlannedFile],
        rows: int,
        target: Path,
        cache: _DownloadCache | None,
        progress: _Progress,
        summary: DownloadSummary,
    ) -> dict[PurePosixPath, int]:
        def one(item: PlannedFile) -> tuple[int, bool]:
            """(size on disk, whether it came over the network)."""
            destination = target / item.relative
            fetched = True
            if cache is None:
                self._write_sample(uri, item.obj, rows, destination)
            else:
                entry = cache.entry(uri.bucket, item.obj, rows)
                if cache.use(entry, None):
                    fetched = False
                else:
                    cache.make_room_for(entry)
                    self._write_sample(uri, item.obj, rows, entry)
                    cache.seal(entry)
                _place(entry, destination)
            size = destination.stat().st_size
            progress.file_done(size, cached=not fetched)
            return size, fetched

        sizes: dict[PurePosixPath, int] = {}
        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="cursus-s3-sample") as pool:
            futures = [(item, pool.submit(one, item)) for item in items]
            for item, future in futures:
                while True:
                    try:
                        size, fetched = future.result(timeout=PROGRESS_EVERY_S)
                        break
                    except TimeoutError:
                        progress.tick()
                summary.fetched += fetched
                summary.from_cache += not fetched
                sizes[item.relative] = size
        return sizes

    def _write_sample(self, uri: S3Uri, obj: S3Object, rows: int, destination: Path) -> None:
        """The object's first ``rows`` rows, written to ``destination`` via a temporary file."""
        from pytest_cursus.data.tabular import tabular_format

        fmt = tabular_format(obj.key)
        assert fmt is not None
        temporary = destination.with_name(f"{destination.name}.part-{uuid.uuid4().hex[:8]}")
        try:
            with self._translated(uri, obj.key):
                if fmt.kind == "parquet":
                    self._sample_parquet(uri, obj, rows, temporary)
                else:
                    data = self._sample_lines(uri, obj, rows, fmt.kind, fmt.gzip)
                    temporary.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if fmt.gzip else data)
            os.replace(temporary, destination)
        finally:
            temporary.unlink(missing_ok=True)

    def _sample_lines(self, uri: S3Uri, obj: S3Object, rows: int, kind: str, gzipped: bool) -> bytes:
        wanted = rows + 1 if kind in ("csv", "tsv") else rows  # a CSV header is a record, not a row
        counter = _RecordCounter(quoted=kind != "jsonl")
        inflater = _Inflater() if gzipped else None
        sample = bytearray()
        offset, length = 0, _FIRST_RANGE
        while offset < obj.size:
            end = min(offset + length, obj.size) - 1
            raw = self._get_range(uri, obj, offset, end)
            offset = end + 1
            data = inflater.feed(raw) if inflater else raw
            cut = counter.feed(data, wanted)
            if cut is not None:
                return bytes(sample + data[:cut])
            sample += data
            length = min(length * 2, _MAX_RANGE)
        return bytes(sample)

    def _sample_parquet(self, uri: S3Uri, obj: S3Object, rows: int, destination: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = _RangedObject(lambda start, end: self._get_range(uri, obj, start, end), obj.size)
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
                f"{uri.of_key(obj.key)} is not a readable Parquet file ({str(exc).splitlines()[0]}); drop sample_rows to take it whole"
            ) from None

    def _get_range(self, uri: S3Uri, obj: S3Object, start: int, end: int) -> bytes:
        """Bytes ``start..end`` (inclusive) of an object."""

        def attempt() -> bytes:
            response = self.client.get_object(Bucket=uri.bucket, Key=obj.key, Range=f"bytes={start}-{end}")
            data: bytes = response["Body"].read()
            if len(data) != end - start + 1:
                raise S3Error(
                    f"{uri.of_key(obj.key)} answered {len(data)} bytes for a range of {end - start + 1}; rerun"
                )
            return data

        return self._retrying(attempt)

    # --- client, errors -----------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        load_s3_libraries()
        from botocore.config import Config

        session = _new_session()
        credentials = session.get_credentials()
        if credentials is not None:
            self._credential_source = credentials.method
            frozen = credentials.get_frozen_credentials()
            self._scrubber = _Redactor(frozen.secret_key, frozen.token)
        client = session.create_client(
            "s3",
            endpoint_url=self.settings.endpoint_url,
            config=Config(
                retries={"max_attempts": self.settings.attempts, "mode": "standard"},
                max_pool_connections=self.settings.concurrency + 4,
                connect_timeout=10,
                read_timeout=60,
            ),
        )
        # Every GET asks for the ETag the listing gave: a file stored under an ETag is its content.
        client.meta.events.register("before-parameter-build.s3.GetObject", self._pin_etag)
        _SecretLogFilter.install(self._scrubber)
        return client

    def _pin_etag(self, params: dict[str, Any], **_: Any) -> None:
        etag = self._pinned.get((params.get("Bucket", ""), params.get("Key", "")))
        if etag and "IfMatch" not in params:
            params["IfMatch"] = etag

    def _at(self) -> str:
        if not self.settings.endpoint_url:
            return ""
        parts = urlsplit(self.settings.endpoint_url)
        # user:password@ in an endpoint URL is never shown
        host = f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
        return f" at {urlunsplit(parts._replace(netloc=host))}"

    @contextmanager
    def _translated(self, uri: S3Uri, key: str | None) -> Iterator[None]:
        """botocore's exceptions (and ours) turned into one-paragraph S3Errors."""
        try:
            yield
        except S3Error as exc:
            raise type(exc)(self._scrubber.text(str(exc))) from None
        except Exception as exc:
            message = _describe_failure(exc, uri, key, self._at(), self._credential_source, self.settings)
            if message is None:
                raise
            raise S3Error(self._scrubber.text(message)) from None


def load_s3_libraries() -> None:
    """Import what talking to S3 needs (botocore), on first use: a pytest session that reads no
    S3 data never pays for it."""
    import botocore.config  # noqa: F401
    import botocore.exceptions  # noqa: F401
    import botocore.session  # noqa: F401


_LOADERS: dict[str | None, Any] = {}
_LOADERS_LOCK = threading.Lock()


def _new_session() -> Any:
    """A botocore session: boto3's credential chain and configuration (boto3 delegates both to
    botocore), without importing boto3 and its transfer manager, which nothing here uses.

    Its data loader (the parsed JSON service models: S3's API, its endpoint rules, the
    partitions) is shared by every session of the process, as boto3 shares one across the
    clients of a session: the next ``S3Access`` of the process (the notebook API makes one per
    call) does not parse them again. It searches what ``botocore.loaders.create_loader`` would
    (``data_path``/``AWS_DATA_PATH``, ``~/.aws/models``, botocore's data) and reads the files
    with :class:`_PlainJSONFileLoader`. Credentials are still resolved afresh by each session.
    Response timestamps are left as text: nothing here reads them, and parsing a
    ``LastModified`` per listed object was most of the client's CPU time of a LIST.
    """
    import botocore.session

    session = botocore.session.Session()
    data_path = session.get_config_variable("data_path")
    with _LOADERS_LOCK:
        if data_path not in _LOADERS:
            _LOADERS[data_path] = _model_loader(data_path)
    session.register_component("data_loader", _LOADERS[data_path])
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return session


def _model_loader(data_path: str | None) -> Any:
    """``botocore.loaders.create_loader(data_path)``, reading with :class:`_PlainJSONFileLoader`."""
    import botocore.loaders

    paths = (
        []
        if data_path is None
        else [os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep)]
    )
    return botocore.loaders.Loader(extra_search_paths=paths, file_loader=_PlainJSONFileLoader())


class _PlainJSONFileLoader:
    """botocore's model files parsed into plain dicts instead of OrderedDicts.

    botocore's own file loader parses each model with ``object_pairs_hook=OrderedDict``; a dict
    keeps the same key order (Python 3.7+) and botocore uses none of OrderedDict's extras on
    loaded data, while parsing about twice as fast (the 1.2 MB endpoints.json: 33 ms against
    13 ms). Same files, same search order, same ``.json`` then ``.json.gz`` lookup: the
    ``file_loader`` argument of botocore's ``Loader`` exists for such faster loaders (see the
    docstring of ``botocore.loaders``). Implements the two methods a ``Loader`` calls.
    """

    _EXTENSIONS = (".json", ".json.gz")

    def exists(self, file_path: str) -> bool:
        # botocore ships every model gzipped: that one first, one stat per service listed
        return os.path.isfile(file_path + ".json.gz") or os.path.isfile(file_path + ".json")

    def load_file(self, file_path: str) -> Any:
        for extension in self._EXTENSIONS:
            try:
                with open(file_path + extension, "rb") as handle:
                    raw = handle.read()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue
            return json.loads((gzip.decompress(raw) if extension == ".json.gz" else raw).decode("utf-8"))
        return None


def _dropped_connection_errors() -> tuple[type[BaseException], ...]:
    from botocore import exceptions as bx
    from urllib3 import exceptions as ux

    return (
        bx.IncompleteReadError,
        bx.ResponseStreamingError,
        bx.ReadTimeoutError,
        bx.ConnectionClosedError,
        ux.ProtocolError,
        ux.ReadTimeoutError,
        ConnectionError,
        TimeoutError,
    )


class _RetriesExhausted(Exception):
    def __init__(self, attempts: int, last: BaseException | None) -> None:
        self.attempts = attempts
        self.last = last
        super().__init__(f"gave up after {attempts} attempts")


def _describe_failure(
    exc: BaseException, uri: S3Uri, key: str | None, at: str, credential_source: str | None, settings: S3Settings
) -> str | None:
    from botocore import exceptions as bx

    what = uri.of_key(key) if key else uri
    endpoint_hint = " and --cursus-s3-endpoint" if settings.endpoint_url else ""
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return (
            f"no AWS credentials found to read {what}: configure them the usual way for boto3 "
            "(AWS_PROFILE or ~/.aws/credentials, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "`aws sso login`, or an instance/container role)"
        )
    if isinstance(exc, bx.ProfileNotFound):
        return (
            f"AWS profile {exc.kwargs.get('profile')!r} not found (reading {what}): check AWS_PROFILE and ~/.aws/config"
        )
    if isinstance(
        exc, (bx.CredentialRetrievalError, bx.TokenRetrievalError, bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError)
    ):
        return f"AWS credentials could not be loaded to read {what} ({type(exc).__name__}): refresh them (e.g. `aws sso login`) and rerun"
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        operation = exc.operation_name
        source = f" (credentials from {credential_source})" if credential_source else ""
        if code == "NoSuchBucket":
            return f"bucket {uri.bucket!r} does not exist{at} (reading {what}): check the bucket name in the URI{endpoint_hint}"
        if code in ("AccessDenied", "AllAccessDisabled", "Forbidden", "403") or status == 403:
            return (
                f"access denied to {what}{at}: {operation} answered {code or status}{source}; check that the role or profile "
                "in use has s3:ListBucket on the bucket and s3:GetObject on its keys, and the bucket policy"
            )
        if code in (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "TokenRefreshRequired",
        ):
            return f"S3 rejected the credentials{source} reading {what}{at} ({code}): refresh or fix them and rerun"
        if code in ("PreconditionFailed", "412") or status == 412:
            return f"{what} changed while it was being downloaded (its ETag no longer matches the listing): rerun to take the new version"
        if code in ("NoSuchKey", "404") or status == 404:
            return f"{what} disappeared while it was being downloaded: rerun"
        detail = str(error.get("Message", "")).strip()
        return f"S3 refused {operation} on {what}{at}: {code or status}{': ' + detail if detail else ''}"
    if isinstance(exc, _RetriesExhausted):
        return (
            f"the connection dropped while downloading {what}{at}; gave up after {exc.attempts} attempts: check the network"
            f"{endpoint_hint} and rerun (files already complete are kept in the download cache)"
        )
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return f"could not connect to S3{at or ''} to read {what}: check the network{endpoint_hint}"
    if isinstance(
        exc, (bx.ConnectionClosedError, bx.ReadTimeoutError, bx.ResponseStreamingError, bx.IncompleteReadError)
    ):
        return (
            f"the connection dropped while reading {what}{at} and retries did not help ({type(exc).__name__}): "
            f"check the network{endpoint_hint} and rerun"
        )
    if isinstance(exc, bx.BotoCoreError):
        return f"reading {what}{at} failed: {type(exc).__name__}: {exc}"
    return None


def _plan(listing: Listing, limits: S3Limits) -> list[PlannedFile]:
    """The files to take, in key order, before ``max_bytes`` (see :func:`_fit`)."""
    from pytest_cursus.data.tabular import tabular_format

    objects = list(listing.objects)
    if limits.max_files is not None:
        objects = objects[: limits.max_files]
    planned = []
    for obj in objects:
        fmt = tabular_format(obj.key) if limits.sample_rows is not None else None
        samplable = fmt is not None and not (fmt.kind == "parquet" and fmt.gzip)
        planned.append(PlannedFile(obj, _relative_path(listing, obj), samplable))
    files = {item.relative: item.obj.key for item in planned}
    for item in planned:
        for parent in item.relative.parents:
            if parent in files:
                raise S3Error(
                    f"{listing.uri.of_key(files[parent])} and {listing.uri.of_key(item.obj.key)} cannot both be written: "
                    f"the first would be a file where the second needs a directory; narrow the URI"
                )
    return planned


def _relative_path(listing: Listing, obj: S3Object) -> PurePosixPath:
    """Where an object lands under the target: refuses keys that would escape it."""
    text = PurePosixPath(obj.key).name if listing.prefix is None else obj.key[len(listing.prefix) :]
    parts = text.split("/")
    if text.startswith("/"):
        problem = "it is an absolute path once the prefix is removed"
    elif any(part in ("..", ".") for part in parts):
        problem = "it contains a '..' or '.' path segment"
    elif "\x00" in text:
        problem = "it contains a NUL character"
    else:
        return PurePosixPath(*[part for part in parts if part])
    raise S3Error(
        f"object key {obj.key!r} under {listing.uri} cannot be downloaded safely ({problem}: it would be written outside "
        "the target directory); rename the object or narrow the URI to exclude it"
    )


def _fit(
    uri: S3Uri, planned: Sequence[PlannedFile], sizes: dict[PurePosixPath, int], max_bytes: int | None
) -> list[PlannedFile]:
    """The longest run of ``planned`` (key order) whose size fits ``max_bytes``."""
    if max_bytes is None:
        return list(planned)
    taken: list[PlannedFile] = []
    total = 0
    for item in planned:
        size = sizes.get(item.relative, item.obj.size)
        if total + size > max_bytes:
            break
        taken.append(item)
        total += size
    if not taken:
        first = planned[0]
        size = sizes.get(first.relative, first.obj.size)
        raise S3Error(
            f"max_bytes={max_bytes} is smaller than the first object {uri.of_key(first.obj.key)} ({size} bytes"
            f"{' after sampling' if first.sampled else ''}): raise max_bytes, or set sample_rows to take the first rows of table files"
        )
    return taken


def _describe_limits(limits: S3Limits) -> str:
    given = [f"{name}={value}" for name, value in vars(limits).items() if value is not None]
    return ", ".join(given) or "no limits"


def _place(source: Path, destination: Path) -> None:
    """Put a cached file in the (new) target: a hard link when the file system allows, else a copy."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copyfile(source, destination)


@dataclass
class CacheEviction:
    """What :meth:`S3Access.evict_cache` did."""

    busy: bool = False  # another process was downloading: nothing removed
    kept_bytes: int = 0
    evicted: int = 0
    evicted_bytes: int = 0
    swept: int = 0  # stale temporary files removed


class _DownloadCache:
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


class _Progress:
    """One status line for a transfer that lasts over :data:`PROGRESS_AFTER_S`; written only
    from the thread that waits for the transfer."""

    def __init__(self, label: str, files: int, total_bytes: int, stream: ProgressStream | None) -> None:
        self.label = label
        self.files = files
        self.total_bytes = total_bytes
        self.stream = stream
        self.started = time.monotonic()
        self.done = 0
        self.cached = 0
        self.bytes = 0
        self.shown = False
        self._last = 0.0
        self._lock = threading.Lock()

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self.bytes += count

    def file_done(self, size: int, cached: bool = False) -> None:
        with self._lock:
            self.done += 1
            self.bytes += size
            self.cached += cached

    def tick(self) -> None:
        now = time.monotonic()
        if now - self.started < PROGRESS_AFTER_S:
            return
        stream = self.stream or sys.stderr
        tty = _isatty(stream)
        if not tty and now - self._last < 5 * PROGRESS_EVERY_S:
            return
        self._last = now
        self.shown = True
        stream.write(("\r" if tty else "") + self._line(now) + ("" if tty else "\n"))
        stream.flush()

    def finish(self, note: str) -> None:
        if not self.shown:
            return
        stream = self.stream or sys.stderr
        tty = _isatty(stream)
        stream.write(("\r" if tty else "") + self._line(time.monotonic()) + (f"; {note}" if note else "") + "\n")
        stream.flush()

    def _line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        cached = f", {self.cached} from cache" if self.cached else ""
        return (
            f"cursus s3: {self.label}: {self.done}/{self.files} files{cached}, "
            f"{self.bytes / 2**20:.1f}/{self.total_bytes / 2**20:.1f} MiB, {self.bytes / 2**20 / elapsed:.1f} MiB/s, {elapsed:.0f}s"
        )


def _isatty(stream: ProgressStream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


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


class _Redactor:
    """Replaces the credential values in use (secret access key, session token) in text."""

    MASK = "********"

    def __init__(self, *secrets: str | None) -> None:
        # longest first, so a secret containing another is replaced whole; short values would
        # match everywhere and hide nothing
        values = sorted({value for value in secrets if value and len(value) >= 4}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(value) for value in values)) if values else None

    def text(self, text: str) -> str:
        return self._pattern.sub(self.MASK, text) if self._pattern is not None else text


class _SecretLogFilter(logging.Filter):
    """Replaces credential values in records of the AWS libraries' loggers.

    botocore's DEBUG records include request headers and the canonical request, hence the
    session token; pytest shows captured DEBUG records of failing tests when asked to
    (``--log-level=DEBUG``). A logger's filters only see records created by that very logger,
    so the filter goes on each logger of those libraries.
    """

    _instance: _SecretLogFilter | None = None
    PREFIXES = ("botocore", "boto3", "s3transfer", "urllib3")

    def __init__(self) -> None:
        super().__init__()
        self.scrubber = _Redactor()

    @classmethod
    def install(cls, scrubber: _Redactor) -> None:
        if cls._instance is None:
            cls._instance = cls()
        cls._instance.scrubber = scrubber
        for name in list(logging.Logger.manager.loggerDict):
            if name.split(".")[0] in cls.PREFIXES:
                logger = logging.getLogger(name)
                if cls._instance not in logger.filters:
                    logger.addFilter(cls._instance)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is left to logging
            return True
        cleaned = self.scrubber.text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
