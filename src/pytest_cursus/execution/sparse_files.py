"""Files that may have holes: copied, measured and hashed without writing or reading their holes.

A step may write a sparse file (``os.truncate`` to 5 GB, a few bytes written): it takes a few
kilobytes on disk, and a plain copy (``shutil.copyfile``) would write all 5 GB of zeros. A copy is
a reflink where the file system shares blocks copy-on-write (the copy never changes when the
source is written to later), else only the data extents are copied (``SEEK_DATA``/``SEEK_HOLE``)
and the holes are left as holes. A file system that cannot tell holes gets a plain copy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

_FICLONE = 0x40049409  # linux/fs.h: share the source's blocks copy-on-write (btrfs, XFS, bcachefs)
_CHUNK = 1 << 20
_TIMED_CHUNK = 16 << 20  # copied between two calls of a copy's check_time
_ZEROS = bytes(_CHUNK)
# errors of lseek(SEEK_DATA) on a file system that does not know holes
_NO_HOLE_SUPPORT = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def copy_file_data(source: str | Path, target: str | Path, check_time: Callable[[], None] | None = None) -> None:
    """``target`` made a copy of ``source``'s content (not its mode or times), holes kept as holes;
    ``check_time`` is called before and between chunks (it raises to stop the copy)."""
    if check_time is not None:
        check_time()  # a file of holes only has no chunk to check between
    with open(source, "rb") as reader, open(target, "wb") as writer:
        with contextlib.suppress(OSError):
            fcntl.ioctl(writer.fileno(), _FICLONE, reader.fileno())
            return
        size = os.fstat(reader.fileno()).st_size
        for start, end in data_extents(reader.fileno(), size):
            _copy_range(reader.fileno(), writer.fileno(), start, end, check_time)
        writer.truncate(size)  # a hole at the end of the file


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each stretch of the file that holds data; the rest are holes (zeros).

    A file system that cannot tell holes gives one stretch: the whole file."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return  # only a hole from here to the end
            if exc.errno in _NO_HOLE_SUPPORT and offset == 0:
                yield 0, size
                return
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        if end <= start:
            return  # the file shrank under us
        yield start, end
        offset = end


def _copy_range(source: int, target: int, start: int, end: int, check_time: Callable[[], None] | None) -> None:
    """Copy bytes ``start:end`` of ``source`` to the same offsets of ``target``."""
    offset = start
    step = (1 << 30) if check_time is None else _TIMED_CHUNK
    if sys.platform.startswith("linux"):  # the kernel copies; sendfile to a regular file is Linux's own
        os.lseek(target, start, os.SEEK_SET)
        while offset < end:
            if check_time is not None:
                check_time()
            sent = os.sendfile(target, source, offset, min(end - offset, step))
            if sent == 0:
                return  # the source shrank under us
            offset += sent
        return
    while offset < end:
        if check_time is not None:
            check_time()
        chunk = os.pread(source, min(end - offset, _CHUNK), offset)
        if not chunk:
            return
        written = os.pwrite(target, chunk, offset)
        offset += written


def allocated_bytes(path: Path) -> int:
    """What ``path`` (a file, or every file under a directory) takes on disk: its allocated blocks,
    not its apparent size, so a sparse file counts for its data only. Symlinks are followed, as
    a copy of the tree follows them."""
    if path.is_file():
        return _allocated(path)
    return sum(_allocated(file) for file in path.rglob("*") if file.is_file())


def _allocated(path: Path) -> int:
    info = path.stat()
    blocks = getattr(info, "st_blocks", None)
    return info.st_size if blocks is None else blocks * 512  # st_blocks counts 512-byte units on every Unix


def file_sha256(path: str | Path, check_time: Callable[[], None] | None = None) -> str:
    """The SHA-256 of the file's content; its holes are hashed as the zeros they read as, without
    being read (SHA-256 still runs over them: about 0.6 s per GB of hole on one core)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        position = 0
        for start, end in data_extents(fd, size):
            _update_with_zeros(digest, start - position, check_time)
            offset = start
            while offset < end:
                if check_time is not None:
                    check_time()
                chunk = os.pread(fd, min(end - offset, _CHUNK), offset)
                if not chunk:
                    break
                digest.update(chunk)
                offset += len(chunk)
            position = offset
        _update_with_zeros(digest, size - position, check_time)
    return digest.hexdigest()


def _update_with_zeros(digest: hashlib._Hash, count: int, check_time: Callable[[], None] | None = None) -> None:
    view = memoryview(_ZEROS)
    while count > 0:
        if check_time is not None and count % _TIMED_CHUNK < _CHUNK:  # about every 16 MiB of hole
            check_time()
        step = min(count, _CHUNK)
        digest.update(view[:step])
        count -= step


BLOCK_DIGEST_PREFIX = "blocks:"


def block_digest(path: str | Path) -> str:
    """A SHA-256 of the file's content that costs nothing for its holes: the file is cut into 1 MiB
    blocks, and the hash runs over its size, then over each block in turn: an all-zero block as the
    byte 0x00, without reading it when it lies in a hole; any other as 0xff followed by its bytes.

    As :func:`file_sha256` it depends on the content alone, not on where the holes are (a block of
    written zeros counts as a hole); two files of the same size and blocks have the same digest,
    and any other content gives another (the stream hashed is decoded back into the content given
    the size). A 5 GB file with a few written bytes is hashed in milliseconds, where SHA-256 over
    its zeros takes seconds; a file without holes costs what SHA-256 does.
    """
    with open(path, "rb") as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        digest = hashlib.sha256(f"{size}:".encode())
        blocks = -(-size // _CHUNK)
        following = 0  # the first block not hashed yet
        for start, end in data_extents(fd, size):
            first, last = start // _CHUNK, (end - 1) // _CHUNK
            if first > following:
                digest.update(_ZERO_BLOCK * (first - following))  # blocks wholly inside a hole
            for block in range(max(first, following), last + 1):
                data = os.pread(fd, _CHUNK, block * _CHUNK)
                if data == _ZEROS[: len(data)]:
                    digest.update(_ZERO_BLOCK)
                else:
                    digest.update(_DATA_BLOCK)
                    digest.update(data)
            following = last + 1
        if blocks > following:
            digest.update(_ZERO_BLOCK * (blocks - following))
    return BLOCK_DIGEST_PREFIX + digest.hexdigest()


_ZERO_BLOCK = b"\x00"
_DATA_BLOCK = b"\xff"
