"""Argument types shared by the ``cursus-runtime`` subcommands."""

from __future__ import annotations

import argparse


def positive_number(text: str) -> float:
    """An argparse ``type=``: a number above 0 (thresholds, disk and memory sizes)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value
