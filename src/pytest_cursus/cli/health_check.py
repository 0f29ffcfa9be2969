"""``cursus-runtime health-check``: can this machine run pipeline steps?

Each check gives ``ok``, ``warn`` (worth knowing, not a failure), ``skip`` (does not apply
here, e.g. S3 with nothing configured) or ``fail``; any ``fail`` makes the command exit 1.
The JSON form (``--json``) is :class:`HealthReport`.

    $ cursus-runtime health-check --min-disk-gb 5
    ok    python        3.11.7 (requires >=3.10)
    ok    dependencies  pytest 9.0.3, pluggy 1.6.0, ... (all 8 required at their minimum versions)
    ...
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from pytest_cursus.errors import MissingExtra

DISTRIBUTION = "pytest-cursus"
DEFAULT_MIN_DISK_GB = 1.0
DEFAULT_MIN_MEMORY_GB = 1.0
S3_TIMEOUT_S = 5
Status = Literal["ok", "warn", "skip", "fail"]


class Check(BaseModel):
    name: str
    status: Status
    detail: str


class HealthReport(BaseModel):
    """The ``--json`` document."""

    format: Literal["pytest-cursus-health"] = "pytest-cursus-health"
    ok: bool
    checks: list[Check]


@dataclass(frozen=True)
class HealthSettings:
    workspace: Path  # where step workspaces go (the plugin's default is under the temp dir)
    cache_dir: Path  # the step cache
    min_disk_gb: float = DEFAULT_MIN_DISK_GB
    min_memory_gb: float = DEFAULT_MIN_MEMORY_GB
    s3_endpoint: str | None = None
    s3_uri: str | None = None  # a prefix the scenarios read: listed, not downloaded


def default_workspace() -> Path:
    """Where pytest's basetemp, and so the plugin's default workspace, lives."""
    return Path(tempfile.gettempdir())


def run_checks(settings: HealthSettings) -> HealthReport:
    checks = [
        check_python(),
        check_dependencies(),
        check_writable("workspace", settings.workspace),
        check_writable("step cache", settings.cache_dir),
        *check_disk(settings),
        check_memory(settings.min_memory_gb),
        check_s3(settings.s3_endpoint, settings.s3_uri),
    ]
    return HealthReport(ok=not any(check.status == "fail" for check in checks), checks=checks)


def render_text(report: HealthReport) -> str:
    width = max(len(check.name) for check in report.checks)
    lines = [f"{check.status:<5} {check.name:<{width}}  {check.detail}" for check in report.checks]
    failed = [check.name for check in report.checks if check.status == "fail"]
    lines.append(f"FAILED: {', '.join(failed)}" if failed else "all checks passed")
    return "\n".join(lines)


def check_python() -> Check:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    running = platform.python_version()
    try:
        wanted = metadata.metadata(DISTRIBUTION)["Requires-Python"] or ""
        allowed = SpecifierSet(wanted)
    except (metadata.PackageNotFoundError, InvalidSpecifier):
        return Check(
            name="python",
            status="warn",
            detail=f"{running}; {DISTRIBUTION} is not installed, so its Python requirement is unknown",
        )
    if running in allowed:
        return Check(name="python", status="ok", detail=f"{running} (requires {wanted}) at {sys.executable}")
    return Check(
        name="python",
        status="fail",
        detail=f"{running} at {sys.executable}, but {DISTRIBUTION} requires Python {wanted}",
    )


# benchmarks/ libraries (scikit-learn, xgboost, ...): nothing a machine running steps lacks
UNCHECKED_EXTRAS = ("bench",)


def check_dependencies() -> Check:
    """Each required distribution installed at a version the package's metadata allows.

    An extra (test, docs) missing or at another version is named in the detail of an ``ok``: this
    check answers whether steps can run, and neither building the docs nor running the plugin's own
    tests is part of that, so a machine without them is as healthy as one with them (a ``warn``
    would make the outcome depend on which extras happen to be installed). The benchmarks' extra
    is not checked."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        declared = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return Check(
            name="dependencies", status="fail", detail=f"{DISTRIBUTION} is not installed: pip install {DISTRIBUTION}"
        )
    found: list[str] = []
    problems: list[str] = []
    optional: list[str] = []
    for line in declared:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        extra = requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})
        if extra and any(requirement.marker.evaluate({"extra": name}) for name in UNCHECKED_EXTRAS):  # type: ignore[union-attr]
            continue
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            (optional if extra else problems).append(
                f"{requirement.name} not installed (needs {requirement.specifier or 'any version'})"
            )
            continue
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            (optional if extra else problems).append(
                f"{requirement.name} {version} installed, needs {requirement.specifier}"
            )
        elif not extra:
            found.append(f"{requirement.name} {version}")
    if problems:
        return Check(
            name="dependencies", status="fail", detail="; ".join(problems) + f" (pip install -U {DISTRIBUTION})"
        )
    detail = ", ".join(found)
    if optional:
        detail += f"; optional, not needed to run steps: {'; '.join(optional)}"
    return Check(name="dependencies", status="ok", detail=detail)


