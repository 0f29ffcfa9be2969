"""Environment values that must not be shown: masked wherever the plugin writes or displays them.

A variable is secret when one of the ``_``-separated parts of its name (any case) is ``SECRET``,
``PASSWORD``, ``PASSWD``, ``TOKEN``, ``CREDENTIAL``, ``CREDENTIALS`` or ``AUTH``, or is ``KEY``
right after ``ACCESS``, ``API``, ``PRIVATE``, ``SECRET`` or ``ENCRYPTION`` (``DB_PASSWD``,
``GITHUB_TOKEN``, ``MY_API_KEY``; not ``SORT_KEY``, ``TOKENIZER_NAME`` or ``AUTHOR``). A
scenario adds names to the rule and exempts names from it (:class:`SecretNames`). A secret's
value is replaced by ``MASK`` in env listings, and every occurrence of it in text the plugin
shows or stores (failure messages, tracebacks, return values, log excerpts) is replaced too.

Values known to be secret without a name (the credentials an S3 client resolved) are given to
:class:`SecretScrubber` as ``values``; :class:`SecretLogFilter` applies a scrubber to the records
of loggers the plugin does not own (botocore's DEBUG records carry the session token).

Only the standard library is imported: the step's child process uses this module.

    >>> mask_env({"LABEL_FIELD": "label", "DB_PASSWD": "hunter22", "SORT_KEY": "id"})
    {'LABEL_FIELD': 'label', 'DB_PASSWD': '********', 'SORT_KEY': 'id'}
    >>> SecretScrubber({"PRIVATE_KEY_PEM": "-----BEGIN KEY-----\\nMIIEvQIBADAN\\nQ==\\n-----END KEY-----"}).text(
    ...     "read MIIEvQIBADAN and Q==")
    'read ******** and Q=='

Caveats:
    * Values shorter than ``MIN_SCRUBBED_LENGTH`` (4) characters are masked in env listings but
      not searched for in text: replacing every "1" or "on" in a log would destroy it and hide
      nothing. The same holds for each line of a multi-line value: a PEM key's last line ``Q==``
      is not searched for on its own.
    * The step's own ``stdout.log`` / ``stderr.log`` are the script's bytes, kept as written; what
      the plugin shows or keeps of them (excerpts in reports, tails, lines streamed with ``-s``, the
      notebook's ``stdout``, the copies of a failed step's logs) is masked.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# a name part that makes a variable secret wherever it stands
SECRET_WORDS = frozenset({"SECRET", "PASSWORD", "PASSWD", "TOKEN", "CREDENTIAL", "CREDENTIALS", "AUTH"})
# KEY alone usually names a lookup key (SORT_KEY, PARTITION_KEY); right after one of these, a secret
SECRET_KEY_QUALIFIERS = frozenset({"ACCESS", "API", "PRIVATE", "SECRET", "ENCRYPTION"})
MASK = "********"
MIN_SCRUBBED_LENGTH = 4


def is_secret_name(name: str) -> bool:
    """Whether the name rule holds ``name`` secret: it matches whole ``_``-separated parts, so
    ``TOKENIZER_NAME`` or ``MONKEY_COUNT`` are not."""
    parts = name.upper().split("_")
    return any(
        part in SECRET_WORDS or (part == "KEY" and index > 0 and parts[index - 1] in SECRET_KEY_QUALIFIERS)
        for index, part in enumerate(parts)
    )


class SecretNames:
    """Which variable names are secret: the name rule's, plus ``mask``, minus ``exempt``.

    ``mask`` and ``exempt`` are exact variable names, from a scenario's ``secrets:``
    (docs/scenarios.md#secrets): ``mask`` for a secret the rule misses (``DB_URL`` holding a
    password), ``exempt`` for a name the rule takes for a secret that is not one.

        >>> SecretNames(mask=["DB_URL"], exempt=["AUTH_MODE"]).of(["DB_URL", "AUTH_MODE", "API_KEY", "SEED"])
        ['API_KEY', 'DB_URL']
    """

    __slots__ = ("mask", "exempt")

    def __init__(self, mask: Iterable[str] = (), exempt: Iterable[str] = ()) -> None:
        self.mask = frozenset(mask)
        self.exempt = frozenset(exempt)

    def is_secret(self, name: str) -> bool:
        if name in self.exempt:
            return False
        return name in self.mask or is_secret_name(name)

    def of(self, env: Iterable[str]) -> list[str]:
        """The secret names among ``env``'s, sorted."""
        return sorted(name for name in env if self.is_secret(name))

    def __bool__(self) -> bool:
        """Whether it differs from the name rule alone."""
        return bool(self.mask or self.exempt)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretNames):
            return NotImplemented
        return (self.mask, self.exempt) == (other.mask, other.exempt)

    def __hash__(self) -> int:
        return hash((self.mask, self.exempt))

    def __repr__(self) -> str:
        return f"SecretNames(mask={sorted(self.mask)!r}, exempt={sorted(self.exempt)!r})"


NAME_RULE = SecretNames()  # the name rule alone, without a scenario's additions or exemptions


def secret_names(env: Iterable[str], names: SecretNames = NAME_RULE) -> list[str]:
    return names.of(env)


def mask_env(env: Mapping[str, str], names: SecretNames = NAME_RULE) -> dict[str, str]:
    """The env with secret values replaced by ``MASK``."""
    return {name: MASK if names.is_secret(name) else value for name, value in env.items()}


def searched_forms(value: str) -> Iterator[str]:
    """What of a secret value is searched for in text: the value, and each line of a multi-line
    value (a PEM key printed line by line, or logged with a prefix on each line, never shows whole),
    as CI systems mask them. Forms shorter than ``MIN_SCRUBBED_LENGTH`` are left out."""
    forms = (value, *(line.strip() for line in value.splitlines()))
    return (form for form in forms if len(form) >= MIN_SCRUBBED_LENGTH)


class SecretScrubber:
    """Replaces secret values in text: those of the secret variables of ``envs``, and ``values``
    (secrets known without a name, such as the credentials an S3 client resolved)."""

    __slots__ = ("_pattern",)

    def __init__(
        self, *envs: Mapping[str, str], values: Iterable[str | None] = (), names: SecretNames = NAME_RULE
    ) -> None:
        found = {str(value) for env in envs for name, value in env.items() if names.is_secret(name)}
        found.update(value for value in values if value)
        searched = {form for value in found for form in searched_forms(value)}
        # longest first, so a secret containing another one (a PEM key, one of its lines) is replaced whole
        ordered = sorted(searched, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    @classmethod
    def for_step(cls, step_env: Mapping[str, str], names: SecretNames = NAME_RULE) -> SecretScrubber:
        """Secrets of the step's env and of the environment it inherits from this process."""
        return cls(step_env, os.environ, names=names)

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
