"""A scenario's named data sources, on the variant the plan selected: the key the step cache
uses for each, and its data on disk.

The one module that knows the variants (``synthetic``, ``local``, ``s3``, ``file``, ``text`` and
``custom``): one class each, chosen by :func:`source_variant`; the pipeline only asks them.
"""

from __future__ import annotations

import json
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

from pytest_cursus.cache.key import text_hash
from pytest_cursus.data.s3.access import S3Access
from pytest_cursus.data.s3.errors import S3Error
from pytest_cursus.data.s3.uri import S3Limits, S3Uri
from pytest_cursus.data.schema import SyntheticSpec
from pytest_cursus.errors import DataSourceError, is_disk_full
from pytest_cursus.execution.workspace import (
    StagingDeadline,
    StagingError,
    StagingTimeout,
    StatSnapshot,
    describe_changes,
    fingerprint,
    fresh_directory,
    source_entries,
    source_snapshot,
)
from pytest_cursus.formats.scenario_file import DataSource
from pytest_cursus.run.extension_hooks import ExtensionHooks
from pytest_cursus.version import __version__

_T = TypeVar("_T")


def _no_limit() -> None:
    pass


@dataclass(frozen=True)
class SourceContext:
    """What a variant needs besides its own spec, the same for every source of a scenario."""

    scenario_path: Path  # its directory anchors relative paths; the conftest.py hooks above it apply
    data_dir: Path  # generated, written or downloaded data goes in data_dir/<source name>
    s3: S3Access = field(default_factory=S3Access)
    extensions: ExtensionHooks = field(default_factory=ExtensionHooks)


@dataclass(frozen=True)
class SyntheticCounterpart:
    """The synthetic variant that real data is profiled against (docs/s3.md), and where the real data is."""

    spec: SyntheticSpec
    real_location: str
    sampling: str  # how the real data was cut down, or ""


class SourceVariant(ABC):
    """One named source on one variant: its key and its data, each worked out once.

    The key is what the step cache hashes for an input read from this source; it is cheaper
    than the data where the spec determines it (no generation, no download).
    """

    kind: ClassVar[str]
    writing: ClassVar[str] = "writing its data"  # what materialising it writes, for a full disk

    def __init__(self, name: str, source: DataSource, context: SourceContext) -> None:
        self.name = name
        self.source = source
        self.context = context
        self._key: str | None = None
        self._data: Path | None = None
        # sizes, times and inodes of the data's files as the key saw them (file:) or as they were
        # made: a step whose input differs from this after it ran is not stored in the step cache
        self.snapshot: StatSnapshot | None = None
        self._check_time: Callable[[], None] = _no_limit  # raises once staging is out of time

    def key(self, deadline: StagingDeadline | None = None) -> str:
        """The key, worked out within ``deadline`` the first time (reading data, for some variants)."""
        if self._key is None:
            self._key = self._staged(self._make_key, deadline)
        return self._key

    def data(self, deadline: StagingDeadline | None = None) -> Path:
        """A path holding the source's data (a failure is not remembered: the next call tries again),
        made within ``deadline``: nothing half made is left in its place when time runs out."""
        if self._data is None:
            try:
                self._data = self._staged(self._materialize, deadline)
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                raise DataSourceError(f"{self.label}: no space left on {self.target} while {self.writing}") from None
            if self.snapshot is None:
                self.snapshot = self._snapshot(self._data)
        return self._data

    def changes_since_snapshot(self) -> list[str]:
        """How the data differs now from :attr:`snapshot` (nothing, when there is none)."""
        if self.snapshot is None or self._data is None:
            return []
        try:
            return describe_changes(self.snapshot, source_snapshot(self._data))
        except StagingError as exc:
            return [str(exc)]

    def _staged(self, work: Callable[[], _T], deadline: StagingDeadline | None) -> _T:
        """``work()`` within ``deadline`` (or the one already running: the key may need the data)."""
        outer = self._check_time
        if deadline is not None:
            self._check_time = deadline.checker(self.label)
        self._check_time()
        try:
            return work()
        except StagingTimeout:
            raise
        except StagingError as exc:  # a symlink loop, a fifo, ...
            raise DataSourceError(f"{self.label}: {exc}") from None
        finally:
            self._check_time = outer

    def _snapshot(self, data: Path) -> StatSnapshot:
        try:
            return source_snapshot(data)
        except StagingError as exc:
            raise DataSourceError(f"{self.label}: {exc}") from None

    def synthetic_counterpart(self) -> SyntheticCounterpart | None:
        """For real data that also has a ``synthetic`` variant: what to profile it against."""
        return None

    @property
    def label(self) -> str:
        """How errors name the variant: ``data.<name>.<variant>``."""
        return f"data.{self.name}.{self.kind}"

    @property
    def target(self) -> Path:
        return self.context.data_dir / self.name

    @abstractmethod
    def _make_key(self) -> str: ...

    @abstractmethod
    def _materialize(self) -> Path: ...


class SyntheticVariant(SourceVariant):
    kind = "synthetic"
    writing = "generating its data"

    def _make_key(self) -> str:
        assert self.source.synthetic is not None
        # generation is deterministic for a spec and a plugin version
        return text_hash(f"synthetic:{__version__}:{self.source.synthetic.model_dump_json()}")

    def _materialize(self) -> Path:
        spec = self.source.synthetic
        assert spec is not None
        from pytest_cursus.data.synthetic import (  # numpy/pyarrow only when data is generated
            GenerationProgress,
            write_synthetic,
        )

        _fresh(self.target)
        check_time = self._check_time

        class TimedProgress(GenerationProgress):  # the time is checked as each batch of rows is made
            def update(self, done: int) -> None:
                check_time()
                super().update(done)

        try:
            write_synthetic(spec, self.target, progress=TimedProgress(f"generating {self.name}", spec.rows))
        except ValueError as exc:
            raise DataSourceError(f"{self.label}: {exc}") from None
        except StagingTimeout:
            shutil.rmtree(self.target, ignore_errors=True)  # part of the rows: not to be taken for the data
            raise
        return self.target


