"""Turning a scenario's named data source into files on disk, for the variant selected."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import DataSourceError
from ..scenario_file import DataSource


def materialize(name: str, source: DataSource, variant: str, base_dir: Path, target: Path) -> Path:
    """Return a path holding the source's data; generated or written data goes under ``target``.

    ``file`` and ``local`` sources are returned in place: the step runner copies them into the
    step's workspace, so the user's files are only ever read.
    """
    if variant == "synthetic":
        assert source.synthetic is not None
        from .synthetic import GenerationProgress, write_synthetic  # numpy/pyarrow only when data is generated

        _fresh(target)
        try:
            write_synthetic(source.synthetic, target, progress=GenerationProgress(f"generating {name}", source.synthetic.rows))
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
    raise DataSourceError(
        f"data.{name}: the '{variant}' variant cannot be read by this version of pytest-cursus; "
        "run with --cursus-source synthetic or local"
    )


def _fresh(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
