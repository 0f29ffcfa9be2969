"""botocore's S3 client, as steps and the health check use it.

* The client is botocore's (boto3's credential chain and configuration, without importing
  boto3), created on first use; see :func:`_new_session` for what is shared between the
  clients of one process and what is left out.
* botocore's own retries (standard mode) cover failures before the response headers;
  :meth:`S3Client.retrying` covers a body that drops mid-transfer.
* botocore's exceptions become one-paragraph :class:`S3Error` messages that name the URI, the
  endpoint and the credential *source*, never a credential value (:meth:`S3Client.translated`);
  the records of the AWS libraries' loggers have the credentials in use replaced
  (:class:`pytest_cursus.secret_env.SecretLogFilter`).
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pytest_cursus.data.s3.errors import S3Error
from pytest_cursus.data.s3.uri import S3Uri
from pytest_cursus.errors import MissingExtra
from pytest_cursus.secret_env import SecretLogFilter, SecretScrubber

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
# botocore's DEBUG records include request headers and the canonical request, hence the session
# token; pytest shows captured DEBUG records of failing tests when asked to (--log-level=DEBUG)
AWS_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")
_LOG_FILTER = SecretLogFilter()
_T = TypeVar("_T")


class S3Client:
    """One botocore S3 client, created on first use and shared by every thread (botocore clients
    are thread-safe). Every GetObject asks for the ETag pinned for its key (:meth:`pin_etags`),
    so what is stored under an ETag is that ETag's content."""

    def __init__(
        self,
        endpoint_url: str | None,
        *,
        attempts: int,
        connections: int,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
    ) -> None:
        self.endpoint_url = endpoint_url  # None: botocore resolves it (AWS_ENDPOINT_URL_S3, ~/.aws/config, AWS)
        self.attempts = attempts  # of a request (botocore's retries) and of a body that drops
        self.connections = connections
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.scrubber = SecretScrubber()  # the credentials in use, once resolved
        self._session: Any = None
        self._credential_source: str | None = None
        self._api: Any = None
        self._lock = threading.RLock()
        self._pinned: dict[tuple[str, str], str] = {}

    @property
    def api(self) -> Any:
        """botocore's client (its ``list_objects_v2``, ``get_object``...), created on first use."""
        if self._api is None:
            with self._lock:
                if self._api is None:
                    self._api = self._create(self._resolved_session())
        return self._api

    @property
    def credential_source(self) -> str | None:
        """botocore's name for where the credentials come from (``env``, ``shared-credentials-file``,
        ``assume-role``...), None when there are none; resolved once, without a request to S3."""
        self._resolved_session()
        return self._credential_source

    @property
    def at_endpoint(self) -> str:
        """`` at <endpoint>`` for messages when an endpoint was given, else nothing."""
        return f" at {shown_endpoint(self.endpoint_url)}" if self.endpoint_url else ""

    def pin_etags(self, bucket: str, etags: dict[str, str]) -> None:
        """Make every later GetObject of these keys carry ``If-Match: <etag>``."""
        self._pinned.update({(bucket, key): etag for key, etag in etags.items() if etag})

    def retrying(self, attempt: Callable[[], _T], undo: Callable[[], None] | None = None) -> _T:
        """Run ``attempt`` again when the connection drops mid-body (botocore retries a request
        only until its headers arrive); a full disk or any other error is not retried."""
        retryable = _dropped_connection_errors()
        last: BaseException | None = None
        for _ in range(self.attempts):
            try:
                return attempt()
            except retryable as exc:
                last = exc
                if undo is not None:
                    undo()
        raise _RetriesExhausted(self.attempts, last)

    @contextmanager
    def translated(self, uri: S3Uri, key: str | None) -> Iterator[None]:
        """botocore's exceptions (and ours) turned into one-paragraph S3Errors, credentials masked."""
        try:
            yield
        except S3Error as exc:
            raise type(exc)(self.scrubber.text(str(exc))) from None
        except Exception as exc:
            message = _describe_failure(
                exc, uri.of_key(key) if key else uri, self.at_endpoint, self._credential_source, self.endpoint_url
            )
            if message is None:
                raise
            raise S3Error(self.scrubber.text(message)) from None

    def _resolved_session(self) -> Any:
        with self._lock:
            if self._session is None:
                load_s3_libraries()
                session = _new_session()
                credentials = session.get_credentials()
                if credentials is not None:
                    self._credential_source = credentials.method
                    frozen = credentials.get_frozen_credentials()
                    self.scrubber = SecretScrubber(values=(frozen.secret_key, frozen.token))
                self._session = session
            return self._session

    def _create(self, session: Any) -> Any:
        from botocore.config import Config

        client = session.create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=Config(
                retries={"max_attempts": self.attempts, "mode": "standard"},
                max_pool_connections=self.connections,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
            ),
        )
        client.meta.events.register("before-parameter-build.s3.GetObject", self._pin_etag)
        _LOG_FILTER.scrubber = self.scrubber
        _LOG_FILTER.install(AWS_LOGGERS)
        return client

    def _pin_etag(self, params: dict[str, Any], **_: Any) -> None:
        etag = self._pinned.get((params.get("Bucket", ""), params.get("Key", "")))
        if etag and "IfMatch" not in params:
            params["IfMatch"] = etag


