"""Environment values that must not be shown: masked wherever the plugin writes or displays them.

A variable is secret when its name contains SECRET, TOKEN, PASSWORD, KEY, CREDENTIAL or AUTH
(case-insensitive, anywhere in the name: ``AWS_SECRET_ACCESS_KEY``, ``api_token``). Its value
is replaced by ``MASK`` in env listings, and every occurrence of it in text the plugin shows
(failure messages, tracebacks, log excerpts) is replaced too.

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
    """Replaces the values of secret variables in text; built from every env that may leak."""

    __slots__ = ("_pattern",)

    def __init__(self, *envs: Mapping[str, str]) -> None:
        values = {
            str(value)
            for env in envs
            for name, value in env.items()
            if is_secret_name(name) and len(str(value)) >= MIN_SCRUBBED_LENGTH
        }
        # longest first, so a secret containing another one is replaced whole
        ordered = sorted(values, key=len, reverse=True)
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
