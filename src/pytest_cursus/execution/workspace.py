"""A step's workspace: ``<root>/<scenario>/<step>/{input,output,logs}``, and its staged inputs.

Inputs are the step's own copies, writable as in a SageMaker container (reflinks where the file
system shares blocks copy-on-write, else copies that keep a sparse file's holes: never hard links,
which a write would go through to the source; see execution/sparse_files.py). The sources
themselves are fingerprinted before and after the step, so a change to the user's data or another
step's outputs is still detected.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pytest_cursus.execution.sparse_files import copy_file_data, file_sha256

Fingerprint = dict[str, tuple[int, str]]  # relative path -> (size, sha256)
StatSnapshot = dict[str, tuple[int, int, int, int]]  # relative path -> (size, mtime_ns, ctime_ns, inode)
# In the root of every workspace the plugin created: only inside such a tree does it delete anything.
WORKSPACE_MARKER = ".cursus-workspace"
# flock'ed by the one session using the workspace, for as long as it does; it says who that is
WORKSPACE_LOCK = ".cursus-workspace.lock"
# this process's hold on each workspace it uses (flock locks belong to an open file: one per root)
_HELD_WORKSPACES: dict[str, BinaryIO] = {}


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


class StagingTimeout(StagingError):
    """Staging took longer than the step's timeout."""


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


class WorkspaceInUse(Exception):
    """Another session holds the workspace."""


def hold_workspace(root: Path) -> bool:
    """Hold ``root`` (a claimed workspace) for this process's session, until :func:`release_workspace`
    or the process's end: two sessions in one workspace would delete and regenerate each other's step
    directories and data. True when taken now, False when this process held it already.

    Raises :class:`WorkspaceInUse`, naming the other session's process, when another process holds it.
    """
    name = os.path.realpath(root)
    if name in _HELD_WORKSPACES:
        return False
    # held past this call, until release_workspace(); unbuffered, so a full disk fails the write alone
    handle = open(root / WORKSPACE_LOCK, "a+b", buffering=0)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().decode("utf-8", errors="replace").strip() or "a process that has not said which"
        handle.close()
        raise WorkspaceInUse(
            f"the workspace {root} is in use by another pytest-cursus session ({holder}); two sessions in one "
            "workspace would delete and regenerate each other's step directories and data: wait for that "
            "session to end, or give this one a workspace of its own"
        ) from None
    handle.truncate(0)
    command = " ".join(sys.argv)
    command = command if len(command) <= 500 else command[:497] + "..."
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {started}: {command}\n".encode())
    except OSError:  # a full disk: the lock holds without the note; the step says what is full
        handle.truncate(0)
    _HELD_WORKSPACES[name] = handle
    return True


def release_workspace(root: Path) -> None:
    """Let another session have ``root`` (closing the file releases its flock)."""
    handle = _HELD_WORKSPACES.pop(os.path.realpath(root), None)
    if handle is not None:
        handle.close()


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


