"""A real disk that fills up: a tmpfs of a few megabytes mounted at a test's directory.

Writing past its size fails with ENOSPC in the kernel, as on a full disk: nothing is mocked.
Mounting needs root (or CAP_SYS_ADMIN in a container); where it is not permitted, the test using
it is skipped and says why.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[Path]:
    """``path`` (created if needed) mounted as a tmpfs of ``size`` for the duration of the block."""
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("a small disk is a tmpfs mounted with mount(8): Linux only")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a {size} tmpfs at {path} to fill up ({mounted.stderr.strip() or 'mount failed'}): "
            "the disk-full tests need root, or CAP_SYS_ADMIN in a container"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True, check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the disk holding it has no room left."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(handle, bytes(65536)):
            pass
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(handle)
