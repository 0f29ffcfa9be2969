"""A step's workspace: ``<root>/<scenario>/<step>/{input,output,logs}``, and its staged inputs.

Inputs are copies, made read-only and fingerprinted, so a script can never change the user's
data or another step's outputs, and any write into an input is detected afterwards (root
ignores file modes, so the fingerprint is the real guarantee).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

Fingerprint = dict[str, tuple[int, str]]  # relative path -> (size, sha256)
_CHUNK = 1 << 20


def is_file_channel(container_path: str) -> bool:
    """A container path whose last part has a suffix (``.../hyperparameters.json``) is a file."""
    return PurePosixPath(container_path).suffix != ""


@dataclass(frozen=True)
class StepWorkspace:
    root: Path

    @classmethod
    def for_step(cls, workspace_root: Path, scenario: str, step: str) -> StepWorkspace:
        return cls(workspace_root / scenario / step)

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def reset(self) -> None:
        """Empty the workspace left by an earlier run of the same step."""
        if self.root.exists():
            make_writable(self.root)
            shutil.rmtree(self.root)
        for directory in (self.input_dir, self.output_dir, self.logs_dir):
            directory.mkdir(parents=True)

    def input_path(self, name: str, container_path: str) -> Path:
        base = self.input_dir / name
        return base / PurePosixPath(container_path).name if is_file_channel(container_path) else base

    def output_path(self, name: str, container_path: str) -> Path:
        base = self.output_dir / name
        return base / PurePosixPath(container_path).name if is_file_channel(container_path) else base


class StagingError(Exception):
    pass


def stage_input(source: Path, target: Path, *, as_file: bool) -> None:
    """Copy ``source`` (file or directory) to ``target`` as the script will see it."""
    if not source.exists():
        raise StagingError(f"input data not found: {source}")
    if as_file:
        if source.is_dir():
            files = sorted(p for p in source.rglob("*") if p.is_file())
            if len(files) != 1:
                raise StagingError(
                    f"the contract path ends in {target.name!r}, so one file is expected, but {source} holds "
                    f"{len(files)} files; point the input at a single file"
                )
            source = files[0]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    elif source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=False)
    else:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / source.name)


def make_read_only(path: Path) -> None:
    for current in _walk(path):
        mode = current.stat().st_mode
        current.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(path: Path) -> None:
    for current in _walk(path):
        try:
            current.chmod(current.stat().st_mode | stat.S_IWUSR | (stat.S_IXUSR if current.is_dir() else 0))
        except OSError:
            pass


def _walk(path: Path) -> list[Path]:
    if not path.exists() or path.is_symlink():
        return []
    if path.is_file():
        return [path]
    found = [path]
    for directory, subdirs, files in os.walk(path):
        found.extend(Path(directory, name) for name in subdirs + files)
    return found


def fingerprint(path: Path) -> Fingerprint:
    """Size and content hash of every file under ``path`` (or of ``path`` itself)."""
    if not path.exists():
        return {}
    if path.is_file():
        return {path.name: _hash_file(path)}
    result: Fingerprint = {}
    for directory, _, files in os.walk(path):
        for name in files:
            file = Path(directory, name)
            result[str(file.relative_to(path))] = _hash_file(file)
    return dict(sorted(result.items()))


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def describe_changes(before: Fingerprint, after: Fingerprint) -> list[str]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(name for name in set(before) & set(after) if before[name] != after[name])
    parts = []
    for label, names in (("added", added), ("removed", removed), ("changed", changed)):
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            parts.append(f"{label} {shown}")
    return parts