def stage_input(source: Path, target: Path, *, as_file: bool, check_time: Callable[[], None] | None = None) -> None:
    """Copy ``source`` (file or directory) to ``target`` as the script will see it: the files
    :func:`source_entries` walks (those the key hashed); ``check_time`` raises to stop the copy."""
    if not os.path.lexists(source):
        raise StagingError(f"input data not found: {source}")
    entries = source_entries(source)
    files = [entry for entry in entries if not entry.is_dir]
    if as_file:
        if source.is_dir():
            if len(files) != 1:
                raise StagingError(
                    f"the contract path ends in {target.name!r}, so one file is expected, but {source} holds "
                    f"{len(files)} files; point the input at a single file"
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_file(files[0].path, target, check_time)
        return
    target.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        if entry.is_dir:
            (target / entry.relative).mkdir(parents=True, exist_ok=True)
        else:
            copy_file(entry.path, target / entry.relative, check_time)


@dataclass(frozen=True)
class SourceEntry:
    relative: str  # under the source (a file source: its own name)
    path: Path  # where it is read, through the symlinks that lead to it
    is_dir: bool


def source_entries(source: Path) -> list[SourceEntry]:
    """The directories and regular files of ``source`` in name order, symlinks followed (to files
    and to directories alike): what the key hashes and what the copy copies are the same files.

    Refuses, naming the path, what could not be copied to an end: a symlink loop (a directory
    already on the current path), a symlink to nothing, and anything that is not a regular file
    or a directory (``/dev/zero``, a fifo, a socket).
    """
    info = _stat_source(source, source)
    if not stat.S_ISDIR(info.st_mode):
        return [SourceEntry(source.name, source, is_dir=False)]
    entries: list[SourceEntry] = []
    _walk_source(source, source, PurePosixPath(), ((info.st_dev, info.st_ino),), entries)
    return entries


def _walk_source(
    source: Path,
    directory: Path,
    relative: PurePosixPath,
    ancestors: tuple[tuple[int, int], ...],
    entries: list[SourceEntry],
) -> None:
    for name in sorted(os.listdir(directory)):
        path = directory / name
        info = _stat_source(source, path)
        inside = relative / name
        if not stat.S_ISDIR(info.st_mode):
            entries.append(SourceEntry(str(inside), path, is_dir=False))
            continue
        identity = (info.st_dev, info.st_ino)
        if identity in ancestors:
            raise StagingError(
                f"{source}: the symlink {path} -> {os.readlink(path)} leads back to {os.path.realpath(path)}, a "
                f"directory it is inside of (a loop: following it would copy {source} into itself without end); "
                "remove the link or point it elsewhere"
            )
        entries.append(SourceEntry(str(inside), path, is_dir=True))
        _walk_source(source, path, inside, (*ancestors, identity), entries)


def _stat_source(source: Path, path: Path) -> os.stat_result:
    """``path``'s own status, through symlinks: a regular file or a directory, else refused."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise StagingError(
                f"{source}: the symlink {path} -> {os.readlink(path)} points at nothing; remove it or fix its target"
            ) from None
        raise StagingError(f"input data not found: {path}") from None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        where = f"{path}" if path == source else f"{source}: {path}"
        raise StagingError(
            f"{where} is {_file_kind(info.st_mode)}, not a regular file or a directory; reading it may never end "
            "(as /dev/zero) or block (a fifo), so it is not copied: point the source at regular files"
        )
    return info


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a fifo (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return f"a special file (mode {stat.filemode(mode)})"


class StagingDeadline:
    """When staging a step must be over: its ``timeout`` counted from when its staging began, so
    that copying, generating or downloading its inputs cannot run for ever."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self.ends = clock() + timeout

    def check(self, what: object) -> None:
        """Raises :class:`StagingTimeout` once the time is up; ``what`` names what was being staged."""
        if self.clock() > self.ends:
            raise StagingTimeout(f"staging {what} exceeded the step timeout of {self.timeout:g} s")

    def checker(self, what: object) -> Callable[[], None]:
        return lambda: self.check(what)


def copy_file(source: str | Path, target: str | Path, check_time: Callable[[], None] | None = None) -> str | Path:
    """A copy the step may write into without touching ``source``: a reflink where the file system
    supports one (no data copied), else a copy of its data that leaves its holes as holes, ``check_time``
    called between chunks (it raises to stop). A copy cut short is removed: no half file is left to be
    taken for whole."""
    try:
        copy_file_data(source, target, check_time)
        shutil.copystat(source, target)  # as shutil.copy2: modes and times as the source's
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    return target


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


def fingerprint(path: Path, check_time: Callable[[], None] | None = None) -> Fingerprint:
    """Size and content hash of every file of a source (``path`` itself, or each file under it),
    the files :func:`source_entries` walks: the same as the copy copies. Empty when ``path`` is absent.
    ``check_time`` is called between chunks read, and raises to stop."""
    if not os.path.lexists(path):
        return {}
    return {entry.relative: _hash_file(entry.path, check_time) for entry in source_entries(path) if not entry.is_dir}


def copy_fingerprint(path: Path) -> Fingerprint:
    """Size and content hash of every file of a step's own copy of its inputs, following no symlink
    (the script may have planted one, or a fifo: it is described, not read)."""
    result: Fingerprint = {}
    for directory, _, files in os.walk(path):
        for name in files:
            file = Path(directory, name)
            mode = file.lstat().st_mode
            relative = str(file.relative_to(path))
            if stat.S_ISREG(mode):
                result[relative] = _hash_file(file)
            else:
                result[relative] = (0, f"symlink to {os.readlink(file)}" if stat.S_ISLNK(mode) else _file_kind(mode))
    return dict(sorted(result.items()))


def _hash_file(path: Path, check_time: Callable[[], None] | None = None) -> tuple[int, str]:
    return path.stat().st_size, file_sha256(path, check_time)


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


def source_snapshot(path: Path) -> StatSnapshot:
    """Size, times and inode of every file of a source, through symlinks as :func:`source_entries`
    walks it: a change of the data between two snapshots, at the cost of a ``stat`` per file."""
    if not os.path.lexists(path):
        return {}
    result: StatSnapshot = {}
    for entry in source_entries(path):
        if not entry.is_dir:
            info = entry.path.stat()
            result[entry.relative] = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
    return result


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
