"""Environment values that must not be shown: masked wherever the plugin writes or displays them.

A variable is secret when its name contains SECRET, TOKEN, PASSWORD, KEY, CREDENTIAL or AUTH
(case-insensitive, anywhere in the name: ``AWS_SECRET_ACCESS_KEY``, ``api_token``). Its value
is replaced by ``MASK`` in env listings, and every occurrence of it in text the plugin shows
(failure messages, tracebacks, log excerpts) is replaced too.

Values known to be secret without a name (the credentials an S3 client resolved) are given to
:class:`SecretScrubber` as ``values``; :class:`SecretLogFilter` applies a scrubber to the records
of loggers the plugin does not own (botocore's DEBUG records carry the session token).

Only the standard library is imported: the step's child process uses this module.

    >>> mask_env({"LABEL_FIELD": "label", "DB_PASSWORD": "hunter22"})
    {'LABEL_FIELD': 'label', 'DB_PASSWORD': '********'}

Caveats:
    * Values shorter than ``MIN_SCRUBBED_LENGTH`` characters are masked in env listings but not
      searched for in text: replacing every "1" or "on" in a log would destroy it and hide nothing.
    * The step's own ``stdout.log`` / ``stderr.log`` are the script's bytes, kept as written; what
      the plugin shows of them (excerpts in reports) is masked.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
MASK = "********"
MIN_SCRUBBED_LENGTH = 4


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def secret_names(env: Iterable[str]) -> list[str]:
    return sorted(name for name in env if is_secret_name(name))


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """The env with secret values replaced by ``MASK``."""
    return {name: MASK if is_secret_name(name) else value for name, value in env.items()}


class SecretScrubber:
    """Replaces secret values in text: those of the secret variables of ``envs``, and ``values``
    (secrets known without a name, such as the credentials an S3 client resolved)."""

    __slots__ = ("_pattern",)

    def __init__(self, *envs: Mapping[str, str], values: Iterable[str | None] = ()) -> None:
        found = {str(value) for env in envs for name, value in env.items() if is_secret_name(name)}
        found.update(value for value in values if value)
        # longest first, so a secret containing another one is replaced whole
        ordered = sorted((v for v in found if len(v) >= MIN_SCRUBBED_LENGTH), key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    @classmethod
    def for_step(cls, step_env: Mapping[str, str]) -> SecretScrubber:
        """Secrets of the step's env and of the environment it inherits from this process."""
        return cls(step_env, os.environ)

    def text(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def value(self, value: Any) -> Any:
        """Scrub every string inside a JSON-like value (dicts, lists, strings)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value


class SecretLogFilter(logging.Filter):
    """Replaces secret values in the records of the loggers it is installed on.

    A logger's filters only see records created by that very logger (not those of its
    children), so :meth:`install` puts the filter on each existing logger of the given
    libraries. The scrubber can be replaced once the secrets are known.
    """

    def __init__(self, scrubber: SecretScrubber | None = None) -> None:
        super().__init__()
        self.scrubber = scrubber or SecretScrubber()

    def install(self, libraries: Iterable[str]) -> None:
        """On every logger created so far whose top-level name is one of ``libraries``."""
        wanted = set(libraries)
        for name in list(logging.Logger.manager.loggerDict):
            if name.split(".")[0] in wanted:
                logger = logging.getLogger(name)
                if self not in logger.filters:
                    logger.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is left to logging
            return True
        cleaned = self.scrubber.text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