def check_writable(name: str, directory: Path) -> Check:
    """A file can be created in ``directory`` (or, when it does not exist yet, in the nearest
    existing parent, where the plugin would create it); nothing is left behind."""
    existing = _nearest_existing(directory)
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".cursus-health-"):
            pass
    except OSError as exc:
        return Check(
            name=name,
            status="fail",
            detail=f"cannot write in {existing} ({exc.strerror or exc}); choose another directory",
        )
    where = str(directory) if existing == directory else f"{directory} (would be created in {existing})"
    return Check(name=name, status="ok", detail=f"{where} is writable")


def check_disk(settings: HealthSettings) -> list[Check]:
    """Free space where the workspace and the cache live (once when they share a file system)."""
    checks, seen = [], set()
    for label, directory in (("disk (workspace)", settings.workspace), ("disk (step cache)", settings.cache_dir)):
        existing = _nearest_existing(directory)
        device = existing.stat().st_dev
        if device in seen:
            continue
        seen.add(device)
        free = shutil.disk_usage(existing).free / 2**30
        ok = free >= settings.min_disk_gb
        detail = f"{free:.1f} GB free at {existing}" + ("" if ok else f", below --min-disk-gb {settings.min_disk_gb:g}")
        checks.append(Check(name=label, status="ok" if ok else "fail", detail=detail))
    return checks


def check_memory(min_gb: float) -> Check:
    import psutil

    memory = psutil.virtual_memory()
    available = memory.available / 2**30
    ok = available >= min_gb
    detail = f"{available:.1f} GB available of {memory.total / 2**30:.1f} GB" + (
        "" if ok else f", below --min-memory-gb {min_gb:g}"
    )
    return Check(name="memory", status="ok" if ok else "fail", detail=detail)


def check_s3(endpoint: str | None, uri: str | None) -> Check:
    """With an endpoint, credentials or a URI configured: one request to S3 (``ListObjectsV2``
    on ``uri``, else ``ListBuckets``) through the client steps use, with its endpoint and
    credential resolution. A response, even an access error for ``ListBuckets``, is a reachable
    S3; no connection or no credentials is a failure."""
    from pytest_cursus.data.s3.client import S3Client, shown_endpoint
    from pytest_cursus.data.s3.uri import S3Uri

    # botocore resolves these itself, as for steps; named here to tell "configured" from "nothing"
    configured = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    try:
        MissingExtra.check("botocore", "s3", "the S3 check")
    except MissingExtra as exc:  # S3 asked for: a failure; else S3 is simply not used here
        return Check(name="s3", status="fail" if configured or uri else "skip", detail=str(exc))
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    where = shown_endpoint(configured) if configured else "AWS S3"
    client = S3Client(endpoint, attempts=1, connections=1, connect_timeout=S3_TIMEOUT_S, read_timeout=S3_TIMEOUT_S)
    try:
        source = client.credential_source
    except BotoCoreError as exc:  # a missing profile, an unreadable config or credential process
        return Check(name="s3", status="fail", detail=f"{where}: AWS credentials could not be loaded: {exc}")
    if not (configured or uri or source):
        return Check(name="s3", status="skip", detail="no S3 endpoint or AWS credentials configured")
    if source is None:
        return Check(
            name="s3", status="fail", detail=f"{where}: no AWS credentials found (environment, ~/.aws, instance role)"
        )
    try:
        if uri:
            parsed = S3Uri.parse(uri)
            listed = client.api.list_objects_v2(Bucket=parsed.bucket, Prefix=parsed.key, MaxKeys=1)
            found = "objects" if listed.get("KeyCount") else "nothing yet"
            return Check(name="s3", status="ok", detail=f"{where}: listed {uri} ({found}; credentials from {source})")
        client.api.list_buckets()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "?")
        if uri:
            detail = f"{where}: listing {uri} failed with {code}: {error.get('Message', '')}"
            return Check(name="s3", status="fail", detail=client.scrubber.text(detail))
        return Check(
            name="s3",
            status="ok",
            detail=f"{where} answered ({code} for ListBuckets: the credentials may not list buckets)",
        )
    except NoCredentialsError:
        return Check(name="s3", status="fail", detail=f"{where}: no AWS credentials found")
    except (BotoCoreError, ValueError) as exc:
        return Check(name="s3", status="fail", detail=client.scrubber.text(f"{where} is not reachable: {exc}"))
    return Check(name="s3", status="ok", detail=f"{where} reachable (credentials from {source})")


def _nearest_existing(directory: Path) -> Path:
    current = directory.resolve()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current