def shown_endpoint(url: str) -> str:
    """The endpoint URL as messages show it: ``user:password@`` in it is never shown."""
    parts = urlsplit(url)
    host = f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    return urlunsplit(parts._replace(netloc=host))


def load_s3_libraries() -> None:
    """Import what talking to S3 needs (botocore), on first use: a pytest session that reads no
    S3 data never pays for it."""
    MissingExtra.check("botocore", "s3", "S3 (s3: sources, --cursus-execution, the S3 health check)")
    import botocore.config  # noqa: F401
    import botocore.exceptions  # noqa: F401
    import botocore.session  # noqa: F401


_LOADERS: dict[str | None, Any] = {}
_LOADERS_LOCK = threading.Lock()


def _new_session() -> Any:
    """A botocore session: boto3's credential chain and configuration (boto3 delegates both to
    botocore), without importing boto3 and its transfer manager, which nothing here uses.

    Its data loader (the parsed JSON service models: S3's API, its endpoint rules, the
    partitions) is shared by every session of the process, as boto3 shares one across the
    clients of a session: the next ``S3Client`` of the process (the notebook API makes one per
    call) does not parse them again. It searches what ``botocore.loaders.create_loader`` would
    (``data_path``/``AWS_DATA_PATH``, ``~/.aws/models``, botocore's data) and reads the files
    with :class:`_PlainJSONFileLoader`. Credentials are still resolved afresh by each session.
    Response timestamps are left as text: nothing here reads them, and parsing a
    ``LastModified`` per listed object was most of the client's CPU time of a LIST.
    """
    import botocore.session

    session = botocore.session.Session()
    data_path = session.get_config_variable("data_path")
    with _LOADERS_LOCK:
        if data_path not in _LOADERS:
            _LOADERS[data_path] = model_loader(data_path)
    session.register_component("data_loader", _LOADERS[data_path])
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return session


def model_loader(data_path: str | None) -> Any:
    """``botocore.loaders.create_loader(data_path)``, reading with :class:`_PlainJSONFileLoader`."""
    import botocore.loaders

    paths = (
        []
        if data_path is None
        else [os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep)]
    )
    return botocore.loaders.Loader(extra_search_paths=paths, file_loader=_PlainJSONFileLoader())


class _PlainJSONFileLoader:
    """botocore's model files parsed into plain dicts instead of OrderedDicts.

    botocore's own file loader parses each model with ``object_pairs_hook=OrderedDict``; a dict
    keeps the same key order (Python 3.7+) and botocore uses none of OrderedDict's extras on
    loaded data, while parsing about twice as fast (the 1.2 MB endpoints.json: 33 ms against
    13 ms). Same files, same search order, same ``.json`` then ``.json.gz`` lookup: the
    ``file_loader`` argument of botocore's ``Loader`` exists for such faster loaders (see the
    docstring of ``botocore.loaders``). Implements the two methods a ``Loader`` calls.
    """

    _EXTENSIONS = (".json", ".json.gz")

    def exists(self, file_path: str) -> bool:
        # botocore ships every model gzipped: that one first, one stat per service listed
        return os.path.isfile(file_path + ".json.gz") or os.path.isfile(file_path + ".json")

    def load_file(self, file_path: str) -> Any:
        for extension in self._EXTENSIONS:
            try:
                with open(file_path + extension, "rb") as handle:
                    raw = handle.read()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue
            return json.loads((gzip.decompress(raw) if extension == ".json.gz" else raw).decode("utf-8"))
        return None


