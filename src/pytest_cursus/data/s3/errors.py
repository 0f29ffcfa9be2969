"""The errors of reading from S3: one paragraph for the user that names the URI and what to do."""

from __future__ import annotations

from pytest_cursus.errors import DataSourceError


class S3Error(DataSourceError):
    """An S3 problem, worded for the user: names the URI and what to do."""


class S3NotFound(S3Error):
    """Nothing at the URI: no such object, or an empty prefix."""
