"""Downloading an ``s3:`` data source (a prefix or one object) to local files.

    >>> access = S3Access(S3Settings(endpoint_url="http://127.0.0.1:9000", cache_dir=Path("cache")))
    >>> uri = S3Uri.parse("s3://bucket/exec-1/preprocess/")
    >>> summary = access.download(uri, S3Limits(max_files=10), Path("data"))

How a source is fetched (one module of this package per step):

* The client (``client``) is botocore's, created on first use and shared by every transfer of
  the run.
* One paginated LIST (``listing``) gives keys, ETags and sizes; the files taken are chosen on
  it, so the step cache key of a step fed by S3 is a hash of it (:meth:`S3Access.digest`).
* Whole objects are fetched by a thread pool of ``concurrency`` workers (``transfer``); table
  files are cut to their first ``sample_rows`` rows by ranged GETs (``sampling``).
* The download cache (``cache_dir``, ``download_cache``) keeps each object, or each sample,
  by bucket, key and ETag; :meth:`S3Access.evict_cache` trims it to ``cache_max_bytes``.

Caveats:
    * ``max_bytes`` counts whole objects by their listed size; with ``sample_rows``, samples are
      fetched first and counted by their size on disk, and the files past the budget dropped.
    * The progress line goes to ``S3Settings.progress`` (stderr by default) once a transfer has
      lasted a second.
    * Credentials come from boto3's usual chain and are never written anywhere by this package:
      error messages name the URI and the credential *source*, and botocore's debug logging
      has secret values replaced (see :class:`pytest_cursus.secret_env.SecretLogFilter`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pytest_cursus.data.s3.client import S3Client
from pytest_cursus.data.s3.download_cache import CacheEviction, DownloadCache
from pytest_cursus.data.s3.listing import Listing, fit_max_bytes, list_uri, plan_files
from pytest_cursus.data.s3.progress import Progress, ProgressStream
from pytest_cursus.data.s3.sampling import fetch_samples
from pytest_cursus.data.s3.transfer import fetch_whole
from pytest_cursus.data.s3.uri import S3Limits, S3Uri

DEFAULT_CONCURRENCY = 16
PART_BYTES = 32 * 2**20  # objects over twice this are fetched in ranged parts, in parallel
DOWNLOAD_ATTEMPTS = 5
DEFAULT_CACHE_MAX_MB = 10240


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None
    cache_dir: Path | None = None  # None: no download cache
    cache_max_bytes: int | None = DEFAULT_CACHE_MAX_MB * 2**20  # evict_cache() trims to this; None: no cap
    concurrency: int = DEFAULT_CONCURRENCY
    attempts: int = DOWNLOAD_ATTEMPTS
    part_bytes: int = PART_BYTES
    progress: ProgressStream | None = None  # where the progress line goes; None: sys.stderr


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


class S3Access:
    """One botocore S3 client shared by every transfer of a run (clients are thread-safe);
    listings are remembered for the run, so the step key and the download see the same objects."""

    def __init__(self, settings: S3Settings | None = None) -> None:
        self.settings = settings or S3Settings()
        self.client = S3Client(
            self.settings.endpoint_url, attempts=self.settings.attempts, connections=self.settings.concurrency + 4
        )
        self._lock = threading.Lock()
        self._listings: dict[S3Uri, Listing] = {}

    def listing(self, uri: S3Uri) -> Listing:
        with self._lock:
            known = self._listings.get(uri)
        if known is None:
            with self.client.translated(uri, None):
                known = list_uri(self.client, uri)
            with self._lock:
                self._listings[uri] = known
            self.client.pin_etags(uri.bucket, {o.key: o.etag for o in known.objects})
        return known

    def digest(self, uri: S3Uri, limits: S3Limits) -> str:
        """A hash of what :meth:`download` would take: (key, ETag, size) of each object, and the
        limits. One LIST, no download."""
        planned = plan_files(self.listing(uri), limits)
        described = {
            "uri": str(uri),
            "limits": [limits.max_files, limits.max_bytes, limits.sample_rows],
            "objects": [[p.obj.key, p.obj.etag, p.obj.size] for p in planned],
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()

    def download(
        self, uri: S3Uri, limits: S3Limits, target: Path, label: str = "", check_time: Callable[[], None] | None = None
    ) -> DownloadSummary:
        """Fetch the objects of ``uri`` into ``target`` (emptied first), keeping their layout
        under the prefix; a single object lands as ``target/<its name>``. ``check_time`` is called
        while the transfer is waited for, and raises to stop it (what it left in ``target`` is not
        removed: the caller knows whether to)."""
        with self._cache_in_use() as cache:
            return self._download(uri, limits, target, label, cache, check_time)

    def evict_cache(self) -> CacheEviction:
        """Trim the download cache to ``cache_max_bytes``, least recently used entries first,
        and sweep stale temporary files; skipped while any process is downloading with it."""
        if self.settings.cache_dir is None:
            return CacheEviction()
        return DownloadCache(self.settings.cache_dir).evict(self.settings.cache_max_bytes)

    @contextmanager
    def _cache_in_use(self) -> Iterator[DownloadCache | None]:
        if self.settings.cache_dir is None:
            yield None
            return
        cache = DownloadCache(self.settings.cache_dir)
        with cache.in_use():
            yield cache

    def _download(
        self,
        uri: S3Uri,
        limits: S3Limits,
        target: Path,
        label: str,
        cache: DownloadCache | None,
        check_time: Callable[[], None] | None,
    ) -> DownloadSummary:
        started = time.monotonic()
        listing = self.listing(uri)
        planned = plan_files(listing, limits)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        # plan_files refused keys with '..', '.' or a leading '/', and target is new (no symlinks
        # in it): every file lands under target
        for directory in sorted(
            {item.relative.parent for item in planned if item.relative.parent != PurePosixPath(".")}
        ):
            (target / directory).mkdir(parents=True, exist_ok=True)
        total = sum(p.obj.size for p in planned)
        progress = Progress(label or str(uri), len(planned), total, self.settings.progress, check_time)
        summary = DownloadSummary(path=target if listing.prefix is not None else target / planned[0].relative)

        sizes: dict[PurePosixPath, int] = {}
        sampled = [p for p in planned if p.sampled]
        if sampled:
            assert limits.sample_rows is not None
            sizes, count = fetch_samples(
                self.client,
                uri,
                sampled,
                limits.sample_rows,
                target,
                cache,
                progress,
                concurrency=self.settings.concurrency,
            )
            summary.fetched += count.fetched
            summary.from_cache += count.from_cache
        taken = fit_max_bytes(uri, planned, sizes, limits.max_bytes)
        kept = {item.relative for item in taken}
        for item in sampled:
            if item.relative not in kept:
                (target / item.relative).unlink(missing_ok=True)
        count = fetch_whole(
            self.client,
            uri,
            [p for p in planned if not p.sampled and p.relative in kept],
            target,
            cache,
            progress,
            concurrency=self.settings.concurrency,
            part_bytes=self.settings.part_bytes,
        )
        summary.fetched += count.fetched
        summary.from_cache += count.from_cache

        summary.files = len(taken)
        summary.bytes = sum(sizes.get(p.relative, p.obj.size) for p in taken)
        summary.sampled = sum(1 for p in taken if p.sampled)
        summary.left_out = len(listing.objects) - len(taken)
        summary.seconds = time.monotonic() - started
        if summary.left_out:
            summary.note = f"took {len(taken)} of {len(listing.objects)} objects ({limits.describe()})"
        progress.finish(summary.note)
        return summary