class FileVariant(SourceVariant):
    """``file:`` or ``local:``: the user's own file or directory, used in place (the step runner
    copies it into the step's workspace, so it is only ever read)."""

    kind = "file"

    @property
    def relative(self) -> str:
        relative = self.source.file_of(self.kind)
        assert relative is not None
        return relative

    @property
    def path(self) -> Path:
        return (self.context.scenario_path.parent / self.relative).resolve()

    def _make_key(self) -> str:
        self._found()
        self.snapshot = source_snapshot(self.path)  # before reading: a change while it is read shows too
        return text_hash(f"{self.kind}:{json.dumps(fingerprint(self.path, self._check_time), sort_keys=True)}")

    def _materialize(self) -> Path:
        self._found()
        source_entries(self.path)  # a loop or a fifo is refused here too when the key is not needed
        return self.path

    def _found(self) -> None:
        if not self.path.exists():
            raise DataSourceError(
                f"{self.label}: {self.relative!r} not found (resolved to {self.path}; "
                "paths are relative to the scenario file)"
            )


class LocalVariant(FileVariant):
    kind = "local"


class TextVariant(SourceVariant):
    kind = "text"

    def _make_key(self) -> str:
        return text_hash(f"text:{self.source.filename or self.name}:{self.source.text}")

    def _materialize(self) -> Path:
        assert self.source.text is not None
        _fresh(self.target)
        path = self.target / (self.source.filename or self.name)
        path.write_text(self.source.text, encoding="utf-8")
        return path


class S3Variant(SourceVariant):
    kind = "s3"
    writing = "downloading its objects"

    def _location(self) -> tuple[S3Uri, S3Limits]:
        given = self.source.s3
        assert given is not None
        return S3Uri.parse(given.uri), S3Limits(given.max_files, given.max_bytes, given.sample_rows)

    def _make_key(self) -> str:
        """A hash of the listing (key, ETag, size of each object): one LIST, no download."""
        uri, limits = self._location()
        try:
            return text_hash(f"s3:{self.context.s3.digest(uri, limits)}")
        except S3Error as exc:
            raise DataSourceError(f"{self.label}: {exc}") from None

    def _materialize(self) -> Path:
        uri, limits = self._location()
        try:
            return self.context.s3.download(
                uri, limits, self.target, label=f"data.{self.name}", check_time=self._check_time
            ).path
        except S3Error as exc:
            raise DataSourceError(f"{self.label}: {exc}") from None
        except StagingTimeout:
            shutil.rmtree(self.target, ignore_errors=True)  # some of the objects: not to be taken for the data
            raise

    def synthetic_counterpart(self) -> SyntheticCounterpart | None:
        given = self.source.s3
        if self.source.synthetic is None or given is None:
            return None
        sampling = f"sample_rows={given.sample_rows} per file" if given.sample_rows else ""
        return SyntheticCounterpart(self.source.synthetic, given.uri, sampling)


class CustomVariant(SourceVariant):
    """``custom:``: data of a kind a plugin provides (hooks ``pytest_cursus_data_source`` and
    ``pytest_cursus_data_source_key``, docs/hooks.md)."""

    kind = "custom"
    writing = "its pytest_cursus_data_source hook wrote the data"

    def _make_key(self) -> str:
        custom = self.source.custom
        assert custom is not None
        scenario = self.context.scenario_path
        given = self.context.extensions.data_source_key(scenario, custom.kind, self.name, custom.settings)
        # without a key from the plugin, the data itself is the key
        described = given if given is not None else json.dumps(fingerprint(self.data()), sort_keys=True)
        return text_hash(f"custom:{custom.kind}:{described}")

    def _materialize(self) -> Path:
        custom = self.source.custom
        assert custom is not None
        _fresh(self.target)
        scenario = self.context.scenario_path
        found = self.context.extensions.data_source(scenario, custom.kind, self.name, custom.settings, self.target)
        if found is None:
            raise DataSourceError(
                f"{self.label}: no plugin provides data sources of kind {custom.kind!r}; implement "
                "pytest_cursus_data_source in a conftest.py above the scenario (or pass plugins= to the "
                "notebook API) and return a path for this kind (docs/hooks.md)"
            )
        if not found.exists():
            raise DataSourceError(
                f"{self.label}: the pytest_cursus_data_source implementation for kind {custom.kind!r} "
                f"returned {found}, which does not exist"
            )
        return found


VARIANTS: dict[str, type[SourceVariant]] = {
    variant.kind: variant
    for variant in (SyntheticVariant, LocalVariant, S3Variant, FileVariant, TextVariant, CustomVariant)
}


def source_variant(name: str, source: DataSource, variant: str, context: SourceContext) -> SourceVariant:
    """Source ``name`` on ``variant`` (one of ``source.variants``, as the plan selected it)."""
    if variant not in VARIANTS:
        raise DataSourceError(f"data.{name}: unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    return VARIANTS[variant](name, source, context)


def synthetic_selection(data: Mapping[str, DataSource], selected: Mapping[str, str]) -> dict[str, str]:
    """``selected`` with every source that has a ``synthetic`` variant on it."""
    return {
        name: SyntheticVariant.kind if data[name].synthetic is not None else kind for name, kind in selected.items()
    }


def _fresh(directory: Path) -> None:
    fresh_directory(directory)  # refuses to delete outside a workspace the plugin created
