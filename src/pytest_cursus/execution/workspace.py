"""A step's workspace: ``<root>/<scenario>/<step>/{input,output,logs}``, and its staged inputs.

Inputs are the step's own copies, writable as in a SageMaker container (reflinks where the file
system shares blocks copy-on-write, else copies that keep a sparse file's holes: never hard links,
which a write would go through to the source; see execution/sparse_files.py). The sources
themselves are fingerprinted before and after the step, so a change to the user's data or another
step's outputs is still detected.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pytest_cursus.execution.sparse_files import copy_file_data, file_sha256

Fingerprint = dict[str, tuple[int, str]]  # relative path -> (size, sha256)
StatSnapshot = dict[str, tuple[int, int, int, int]]  # relative path -> (size, mtime_ns, ctime_ns, inode)
# In the root of every workspace the plugin created: only inside such a tree does it delete anything.
WORKSPACE_MARKER = ".cursus-workspace"


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
        fresh_directory(self.root)
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


class ForeignDirectory(Exception):
    """A directory the plugin would clear lies outside any workspace it created."""


def claim_workspace(root: Path) -> Path:
    """Make ``root`` a workspace: created (or empty) here, it gets the marker; an existing
    directory with other content and no marker is someone else's, and is refused."""
    root.mkdir(parents=True, exist_ok=True)
    marker = root / WORKSPACE_MARKER
    if any((parent / WORKSPACE_MARKER).is_file() for parent in root.parents):
        return root  # a directory inside a workspace of ours (the fuzz runner's _fuzz, a worker's own tree)
    if not marker.exists():
        found = sorted(entry.name for entry in root.iterdir())
        if found:
            shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
            raise ForeignDirectory(
                f"the workspace {root} is an existing directory that pytest-cursus did not create (no "
                f"{WORKSPACE_MARKER} marker in it; it holds {shown}); the plugin deletes step directories inside "
                "its workspace, so it will not use this one: point the workspace at a new or empty directory"
            )
        marker.write_text("created by pytest-cursus: step directories under here are deleted and remade\n")
    return root


def fresh_directory(directory: Path) -> Path:
    """An empty ``directory`` (and its parents); what was there is deleted only inside a workspace
    the plugin created (see :func:`claim_workspace`)."""
    if os.path.lexists(directory):
        if not any((parent / WORKSPACE_MARKER).is_file() for parent in directory.parents):
            raise ForeignDirectory(
                f"{directory} would be deleted and remade, but it is not inside a workspace pytest-cursus created "
                f"(no {WORKSPACE_MARKER} in any parent directory); delete it yourself or use a new workspace"
            )
        if directory.is_symlink() or not directory.is_dir():
            directory.unlink()
        else:
            make_writable(directory)
            shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


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
        copy_file(source, target)
    elif source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=False, copy_function=copy_file)
    else:
        target.mkdir(parents=True, exist_ok=True)
        copy_file(source, target / source.name)


def copy_file(source: str | Path, target: str | Path) -> str | Path:
    """A copy the step may write into without touching ``source``: a reflink where the file system
    supports one (no data copied), else a copy of its data that leaves its holes as holes."""
    copy_file_data(source, target)
    shutil.copystat(source, target)  # as shutil.copy2: modes and times as the source's
    return target


# Modes are changed on the entries themselves, never through a symlink: a script may plant one
# pointing at a user's file, whose mode is not the plugin's to change.


def make_read_only(path: Path) -> None:
    for current in _walk(path):
        mode = current.lstat().st_mode
        current.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(path: Path) -> None:
    for current in _walk(path):
        try:
            mode = current.lstat().st_mode
            current.chmod(mode | stat.S_IWUSR | (stat.S_IXUSR if stat.S_ISDIR(mode) else 0))
        except OSError:
            pass


def _walk(path: Path) -> list[Path]:
    """``path`` and everything under it that is not a symlink (nor reached through one)."""
    if path.is_symlink() or not path.exists():
        return []
    if path.is_file():
        return [path]
    found = [path]
    for directory, subdirs, files in os.walk(path):  # os.walk does not descend into symlinked directories
        found.extend(entry for name in subdirs + files if not (entry := Path(directory, name)).is_symlink())
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
    return path.stat().st_size, file_sha256(path)


def stat_snapshot(path: Path) -> StatSnapshot:
    """Size, times and inode of every file under ``path``: enough to notice that a step wrote into
    its own copy of an input, without reading the files (a note, not a verdict)."""
    result: StatSnapshot = {}
    for directory, _, files in os.walk(path):
        for name in files:
            file = Path(directory, name)
            info = file.lstat()
            result[str(file.relative_to(path))] = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
    return dict(sorted(result.items()))


def describe_changes(before: Mapping[str, object], after: Mapping[str, object]) -> list[str]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(name for name in set(before) & set(after) if before[name] != after[name])
    parts = []
    for label, names in (("added", added), ("removed", removed), ("changed", changed)):
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            parts.append(f"{label} {shown}")
    return parts
