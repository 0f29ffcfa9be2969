"""``s3:`` data sources: downloaded from a real S3 endpoint (moto's server over HTTP), limited,
cached by ETag, and every fault a clear message naming the URI."""

from __future__ import annotations

import gzip
import html
import io
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_project import PipelineProject
from pytest_cursus.data.s3.access import S3Access, S3Settings
from pytest_cursus.data.s3.client import model_loader
from pytest_cursus.data.s3.errors import S3Error
from pytest_cursus.data.s3.uri import S3Limits, S3Uri
from s3_fixtures import SECRET_ACCESS_KEY, SESSION_TOKEN, FaultProxy, S3Bucket, set_aws_env

KiB = 1024
MiB = 2**20


def _access(endpoint: str, cache: Path | None, **settings: object) -> S3Access:
    return S3Access(S3Settings(endpoint_url=endpoint, cache_dir=cache, progress=io.StringIO(), **settings))  # type: ignore[arg-type]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _entries(cache: Path) -> dict[str, bytes]:
    """The download cache's complete entries (temporary files have a '.' in their name)."""
    return {p.name: p.read_bytes() for p in (cache / "objects").rglob("*") if p.is_file() and "." not in p.name}


def _csv(rows: int, quoted_newlines: bool = False) -> str:
    if quoted_newlines:
        return "id,text\n" + "".join(f'{i},"first line {i}\nsecond line, with a comma"\n' for i in range(rows))
    return "id,amount,country\n" + "".join(f"{i},{i * 1.5},{'US' if i % 2 else 'GB'}\n" for i in range(rows))


