"""Turning a scenario's named data source into files on disk, for the variant selected."""

from __future__ import annotations

import shutil
from pathlib import Path

from pytest_cursus.data.s3.access import S3Access
from pytest_cursus.data.s3.errors import S3Error
from pytest_cursus.data.s3.uri import S3Limits, S3Uri
from pytest_cursus.errors import DataSourceError
from pytest_cursus.formats.scenario_file import DataSource


def materialize(
    name: str, source: DataSource, variant: str, base_dir: Path, target: Path, s3: S3Access | None = None
) -> Path:
    """Return a path holding the source's data; generated or written data goes under ``target``.

    ``file`` and ``local`` sources are returned in place: the step runner copies them into the
    step's workspace, so the user's files are only ever read.
    """
    if variant == "synthetic":
        assert source.synthetic is not None
        from pytest_cursus.data.synthetic import (
            GenerationProgress,
            write_synthetic,
        )  # numpy/pyarrow only when data is generated

        _fresh(target)
        try:
            write_synthetic(
                source.synthetic, target, progress=GenerationProgress(f"generating {name}", source.synthetic.rows)
            )
        except ValueError as exc:
            raise DataSourceError(f"data.{name}.synthetic: {exc}") from None
        return target
    if variant in ("file", "local"):
        relative = source.file if variant == "file" else source.local
        assert relative is not None
        path = (base_dir / relative).resolve()
        if not path.exists():
            raise DataSourceError(
                f"data.{name}.{variant}: {relative!r} not found (resolved to {path}; paths are relative to the scenario file)"
            )
        return path
    if variant == "text":
        assert source.text is not None
        _fresh(target)
        path = target / (source.filename or name)
        path.write_text(source.text, encoding="utf-8")
        return path
    if variant == "s3":
        uri, limits = s3_location(source)
        try:
            return (s3 or S3Access()).download(uri, limits, target, label=f"data.{name}").path
        except S3Error as exc:
            raise DataSourceError(f"data.{name}.s3: {exc}") from None
    raise DataSourceError(f"data.{name}: unknown variant {variant!r}; expected one of synthetic, local, s3, file, text")


def s3_location(source: DataSource) -> tuple[S3Uri, S3Limits]:
    """The URI and limits of a source's ``s3:`` variant."""
    given = source.s3
    assert given is not None
    return S3Uri.parse(given.uri), S3Limits(given.max_files, given.max_bytes, given.sample_rows)


def s3_source_key(name: str, source: DataSource, s3: S3Access | None) -> str:
    """The key of an ``s3:`` variant: a hash of its listing (key, ETag, size of each object)."""
    uri, limits = s3_location(source)
    try:
        return (s3 or S3Access()).digest(uri, limits)
    except S3Error as exc:
        raise DataSourceError(f"data.{name}.s3: {exc}") from None


def _fresh(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
