"""SIGTERM ends a run as Ctrl-C does.

A CI cancel or a Kubernetes stop sends SIGTERM; by default it ends pytest at once, with no
session finish, no report written, and steps left to the kernel's parent-death signal. While a
run of pipelines is on, SIGTERM raises ``KeyboardInterrupt`` in the main thread instead: the
supervisor kills the running step's whole tree, pytest runs the session finish and writes its
reports, and the exit code is pytest's ``INTERRUPTED`` (2). A SIGTERM handler someone else
installed (the CI's, another plugin's) is left alone.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import pytest

_PREVIOUS_KEY = pytest.StashKey[signal.Handlers]()


class Terminated(KeyboardInterrupt):
    """SIGTERM, taken for Ctrl-C."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"{signal.Signals(signum).name} received: the run stops as on Ctrl-C")


def take_sigterm(config: pytest.Config) -> None:
    """From now until ``give_back_sigterm``, SIGTERM interrupts the run like Ctrl-C."""
    if _PREVIOUS_KEY in config.stash or threading.current_thread() is not threading.main_thread():
        return  # taken already, or not ours to take (signal handlers belong to the main thread)
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, _interrupt)
    config.stash[_PREVIOUS_KEY] = signal.SIG_DFL


def give_back_sigterm(config: pytest.Config) -> None:
    previous = config.stash.get(_PREVIOUS_KEY, None)
    if previous is None or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is _interrupt:
        signal.signal(signal.SIGTERM, previous)
    del config.stash[_PREVIOUS_KEY]