def _parquet(rows: int, row_group: int) -> bytes:
    table = pa.table({"id": list(range(rows)), "text": [f"value number {i} " * 4 for i in range(rows)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group)
    return sink.getvalue()


# --- what gets downloaded --------------------------------------------------------------------------


def test_a_prefix_is_downloaded_with_its_layout_under_the_target(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    files = {"train/part-0.csv": "a\n1\n", "train/part-1.csv": "a\n2\n", "val/part-0.csv": "a\n3\n", "_SUCCESS": ""}
    for name, body in files.items():
        s3_bucket.put(f"exec/out/{name}", body)
    s3_bucket.put("exec/other/x.csv", "not this")
    summary = _access(s3_bucket.endpoint, tmp_path / "cache").download(
        S3Uri.parse(s3_bucket.uri("exec/out/")), S3Limits(), tmp_path / "data"
    )
    assert _tree(tmp_path / "data") == {name: body.encode() for name, body in files.items()}
    assert (summary.path, summary.files, summary.fetched, summary.from_cache) == (tmp_path / "data", 4, 4, 0)


def test_a_single_object_uri_gives_that_one_file(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("fixtures/hyperparameters.json", '{"eta": 0.3}')
    s3_bucket.put("fixtures/hyperparameters.json.bak", "old")
    summary = _access(s3_bucket.endpoint, None).download(
        S3Uri.parse(s3_bucket.uri("fixtures/hyperparameters.json")), S3Limits(), tmp_path / "data"
    )
    assert summary.path == tmp_path / "data" / "hyperparameters.json"
    assert _tree(tmp_path / "data") == {"hyperparameters.json": b'{"eta": 0.3}'}


def test_a_uri_without_trailing_slash_names_the_prefix_when_no_object_has_that_key(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    s3_bucket.put("data/part-0.csv", "a\n1\n")
    s3_bucket.put("database/part-0.csv", "not under data/")
    _access(s3_bucket.endpoint, None).download(S3Uri.parse(s3_bucket.uri("data")), S3Limits(), tmp_path / "data")
    assert _tree(tmp_path / "data") == {"part-0.csv": b"a\n1\n"}


def test_folder_placeholder_objects_are_not_files(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/", "")
    s3_bucket.put("data/sub/", "")
    s3_bucket.put("data/sub/part-0.csv", "a\n1\n")
    _access(s3_bucket.endpoint, None).download(S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "data")
    assert _tree(tmp_path / "data") == {"sub/part-0.csv": b"a\n1\n"}


def test_a_large_object_is_fetched_in_ranged_parts_into_one_file(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    body = os.urandom(MiB + 123)
    s3_bucket.put("data/blob.bin", body)
    proxy = fault_proxy()
    _access(proxy.endpoint, tmp_path / "cache", part_bytes=256 * 1024).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "data"
    )
    assert (tmp_path / "data" / "blob.bin").read_bytes() == body
    assert proxy.gets_of("/data/blob.bin") == 5


# --- limits ----------------------------------------------------------------------------------------


def test_max_files_takes_the_first_objects_in_key_order(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    for index in (3, 0, 2, 1):
        s3_bucket.put(f"data/part-{index:05d}.csv", f"a\n{index}\n")
    summary = _access(s3_bucket.endpoint, None).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(max_files=2), tmp_path / "data"
    )
    assert sorted(_tree(tmp_path / "data")) == ["part-00000.csv", "part-00001.csv"]
    assert summary.left_out == 2 and "max_files=2" in summary.note


def test_max_bytes_takes_the_objects_that_fit_and_never_more(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    for index in range(5):
        s3_bucket.put(f"data/part-{index}.bin", os.urandom(1000))
    _access(s3_bucket.endpoint, None).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(max_bytes=3500), tmp_path / "data"
    )
    assert sorted(_tree(tmp_path / "data")) == ["part-0.bin", "part-1.bin", "part-2.bin"]


def test_max_bytes_below_the_first_object_is_an_error_naming_it(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/big.parquet", _parquet(1000, 1000))
    with pytest.raises(
        S3Error,
        match=r"max_bytes=100 is smaller than the first object s3://.*/data/big.parquet "
        r".*raise max_bytes, or set sample_rows",
    ):
        _access(s3_bucket.endpoint, None).download(
            S3Uri.parse(s3_bucket.uri("data/")), S3Limits(max_bytes=100), tmp_path / "data"
        )


def test_sample_rows_cuts_a_csv_to_its_header_and_first_rows_reading_only_its_start(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    text = _csv(50_000, quoted_newlines=True)  # a quoted value spans two lines: rows are not lines
    s3_bucket.put("data/big.csv", text)
    proxy = fault_proxy()
    _access(proxy.endpoint, None).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(sample_rows=25), tmp_path / "data"
    )
    sampled = pd.read_csv(tmp_path / "data" / "big.csv")
    pd.testing.assert_frame_equal(sampled, pd.read_csv(io.StringIO(text), nrows=25))
    assert proxy.response_bytes < len(text) / 10, "only the start of the object is fetched"


@pytest.mark.parametrize("name", ["part-0.csv.gz", "part-0.tsv", "part-0.jsonl", "part-0.jsonl.gz"])
def test_sample_rows_takes_the_first_rows_of_line_formats_gzipped_or_not(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path, name: str
) -> None:
    frame = pd.DataFrame({"id": range(60_000), "country": ["US", "GB", "DE"] * 20_000})
    kind = name.split(".")[1]
    buffer = io.BytesIO()
    if kind == "jsonl":
        frame.to_json(buffer, orient="records", lines=True)
    else:
        frame.to_csv(buffer, sep="\t" if kind == "tsv" else ",", index=False)
    body = gzip.compress(buffer.getvalue()) if name.endswith(".gz") else buffer.getvalue()
    s3_bucket.put(f"data/{name}", body)
    proxy = fault_proxy()
    _access(proxy.endpoint, None).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(sample_rows=100), tmp_path / "data"
    )
    path = tmp_path / "data" / name
    sampled = (
        pd.read_json(path, lines=True) if kind == "jsonl" else pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    )
    pd.testing.assert_frame_equal(sampled, frame.head(100))
    assert proxy.response_bytes < len(body) / 2


def test_sample_rows_reads_a_parquet_footer_and_first_row_group_only(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    body = _parquet(200_000, row_group=20_000)
    s3_bucket.put("data/part-0.parquet", body)
    proxy = fault_proxy()
    _access(proxy.endpoint, None).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(sample_rows=1_000), tmp_path / "data"
    )
    sampled = pq.read_table(tmp_path / "data" / "part-0.parquet")
    assert sampled.equals(pq.read_table(io.BytesIO(body)).slice(0, 1_000))
    assert proxy.response_bytes < len(body) / 5, "ten row groups: about one is read"


def test_sample_rows_takes_files_that_are_not_tables_whole(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/model.tar.gz", os.urandom(5000))
    s3_bucket.put("data/rows.csv", _csv(100))
    _access(s3_bucket.endpoint, None).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(sample_rows=3), tmp_path / "data"
    )
    assert (tmp_path / "data" / "model.tar.gz").read_bytes() == s3_bucket.get("data/model.tar.gz")
    assert len(pd.read_csv(tmp_path / "data" / "rows.csv")) == 3


def test_max_bytes_with_sample_rows_counts_the_sampled_sizes(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    for index in range(4):
        s3_bucket.put(f"data/part-{index}.csv", _csv(10_000))  # ~200 KB each; 10 rows are ~200 bytes
    _access(s3_bucket.endpoint, None).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(sample_rows=10, max_bytes=1000), tmp_path / "data"
    )
    taken = _tree(tmp_path / "data")
    assert len(taken) == 4 and sum(len(body) for body in taken.values()) <= 1000


# --- download cache --------------------------------------------------------------------------------


def test_a_second_download_fetches_no_object(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    for index in range(5):
        s3_bucket.put(f"data/part-{index}.bin", os.urandom(20_000))
    proxy = fault_proxy()
    first = _access(proxy.endpoint, tmp_path / "cache").download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "one"
    )
    assert (first.fetched, proxy.gets_of("/data/part-")) == (5, 5)
    second = _access(proxy.endpoint, tmp_path / "cache").download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "two"
    )
    assert (second.fetched, second.from_cache, proxy.gets_of("/data/part-")) == (0, 5, 5)
    assert _tree(tmp_path / "two") == _tree(tmp_path / "one")


def test_a_changed_object_is_fetched_again_and_only_it(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    for index in range(3):
        s3_bucket.put(f"data/part-{index}.csv", f"a\n{index}\n")
    proxy = fault_proxy()
    _access(proxy.endpoint, tmp_path / "cache").download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "one"
    )
    s3_bucket.put("data/part-1.csv", "a\nchanged\n")
    second = _access(proxy.endpoint, tmp_path / "cache").download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "two"
    )
    assert (second.fetched, second.from_cache) == (1, 2)
    assert (tmp_path / "two" / "part-1.csv").read_text() == "a\nchanged\n"


def test_samples_are_cached_per_sample_size(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/rows.csv", _csv(1000))
    uri = S3Uri.parse(s3_bucket.uri("data/"))
    _access(s3_bucket.endpoint, tmp_path / "cache").download(uri, S3Limits(sample_rows=5), tmp_path / "one")
    again = _access(s3_bucket.endpoint, tmp_path / "cache").download(uri, S3Limits(sample_rows=5), tmp_path / "two")
    larger = _access(s3_bucket.endpoint, tmp_path / "cache").download(uri, S3Limits(sample_rows=7), tmp_path / "three")
    assert (again.from_cache, larger.fetched) == (1, 1)
    assert len(pd.read_csv(tmp_path / "three" / "rows.csv")) == 7


def test_an_interrupted_download_leaves_nothing_a_later_run_trusts(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    body = os.urandom(MiB)
    s3_bucket.put("data/blob.bin", body)
    dropping = fault_proxy(cut_after=100_000, cuts=10**6)
    with pytest.raises(S3Error):
        _access(dropping.endpoint, tmp_path / "cache", attempts=2).download(
            S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "one"
        )
    entries = [p for p in (tmp_path / "cache" / "objects").rglob("*") if p.is_file()]
    assert all("." in p.name for p in entries), f"only temporary names, never an entry: {entries}"
    _access(s3_bucket.endpoint, tmp_path / "cache").download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "two"
    )
    assert (tmp_path / "two" / "blob.bin").read_bytes() == body


def test_a_truncated_cache_entry_is_fetched_again(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/blob.bin", b"x" * 10_000)
    uri = S3Uri.parse(s3_bucket.uri("data/"))
    _access(s3_bucket.endpoint, tmp_path / "cache").download(uri, S3Limits(), tmp_path / "one")
    (entry,) = [p for p in (tmp_path / "cache" / "objects").rglob("*") if p.is_file()]
    entry.chmod(0o644)
    entry.write_bytes(b"x" * 10)  # e.g. a disk that filled up under another tool
    again = _access(s3_bucket.endpoint, tmp_path / "cache").download(uri, S3Limits(), tmp_path / "two")
    assert again.fetched == 1 and (tmp_path / "two" / "blob.bin").read_bytes() == b"x" * 10_000


def test_without_a_cache_dir_nothing_is_kept(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/a.csv", "a\n1\n")
    for target in ("one", "two"):
        summary = _access(s3_bucket.endpoint, None).download(
            S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / target
        )
        assert (summary.fetched, summary.from_cache) == (1, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]


def test_eviction_trims_the_cache_to_its_cap_removing_the_least_recently_used_objects(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    bodies = {f"{prefix}/part-{index}.bin": os.urandom(10 * KiB) for prefix in ("old", "new") for index in range(3)}
    for key, body in bodies.items():
        s3_bucket.put(key, body)
    cache = tmp_path / "cache"
    access = _access(s3_bucket.endpoint, cache, cache_max_bytes=35 * KiB)
    for prefix in ("old", "new", "old"):  # "old" is used last: "new" is the least recently used
        access.download(S3Uri.parse(s3_bucket.uri(f"{prefix}/")), S3Limits(), tmp_path / prefix)
        time.sleep(0.05)  # file times tick by the kernel's clock (milliseconds)
    eviction = access.evict_cache()
    assert (eviction.busy, eviction.evicted, eviction.evicted_bytes, eviction.kept_bytes) == (
        False,
        3,
        30 * KiB,
        30 * KiB,
    )
    assert sorted(_entries(cache).values()) == sorted(bodies[f"old/part-{index}.bin"] for index in range(3)), (
        "whole entries, of old/ only"
    )
    proxy = fault_proxy()
    again = _access(proxy.endpoint, cache)
    assert again.download(S3Uri.parse(s3_bucket.uri("old/")), S3Limits(), tmp_path / "old-again").from_cache == 3
    assert again.download(S3Uri.parse(s3_bucket.uri("new/")), S3Limits(), tmp_path / "new-again").fetched == 3
    assert (proxy.gets_of("/old/"), proxy.gets_of("/new/")) == (0, 3)
    assert (tmp_path / "new" / "part-0.bin").read_bytes() == bodies["new/part-0.bin"], (
        "files placed before eviction stay whole"
    )


def test_eviction_is_skipped_while_another_download_uses_the_cache(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    s3_bucket.put("done/a.bin", os.urandom(20 * KiB))
    s3_bucket.put("slow/b.bin", os.urandom(200 * KiB))
    cache = tmp_path / "cache"
    _access(s3_bucket.endpoint, cache).download(S3Uri.parse(s3_bucket.uri("done/")), S3Limits(), tmp_path / "done")
    slow = fault_proxy(delay=0.05)
    downloading = threading.Thread(
        target=_access(slow.endpoint, cache).download,
        args=(S3Uri.parse(s3_bucket.uri("slow/")), S3Limits(), tmp_path / "slow"),
    )
    downloading.start()
    deadline = time.monotonic() + 30
    while slow.gets_of("/slow/b.bin") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert downloading.is_alive(), "the download is still in progress"
    eviction = _access(s3_bucket.endpoint, cache, cache_max_bytes=1).evict_cache()
    assert eviction.busy and eviction.evicted == 0 and len(_entries(cache)) == 1
    downloading.join(timeout=60)
    assert not downloading.is_alive() and len(_entries(cache)) == 2
    assert _access(s3_bucket.endpoint, cache, cache_max_bytes=1).evict_cache().evicted == 2
    assert _entries(cache) == {}


def test_eviction_sweeps_temporary_files_a_killed_run_left(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/a.bin", b"a" * KiB)
    cache = tmp_path / "cache"
    access = _access(s3_bucket.endpoint, cache)
    access.download(S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "one")
    (entry,) = [p for p in (cache / "objects").rglob("*") if p.is_file()]
    stale = entry.with_name(entry.name + ".part-0badf00d")
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 2 * 3600,) * 2)
    fresh = entry.with_name(entry.name + ".part-1234abcd")  # being written right now
    fresh.write_bytes(b"half")
    eviction = access.evict_cache()
    assert (eviction.swept, eviction.evicted) == (1, 0)
    assert not stale.exists() and fresh.exists() and entry.read_bytes() == b"a" * KiB


def test_the_digest_lists_without_downloading_and_follows_etags(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy]
) -> None:
    s3_bucket.put("data/a.csv", "a\n1\n")
    proxy = fault_proxy()
    uri = S3Uri.parse(s3_bucket.uri("data/"))
    before = _access(proxy.endpoint, None).digest(uri, S3Limits())
    s3_bucket.put("data/a.csv", "a\n2\n")
    after = _access(proxy.endpoint, None).digest(uri, S3Limits())
    assert before != after
    assert proxy.gets_of("/data/a.csv") == 0
    assert _access(proxy.endpoint, None).digest(uri, S3Limits(max_files=1)) != after, "limits are part of it"


def test_a_listing_longer_than_one_page_is_followed_to_its_end(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy]
) -> None:
    keys = [f"many/part-{index:05d}.csv" for index in range(1005)]  # S3 answers 1,000 keys a page
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3_bucket.put(key, "a\n1\n"), keys))
    proxy = fault_proxy()
    listing = _access(proxy.endpoint, None).listing(S3Uri.parse(s3_bucket.uri("many/")))
    assert [obj.key for obj in listing.objects] == keys
    assert sum(1 for method, path in proxy.requests if method == "GET" and "list-type=2" in path) == 2


def test_an_object_changed_between_listing_and_download_is_an_error(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/a.csv", "a\n1\n")
    access = _access(s3_bucket.endpoint, tmp_path / "cache")
    uri = S3Uri.parse(s3_bucket.uri("data/"))
    access.listing(uri)
    s3_bucket.put("data/a.csv", "a\n2\n")  # every GET carries If-Match with the listed ETag
    with pytest.raises(S3Error, match=r"s3://.*/data/a.csv changed while it was being downloaded .*rerun"):
        access.download(uri, S3Limits(), tmp_path / "data")
    assert _entries(tmp_path / "cache") == {}


# --- the client: botocore's own models, credential chain and endpoints ----------------------------


def test_the_client_loads_botocore_s_model_files_unchanged_with_their_key_order() -> None:
    """The plugin's botocore sessions parse the JSON models into plain dicts (botocore makes
    OrderedDicts, twice as slow to parse): the data must be botocore's own, in the same order.
    (Fresh loaders: botocore adjusts some loaded data in place once clients use it.)"""
    import botocore.loaders
    import botocore.session

    data_path = botocore.session.Session().get_config_variable("data_path")
    ours, botocore_s = model_loader(data_path), botocore.loaders.create_loader(data_path)
    assert ours.search_paths == botocore_s.search_paths
    for name in ("endpoints", "partitions", "_retry", "sdk-default-configuration"):
        same = json.dumps(ours.load_data(name)) == json.dumps(botocore_s.load_data(name))  # no diff of megabytes
        assert same, f"{name} differs"
    for type_name in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"):
        same = json.dumps(ours.load_service_model("s3", type_name)) == json.dumps(
            botocore_s.load_service_model("s3", type_name)
        )
        assert same, f"s3 {type_name} differs"
    assert ours.list_available_services("service-2") == botocore_s.list_available_services("service-2")


@pytest.mark.parametrize(
    ("region", "fips"),
    [
        ("us-east-1", False),
        ("eu-west-2", False),
        ("cn-north-1", False),
        ("us-gov-west-1", True),
        ("xx-unknown-9", False),
    ],
)
def test_the_client_resolves_aws_endpoints_as_botocore_s_own_client_does(
    region: str, fips: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import botocore.session

    set_aws_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    if fips:
        monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    ours = S3Access(S3Settings()).client.api  # AWS itself; nothing is sent
    theirs = botocore.session.Session().create_client("s3")

    def where(client: object, bucket: str) -> tuple[str, str, list[str], list[str]]:
        """Host, path, query parameters and (SigV4) credential scope of a GET's presigned URL."""
        url = urlsplit(client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a/b.csv"}))  # type: ignore[attr-defined]
        query = parse_qs(url.query)
        return (
            url.netloc,
            url.path,
            sorted(query),
            [value.split("/", 2)[2] for value in query.get("X-Amz-Credential", [])],
        )

    assert ours.meta.endpoint_url == theirs.meta.endpoint_url
    for bucket in ("cursus-data", "cursus.dotted.bucket"):
        assert where(ours, bucket) == where(theirs, bucket)


def test_credentials_of_an_assumed_role_refresh_through_sts_during_a_download(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An assumed role's credentials are fetched, and refreshed, by an STS client that the
    plugin's botocore session creates with its own model loader (moto's STS, here)."""
    for index in range(3):
        s3_bucket.put(f"data/part-{index}.csv", f"a\n{index}\n")
    sts = fault_proxy()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    (tmp_path / "config").write_text(
        # 900 s, the shortest: botocore refreshes before each request from then on
        "[profile cursus-role]\nrole_arn = arn:aws:iam::123456789012:role/cursus-reader\n"
        "source_profile = cursus-base\nduration_seconds = 900\n"
    )
    (tmp_path / "credentials").write_text(
        "[cursus-base]\naws_access_key_id = AKIACURSUSBASEKEY001\naws_secret_access_key = cursus-base-secret-key\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_PROFILE", "cursus-role")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.endpoint)
    summary = _access(s3_bucket.endpoint, None).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "data"
    )
    assert _tree(tmp_path / "data") == {f"part-{index}.csv": f"a\n{index}\n".encode() for index in range(3)}
    assert summary.fetched == 3
    assume_role_calls = sum(1 for method, path in sts.requests if method == "POST")
    assert assume_role_calls >= 2, "the first AssumeRole, then refreshes while listing and downloading"


# --- faults ----------------------------------------------------------------------------------------


def _error(access: S3Access, uri: str, target: Path) -> str:
    with pytest.raises(S3Error) as caught:
        access.download(S3Uri.parse(uri), S3Limits(), target)
    return str(caught.value)


def test_a_missing_bucket_is_named(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    message = _error(_access(s3_bucket.endpoint, None), "s3://no-such-bucket-cursus/data/", tmp_path / "data")
    assert message.startswith("bucket 'no-such-bucket-cursus' does not exist at http://127.0.0.1:")
    assert (
        "(reading s3://no-such-bucket-cursus/data/): check the bucket name in the URI and --cursus-s3-endpoint"
        in message
    )


def test_no_credentials_says_how_to_provide_them(
    s3_bucket: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    message = _error(_access(s3_bucket.endpoint, None), s3_bucket.uri("data/"), tmp_path / "data")
    assert message.startswith(
        f"no AWS credentials found to read {s3_bucket.uri('data/')}: configure them the usual way for boto3"
    )
    assert "AWS_PROFILE" in message


def test_access_denied_names_the_uri_and_the_permissions_needed(
    forbidden_endpoint: str, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    message = _error(_access(forbidden_endpoint, None), s3_bucket.uri("data/"), tmp_path / "data")
    assert message.startswith(
        f"access denied to {s3_bucket.uri('data/')} at {forbidden_endpoint}: "
        "ListObjectsV2 answered AccessDenied (credentials from env)"
    )
    assert "s3:ListBucket" in message and "s3:GetObject" in message


def test_an_empty_prefix_is_named(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("other/a.csv", "a\n")
    message = _error(_access(s3_bucket.endpoint, None), s3_bucket.uri("data/"), tmp_path / "data")
    assert message.startswith(f"nothing under {s3_bucket.uri('data/')} at ")
    assert "the prefix is empty): check the prefix in the URI" in message


@pytest.mark.parametrize("key", ["data/../escape.csv", "data/sub/../../escape.csv", "data//etc/cursus-escape.csv"])
def test_a_key_that_would_escape_the_target_is_refused_and_nothing_is_written(
    s3_bucket: S3Bucket, tmp_path: Path, key: str
) -> None:
    s3_bucket.put("data/fine.csv", "a\n1\n")
    s3_bucket.put(key, "escaped")
    message = _error(
        _access(s3_bucket.endpoint, tmp_path / "cache"), s3_bucket.uri("data/"), tmp_path / "work" / "data"
    )
    assert f"object key {key!r} under {s3_bucket.uri('data/')} cannot be downloaded safely" in message
    assert "rename the object or narrow the URI" in message
    written = [
        p for p in tmp_path.rglob("*") if p.is_file() and p != tmp_path / "cache" / "lock"
    ]  # the lock holds no data
    assert written == [], f"nothing downloaded at all: {written}"
    assert not Path("/etc/cursus-escape.csv").exists()


def test_a_file_and_a_directory_of_the_same_name_are_refused(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/a", "file")
    s3_bucket.put("data/a/b.csv", "a\n1\n")
    message = _error(_access(s3_bucket.endpoint, None), s3_bucket.uri("data/"), tmp_path / "data")
    assert "cannot both be written" in message and "/data/a " in message


def test_a_connection_dropping_mid_transfer_is_retried(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    bodies = {f"data/part-{index}.bin": os.urandom(MiB) for index in range(3)}
    for key, body in bodies.items():
        s3_bucket.put(key, body)
    proxy = fault_proxy(cut_after=200_000, cuts=2)
    _access(proxy.endpoint, tmp_path / "cache").download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "data"
    )
    assert _tree(tmp_path / "data") == {key.removeprefix("data/"): body for key, body in bodies.items()}
    assert proxy.cuts_done == 2 and proxy.gets_of("/data/part-") == 5


def test_a_connection_that_keeps_dropping_gives_up_with_a_clear_error(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    s3_bucket.put("data/blob.bin", os.urandom(MiB))
    proxy = fault_proxy(cut_after=200_000, cuts=10**6)
    message = _error(_access(proxy.endpoint, None, attempts=3), s3_bucket.uri("data/"), tmp_path / "data")
    assert message.startswith(
        f"the connection dropped while downloading {s3_bucket.uri('data/blob.bin')} at {proxy.endpoint}; "
        "gave up after 3 attempts"
    )
    assert "check the network and --cursus-s3-endpoint and rerun" in message
    assert proxy.gets_of("/data/blob.bin") == 3


def test_a_sampled_read_dropping_mid_transfer_is_retried(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    text = _csv(20_000)
    s3_bucket.put("data/rows.csv", text)
    proxy = fault_proxy(cut_after=30_000, cuts=1)
    _access(proxy.endpoint, None).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(sample_rows=4000), tmp_path / "data"
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "data" / "rows.csv"), pd.read_csv(io.StringIO(text), nrows=4000)
    )
    assert proxy.cuts_done == 1


def test_an_unreachable_endpoint_is_named(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    message = _error(_access(f"http://127.0.0.1:{port}", None, attempts=1), s3_bucket.uri("data/"), tmp_path / "data")
    assert message.startswith(f"could not connect to S3 at http://127.0.0.1:{port} to read {s3_bucket.uri('data/')}")


# --- progress --------------------------------------------------------------------------------------


def test_a_transfer_over_a_second_shows_a_progress_line(
    s3_bucket: S3Bucket, fault_proxy: type[FaultProxy], tmp_path: Path
) -> None:
    for index in range(4):
        s3_bucket.put(f"data/part-{index}.bin", os.urandom(300_000))
    proxy = fault_proxy(delay=0.15)  # at least 5 chunks per object, two objects at a time: over a second
    stream = io.StringIO()
    S3Access(S3Settings(endpoint_url=proxy.endpoint, concurrency=2, progress=stream)).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "data", label="data.source"
    )
    lines = stream.getvalue().splitlines()
    assert lines and all(line.startswith("cursus s3: data.source: ") for line in lines)
    assert "4/4 files" in lines[-1] and "1.1/1.1 MiB" in lines[-1]


def test_a_quick_transfer_prints_nothing(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put("data/a.csv", "a\n1\n")
    stream = io.StringIO()
    S3Access(S3Settings(endpoint_url=s3_bucket.endpoint, progress=stream)).download(
        S3Uri.parse(s3_bucket.uri("data/")), S3Limits(), tmp_path / "data"
    )
    assert stream.getvalue() == ""


# --- in a pytest run -------------------------------------------------------------------------------

# Writes what the script saw at its DATA input to seen.json ({relative path: text}), and counts runs.
READER_SCRIPT = """
import json, os

def main(input_paths, output_paths, environ_vars, job_args):
    with open(os.environ["RUN_LOG"], "a") as log:
        log.write("ran\\n")
    root = input_paths["DATA"]
    seen = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            seen[os.path.relpath(path, root)] = open(path, "rb").read().decode("utf-8", "replace")
    with open(os.path.join(output_paths["out"], "seen.json"), "w") as handle:
        json.dump(seen, handle)
"""


def _reader(
    project: PipelineProject,
    s3: str,
    synthetic: str | None = "{rows: 5, columns: {id: {type: int}}}",
    scenario: str = "s3src",
) -> PipelineProject:
    """Scenario ``scenario``: step `read` (reader.py) reads data source `source`."""
    project.contract("Reader", entry_point="reader.py", inputs={"DATA": {"path": "/opt/ml/processing/input/data"}})
    project.script("reader.py", READER_SCRIPT)
    project.scenario(
        scenario,
        f"""
        defaults: {{env: {{RUN_LOG: {project.root / "runs.log"}}}}}
        data:
          source:
            {f"synthetic: {synthetic}" if synthetic else ""}
            s3: {s3}
        steps:
          read: {{contract: Reader, inputs: {{DATA: source}}}}
        """,
    )
    return project


def _run_s3(project: PipelineProject, endpoint: str, *args: str) -> pytest.RunResult:
    (project.root / "runs.log").write_text("")
    return project.run("--cursus-source", "s3", "--cursus-s3-endpoint", endpoint, "-v", *args)


def _seen(project: PipelineProject) -> dict[str, str]:
    return json.loads((project.step_dir("s3src", "read") / "output" / "out" / "seen.json").read_text())


def _runs(project: PipelineProject) -> int:
    return len((project.root / "runs.log").read_text().split())


def _no_traceback(result: pytest.RunResult) -> None:
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output and "botocore" not in output


def test_the_s3_variant_feeds_the_step_with_the_prefix_s_files(project: PipelineProject, s3_bucket: S3Bucket) -> None:
    s3_bucket.put("exec/out/train/part-0.csv", "id\n1\n")
    s3_bucket.put("exec/out/val/part-0.csv", "id\n2\n")
    _reader(project, s3_bucket.uri("exec/out/"))
    result = _run_s3(project, s3_bucket.endpoint)
    result.assert_outcomes(passed=1)
    assert _seen(project) == {"train/part-0.csv": "id\n1\n", "val/part-0.csv": "id\n2\n"}


def test_limits_written_in_the_scenario_apply(project: PipelineProject, s3_bucket: S3Bucket) -> None:
    for index in range(4):
        s3_bucket.put(f"data/part-{index}.csv", _csv(1000))
    _reader(project, "{uri: " + s3_bucket.uri("data/") + ", max_files: 2, sample_rows: 3}")
    _run_s3(project, s3_bucket.endpoint).assert_outcomes(passed=1)
    seen = _seen(project)
    assert sorted(seen) == ["part-0.csv", "part-1.csv"]
    assert all(text.count("\n") == 4 for text in seen.values()), "header and three rows"


def test_an_unchanged_prefix_is_not_run_again_and_a_changed_etag_reruns_the_step(
    project: PipelineProject, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put("data/a.csv", "id\n1\n")
    _reader(project, s3_bucket.uri("data/"))
    _run_s3(project, s3_bucket.endpoint).assert_outcomes(passed=1)
    again = _run_s3(project, s3_bucket.endpoint)
    again.stdout.fnmatch_lines(["*::read CACHED*"])
    assert _runs(project) == 0
    s3_bucket.put("data/a.csv", "id\n2\n")
    _run_s3(project, s3_bucket.endpoint).assert_outcomes(passed=1)
    assert _runs(project) == 1 and _seen(project) == {"a.csv": "id\n2\n"}


def test_downloads_are_cached_under_pytest_s_cache_unless_no_cache(
    project: PipelineProject, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put("data/a.csv", "id\n1\n")
    _reader(project, s3_bucket.uri("data/"))
    cache = project.root / ".pytest_cache" / "d" / "cursus-s3"
    _run_s3(project, s3_bucket.endpoint, "--cursus-no-cache").assert_outcomes(passed=1)
    assert not cache.exists() or _entries(cache) == {}
    # a fresh step cache, so the step runs and reads its source
    _run_s3(project, s3_bucket.endpoint, "--cursus-cache-dir", "other-steps").assert_outcomes(passed=1)
    assert list(_entries(cache).values()) == [b"id\n1\n"]


def test_the_download_cache_is_trimmed_to_its_cap_at_the_end_of_a_session_also_under_xdist(
    project: PipelineProject, s3_bucket: S3Bucket
) -> None:
    for index in range(4):
        s3_bucket.put(f"data/part-{index}.csv", "id\n" + f"{index}\n" * 4000)  # 8 KB each
    _reader(project, s3_bucket.uri("data/"))
    cache = project.root / ".pytest_cache" / "d" / "cursus-s3"
    _run_s3(project, s3_bucket.endpoint, "-n", "2").assert_outcomes(passed=1)
    assert len(_entries(cache)) == 4, "the default cap keeps everything"
    # the step is cached now: eviction needs no step to run
    capped = _run_s3(project, s3_bucket.endpoint, "-n", "2", "--cursus-s3-cache-max-mb", "0.02")
    capped.assert_outcomes(passed=1)
    kept = _entries(cache)
    assert len(kept) == 2 and sum(map(len, kept.values())) <= 0.02 * 2**20
    assert all(body.startswith(b"id\n") and len(body) == 8003 for body in kept.values()), "entries stay whole"


def test_the_download_cache_cap_is_an_ini_option_too(project: PipelineProject, s3_bucket: S3Bucket) -> None:
    for index in range(3):
        s3_bucket.put(f"data/part-{index}.csv", "id\n" + f"{index}\n" * 4000)
    _reader(project, s3_bucket.uri("data/"))
    project.pytester.makeini("[pytest]\ncursus_s3_cache_max_mb = 0.01\n")
    _run_s3(project, s3_bucket.endpoint).assert_outcomes(passed=1)
    assert len(_entries(project.root / ".pytest_cache" / "d" / "cursus-s3")) == 1


def test_the_notebook_api_trims_the_download_cache_when_a_call_ends(
    project: PipelineProject, s3_bucket: S3Bucket
) -> None:
    from pytest_cursus import run_scenario

    for index in range(3):
        s3_bucket.put(f"data/part-{index}.csv", "id\n" + f"{index}\n" * 4000)
    _reader(project, s3_bucket.uri("data/"))
    (project.root / "runs.log").write_text("")
    cache = project.root / "s3-cache"
    result = run_scenario(
        project.root / "scenarios" / "s3src.yaml",
        source="s3",
        s3_endpoint=s3_bucket.endpoint,
        s3_cache_dir=cache,
        s3_cache_max_mb=0.01,
        workspace=project.root / "nb",
        cache_dir=project.root / "steps",
    )
    assert result.passed and len(_entries(cache)) == 1


def test_an_invalid_s3_uri_is_a_collection_error_naming_the_line(project: PipelineProject) -> None:
    _reader(project, "http://bucket/data/")
    result = project.run("--cursus-source", "s3")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*scenarios/s3src.yaml:*: data.source.s3*expected an s3://bucket/key URI, got 'http://bucket/data/'*"]
    )


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "s3://no-such-bucket-cursus/data/",
            "*data.source.s3: bucket 'no-such-bucket-cursus' does not exist at http://127.0.0.1:*",
        ),
        (
            "s3://{bucket}/empty/",
            "*data.source.s3: nothing under s3://*/empty/ at http://127.0.0.1:*the prefix is empty*",
        ),
    ],
)
def test_a_fault_fails_the_step_at_setup_with_the_message_only(
    project: PipelineProject, s3_bucket: S3Bucket, uri: str, expected: str
) -> None:
    _reader(project, uri.format(bucket=s3_bucket.name))
    result = _run_s3(project, s3_bucket.endpoint)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([expected, "*The step did not start, so it has no workspace.*"])
    _no_traceback(result)


def test_access_denied_in_a_run_names_the_uri(
    project: PipelineProject, s3_bucket: S3Bucket, forbidden_endpoint: str
) -> None:
    _reader(project, s3_bucket.uri("data/"))
    result = _run_s3(project, forbidden_endpoint)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"*data.source.s3: access denied to {s3_bucket.uri('data/')} at {forbidden_endpoint}*"]
    )
    _no_traceback(result)


def test_credentials_never_appear_in_outputs_logs_workspace_or_caches(
    project: PipelineProject, s3_bucket: S3Bucket, forbidden_endpoint: str
) -> None:
    s3_bucket.put("data/a.csv", "id\n1\n")
    _reader(project, s3_bucket.uri("data/"))
    _reader(project, s3_bucket.uri("missing/"), synthetic=None, scenario="denied")
    # botocore's DEBUG records carry the session token in headers and canonical requests
    outputs = []
    for endpoint in (s3_bucket.endpoint, forbidden_endpoint):
        result = project.run_subprocess(
            "--cursus-source",
            "s3",
            "--cursus-s3-endpoint",
            endpoint,
            "--log-level=DEBUG",
            "-rA",
            "--junitxml=report.xml",
        )
        assert result.ret == 1  # the missing prefix (and, on the forbidden endpoint, both) fail
        outputs.append(result.stdout.str() + result.stderr.str())
    assert "X-Amz-Security-Token" in "".join(outputs) or "x-amz-security-token" in "".join(outputs), (
        "DEBUG logs were shown"
    )
    searched = {"output": "\n".join(outputs)}
    for path in project.root.rglob("*"):
        searched[f"path {path}"] = str(path)
        if path.is_file():
            searched[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for secret in (SECRET_ACCESS_KEY, SESSION_TOKEN):
        leaks = [where for where, text in searched.items() if secret in text]
        assert not leaks, f"{secret[:12]}... found in {leaks}"


def test_the_summary_compares_the_synthetic_variant_with_the_real_data(
    project: PipelineProject, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put(
        "data/part-0.csv", "id,country,amount\n" + "".join(f"{i},{['US', 'FR'][i % 2]},{i * 10}\n" for i in range(200))
    )
    synthetic = (
        "{rows: 50, seed: 1, columns: {id: {type: int, unique: true}, "
        "country: {type: category, values: [US, GB]}, note: {type: string}}}"
    )
    _reader(project, s3_bucket.uri("data/"), synthetic=synthetic)
    result = _run_s3(project, s3_bucket.endpoint)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= cursus: synthetic vs real =*",
            f"s3src: data.source: synthetic spec (50 rows, 1 file) vs real {s3_bucket.uri('data/')} (200 rows, 1 file)",
            "*differences (what to change in the synthetic spec):",
        ]
    )
    text = result.stdout.str()
    assert "note: only synthetic" in text and "amount: only real" in text and "add column amount (int)" in text
    assert (
        "country: categories: synthetic {GB, US}, real {FR, US} -> add FR to values; remove GB (never in the real data)"
        in text
    )


# Real data differing from the synthetic spec in every way the profile looks at.
REAL_CSV = "id,country,amount,score,code\n" + "".join(
    f"{i},{['US', 'FR'][i % 2]},{i * 10},{'' if i % 2 else i / 10},{'AB'[i % 2]}{i}\n" for i in range(200)
)
DIFFERING_SPEC = (
    "{rows: 50, seed: 1, columns: {id: {type: int, unique: true}, country: {type: category, values: [US, GB]},"
    " note: {type: string}, score: {type: float, min: 0, max: 20}, code: {type: int, min: 0, max: 9}}}"
)


def _html_tests(report: Path) -> dict[str, list[dict[str, object]]]:
    """pytest-html's per-test data, as its page script reads it."""
    blob = re.search(r'data-jsonblob="([^"]*)"', report.read_text())
    assert blob is not None
    return json.loads(html.unescape(blob.group(1)))["tests"]  # type: ignore[no-any-return]


def _profile_rows(fragment: str) -> dict[str, str]:
    """The side-by-side table's row of each column, as HTML."""
    return dict(re.findall(r'<tr data-column="([^"]+)">(.*?)</tr>', fragment))


def _cells_marked(row: str) -> list[str]:
    return [
        html.unescape(text) for text in re.findall(r'<td[^>]*class="[^"]*cursus-differs[^"]*"[^>]*>(.*?)</td>', row)
    ]


def _assert_side_by_side(fragment: str) -> None:
    rows = _profile_rows(fragment)
    assert list(rows) == ["id", "country", "note", "score", "code", "amount"]
    # each difference is a marked cell: the column on one side only, the type, the null rate,
    # the range, the value set
    assert _cells_marked(rows["note"]) == ["note", "absent"] and "<td>string</td>" in rows["note"]
    assert (
        _cells_marked(rows["amount"]) == ["amount", "absent"]
        and "<td>int</td><td>0%</td><td>0 .. 1990</td>" in rows["amount"]
    )
    assert _cells_marked(rows["code"]) == ["code", "int", "string"]
    assert _cells_marked(rows["score"]) == ["score", "0%", "50%"]
    assert _cells_marked(rows["id"]) == ["id", "1 .. 50", "0 .. 199"]
    assert _cells_marked(rows["country"]) == ["country", "{GB, US}", "{FR, US}"]
    assert '<th>rows</th><td colspan="3">50 rows, 1 file</td><td colspan="3">200 rows, 1 file</td>' in fragment
    hints = html.unescape(fragment)
    assert "add column amount (int)" in hints and "declare type string" in hints and "set nulls: 0.5" in hints
    assert "add FR to values; remove GB (never in the real data)" in hints and "set min: 0, max: 199" in hints


def test_the_html_report_shows_synthetic_and_real_side_by_side_in_the_step_and_the_summary(
    project: PipelineProject, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put("data/part-0.csv", REAL_CSV)
    _reader(project, s3_bucket.uri("data/"), synthetic=DIFFERING_SPEC)
    report = project.root / "report.html"
    _run_s3(project, s3_bucket.endpoint, f"--html={report}", "--self-contained-html").assert_outcomes(passed=1)
    details = "".join(
        extra["content"]
        for extra in _html_tests(report)["scenarios/s3src.yaml::read"][0]["extras"]
        if extra["format_type"] == "html"
    )  # type: ignore[index, attr-defined]
    assert (
        '<div class="cursus-profile" data-subject="data.source">'
        "<h4>Synthetic vs real: data.source <small>(input of step read)</small></h4>" in details
    )
    _assert_side_by_side(details)
    page = report.read_text()
    summary = page[
        page.index('<div class="cursus-scenario" data-scenario="s3src">') : page.index('<table id="results-table">')
    ]
    assert f"<code>{s3_bucket.uri('data/')}</code>" in summary
    _assert_side_by_side(summary)


def test_the_json_report_holds_the_profile_comparison_also_under_xdist(
    project: PipelineProject, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put("data/part-0.csv", REAL_CSV)
    _reader(project, s3_bucket.uri("data/"), synthetic=DIFFERING_SPEC)
    report = project.root / "run.json"
    result = _run_s3(project, s3_bucket.endpoint, "-n", "2", "--cursus-json", str(report))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*= cursus: synthetic vs real =*", "s3src: data.source: synthetic spec (50 rows, 1 file) vs real *"]
    )
    (comparison,) = json.loads(report.read_text())["profile_comparisons"]
    assert (comparison["scenario_file"], comparison["scenario"], comparison["subject"], comparison["step"]) == (
        "scenarios/s3src.yaml",
        "s3src",
        "data.source",
        "read",
    )
    assert comparison["synthetic"]["rows"] == 50 and comparison["real"]["rows"] == 200
    assert comparison["real"]["columns"]["score"]["null_rate"] == 0.5 and comparison["real"]["columns"]["country"][
        "categories"
    ] == ["FR", "US"]
    found = {(d["column"], d["kind"]) for d in comparison["differences"]}
    assert found == {
        ("note", "only_synthetic"),
        ("amount", "only_real"),
        ("code", "dtype"),
        ("score", "null_rate"),
        ("id", "range"),
        ("country", "categories"),
    }