def _dropped_connection_errors() -> tuple[type[BaseException], ...]:
    from botocore import exceptions as bx
    from urllib3 import exceptions as ux

    return (
        bx.IncompleteReadError,
        bx.ResponseStreamingError,
        bx.ReadTimeoutError,
        bx.ConnectionClosedError,
        ux.ProtocolError,
        ux.ReadTimeoutError,
        ConnectionError,
        TimeoutError,
    )


class _RetriesExhausted(Exception):
    def __init__(self, attempts: int, last: BaseException | None) -> None:
        self.attempts = attempts
        self.last = last
        super().__init__(f"gave up after {attempts} attempts")


def _describe_failure(
    exc: BaseException, what: S3Uri, at: str, credential_source: str | None, endpoint_url: str | None
) -> str | None:
    """The message for a failure reading ``what`` (an object, or the URI as given); None for an
    exception that is not S3's."""
    from botocore import exceptions as bx

    endpoint_hint = " and --cursus-s3-endpoint" if endpoint_url else ""
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return (
            f"no AWS credentials found to read {what}: configure them the usual way for boto3 "
            "(AWS_PROFILE or ~/.aws/credentials, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "`aws sso login`, or an instance/container role)"
        )
    if isinstance(exc, bx.ProfileNotFound):
        return (
            f"AWS profile {exc.kwargs.get('profile')!r} not found (reading {what}): check AWS_PROFILE and ~/.aws/config"
        )
    if isinstance(
        exc, (bx.CredentialRetrievalError, bx.TokenRetrievalError, bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError)
    ):
        return (
            f"AWS credentials could not be loaded to read {what} ({type(exc).__name__}): "
            "refresh them (e.g. `aws sso login`) and rerun"
        )
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        operation = exc.operation_name
        source = f" (credentials from {credential_source})" if credential_source else ""
        if code == "NoSuchBucket":
            return (
                f"bucket {what.bucket!r} does not exist{at} (reading {what}): "
                f"check the bucket name in the URI{endpoint_hint}"
            )
        if code in ("AccessDenied", "AllAccessDisabled", "Forbidden", "403") or status == 403:
            return (
                f"access denied to {what}{at}: {operation} answered {code or status}{source}; check that the role or "
                "profile in use has s3:ListBucket on the bucket and s3:GetObject on its keys, and the bucket policy"
            )
        if code in (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "TokenRefreshRequired",
        ):
            return f"S3 rejected the credentials{source} reading {what}{at} ({code}): refresh or fix them and rerun"
        if code in ("PreconditionFailed", "412") or status == 412:
            return (
                f"{what} changed while it was being downloaded (its ETag no longer matches the listing): "
                "rerun to take the new version"
            )
        if code in ("NoSuchKey", "404") or status == 404:
            return f"{what} disappeared while it was being downloaded: rerun"
        detail = str(error.get("Message", "")).strip()
        return f"S3 refused {operation} on {what}{at}: {code or status}{': ' + detail if detail else ''}"
    if isinstance(exc, _RetriesExhausted):
        return (
            f"the connection dropped while downloading {what}{at}; gave up after {exc.attempts} attempts: "
            f"check the network{endpoint_hint} and rerun (files already complete are kept in the download cache)"
        )
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return f"could not connect to S3{at} to read {what}: check the network{endpoint_hint}"
    if isinstance(
        exc, (bx.ConnectionClosedError, bx.ReadTimeoutError, bx.ResponseStreamingError, bx.IncompleteReadError)
    ):
        return (
            f"the connection dropped while reading {what}{at} and retries did not help ({type(exc).__name__}): "
            f"check the network{endpoint_hint} and rerun"
        )
    if isinstance(exc, bx.BotoCoreError):
        return f"reading {what}{at} failed: {type(exc).__name__}: {exc}"
    return None
