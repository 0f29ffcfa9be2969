"""What is at a URI (one paginated LIST: keys, ETags, sizes) and which of its files to take.

The files taken (``max_files``, ``max_bytes``) are chosen on the listing in key order, so one
listing always gives the same files: the step cache key of a step fed by S3 is a hash of it,
with no download.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from pytest_cursus.data.s3.client import S3Client
from pytest_cursus.data.s3.errors import S3Error, S3NotFound
from pytest_cursus.data.s3.uri import S3Limits, S3Uri


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
    relative: PurePosixPath  # where it lands under the target
    sampled: bool  # a table file cut to its first rows (``sample_rows``)


def list_uri(client: S3Client, uri: S3Uri) -> Listing:
    """The objects at ``uri``: the object of that key if there is one, else those under the
    prefix, in key order; :class:`S3NotFound` when there are none."""
    # pages followed by hand: botocore's paginator would load and parse one more model file
    found: list[S3Object] = []
    after: dict[str, str] = {}
    while True:
        page = client.api.list_objects_v2(Bucket=uri.bucket, Prefix=uri.key, **after)
        found += [
            S3Object(item["Key"], item.get("ETag", ""), int(item.get("Size", 0))) for item in page.get("Contents", [])
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
        at = client.at_endpoint
        if uri.key and not uri.key.endswith("/"):
            raise S3NotFound(
                f"no object {uri} and nothing under {uri}/{at} (the bucket exists): check the key in the URI"
            )
        raise S3NotFound(
            f"nothing under {uri}{at} (the bucket exists, the prefix is empty): check the prefix in the URI"
        )
    return Listing(uri, prefix, tuple(objects))


def plan_files(listing: Listing, limits: S3Limits) -> list[PlannedFile]:
    """The files to take, in key order, before ``max_bytes`` (see :func:`fit_max_bytes`)."""
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
                    f"{listing.uri.of_key(files[parent])} and {listing.uri.of_key(item.obj.key)} cannot both be "
                    "written: the first would be a file where the second needs a directory; narrow the URI"
                )
    return planned


def fit_max_bytes(
    uri: S3Uri, planned: Sequence[PlannedFile], sizes: dict[PurePosixPath, int], max_bytes: int | None
) -> list[PlannedFile]:
    """The longest run of ``planned`` (key order) whose size fits ``max_bytes``; ``sizes`` holds
    the size on disk of the files already fetched (samples), the others count their listed size."""
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
            f"{' after sampling' if first.sampled else ''}): raise max_bytes, or set sample_rows to take the first "
            "rows of table files"
        )
    return taken


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
        f"object key {obj.key!r} under {listing.uri} cannot be downloaded safely ({problem}: it would be written "
        "outside the target directory); rename the object or narrow the URI to exclude it"
    )
