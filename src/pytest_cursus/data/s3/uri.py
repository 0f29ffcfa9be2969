"""What to read: an ``s3://bucket/key`` URI (a prefix or one object) and how much of it to take."""

from __future__ import annotations

import re
from dataclasses import dataclass

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


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

    def describe(self) -> str:
        """The limits given, as ``name=value`` pairs (for the note of a download that left objects out)."""
        given = [f"{name}={value}" for name, value in vars(self).items() if value is not None]
        return ", ".join(given) or "no limits"
