"""A real S3 endpoint for the tests: moto's server on 127.0.0.1 over HTTP, plus network faults.

Nothing in boto3 is patched: the plugin talks HTTP to the moto server (``--cursus-s3-endpoint``),
or to one of these in front of it:

* :class:`FaultProxy`, a TCP proxy that counts the requests and bytes going through, and can
  cut a connection after some response bytes (the first ``cuts`` times), so the retries are
  real ones, or slow responses down;
* :class:`ForbiddenEndpoint`, an HTTP server answering every request with S3's 403
  ``AccessDenied`` error document. moto only enforces policies with its IAM authentication
  switched on process-wide (``INITIAL_NO_AUTH_ACTION_COUNT``), which would change every other
  test sharing the server; a 403 from the wire is what boto3 sees either way.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

# Recognisable credential values: tests grep every output for them.
ACCESS_KEY_ID = "AKIACURSUSTESTKEYID1"
SECRET_ACCESS_KEY = "cursusSecretAccessKEY-7f3a9c1e5b2d4a6f8e0c"
SESSION_TOKEN = "cursusSessionTOKEN-d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto S3 server per test process (each xdist worker has its own)."""
    # imported here: this module is imported by tests/conftest.py, which pytest also loads for
    # `pytest --cursus-scenarios scenarios` (README command 1) with only the base install
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def set_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials in the environment, and nothing else boto3 could find."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@dataclass
class S3Bucket:
    """A fresh bucket on the moto server, and a client to fill it."""

    name: str
    endpoint: str
    client: Any

    def uri(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}"

    def put(self, key: str, body: bytes | str) -> str:
        """Upload and return the object's ETag."""
        data = body.encode() if isinstance(body, str) else body
        return str(self.client.put_object(Bucket=self.name, Key=key, Body=data)["ETag"])

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


@pytest.fixture
def s3_bucket(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> S3Bucket:
    set_aws_env(monkeypatch, tmp_path_factory.mktemp("aws"))
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    name = f"cursus-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return S3Bucket(name, moto_endpoint, client)


_REQUEST_LINE = re.compile(rb"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/1\.[01]\r\n")


class FaultProxy:
    """A TCP proxy on 127.0.0.1 in front of ``upstream`` (``http://host:port``).

    ``cut_after``: close a connection once it has carried that many response bytes, the first
    ``cuts`` times. ``delay`` seconds are slept before forwarding each response chunk.
    ``requests`` lists (method, path) of every request seen; ``response_bytes`` counts bytes.
    """

    def __init__(self, upstream: str, *, cut_after: int | None = None, cuts: int = 0, delay: float = 0.0) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.cuts_done = 0
        self.delay = delay
        self.requests: list[tuple[str, str]] = []
        self.response_bytes = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def gets_of(self, key_part: str) -> int:
        """GET requests of object keys containing ``key_part`` (listings excluded)."""
        return sum(
            1 for method, path in self.requests if method == "GET" and key_part in path and "list-type" not in path
        )

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._responses, args=(server, client), daemon=True).start()

    def _requests(self, source: socket.socket, sink: socket.socket) -> None:
        pending = b""  # the tail of the stream, where a request line may be cut in two
        while True:
            try:
                chunk = source.recv(65536)
                if not chunk:
                    break
                pending += chunk
                end = 0
                for match in _REQUEST_LINE.finditer(pending):
                    with self._lock:
                        self.requests.append((match.group(1).decode(), match.group(2).decode()))
                    end = match.end()
                pending = pending[end:][-4096:]
                sink.sendall(chunk)
            except OSError:
                break
        _close(source)
        _close(sink)

    def _responses(self, source: socket.socket, sink: socket.socket) -> None:
        carried = 0
        while True:
            try:
                chunk = source.recv(65536)
                if not chunk:
                    break
                if self.delay:
                    time.sleep(self.delay)
                with self._lock:
                    cut = self.cut_after is not None and self.cuts_left > 0 and carried + len(chunk) > self.cut_after
                    if cut:
                        self.cuts_left -= 1
                        self.cuts_done += 1
                if cut:
                    assert self.cut_after is not None
                    sink.sendall(chunk[: max(self.cut_after - carried, 0)])
                    break
                carried += len(chunk)
                with self._lock:
                    self.response_bytes += len(chunk)
                sink.sendall(chunk)
            except OSError:
                break
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.fixture
def fault_proxy(s3_bucket: S3Bucket) -> Iterator[type[FaultProxy]]:
    """Build proxies in front of the test's moto server: ``fault_proxy(cut_after=..., cuts=...)``."""
    made: list[FaultProxy] = []

    def build(**kwargs: Any) -> FaultProxy:
        proxy = FaultProxy(s3_bucket.endpoint, **kwargs)
        made.append(proxy)
        return proxy

    yield build  # type: ignore[misc]
    for proxy in made:
        proxy.close()


_ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message>'
    b"<RequestId>CURSUSTEST</RequestId></Error>"
)


class _Forbidden(BaseHTTPRequestHandler):
    def _deny(self) -> None:
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(_ACCESS_DENIED)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(_ACCESS_DENIED)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _deny

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def forbidden_endpoint() -> Iterator[str]:
    """An S3-speaking endpoint that denies everything (see the module docstring for why not moto)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
