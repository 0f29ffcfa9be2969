"""Headless Chromium for tests that look at a page: installed from Debian's package when missing,
run with the network blocked and a net log, so a test can tell whether the page asked for
anything from the network.

Blocking: every host name resolves to nothing (``--host-resolver-rules``) and every connection
goes through a proxy on a closed local port, so no request can leave the machine; the net log
records each attempt, which is what the tests check.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-extension:", "devtools:")
INSTALL_LOCK = Path(tempfile.gettempdir()) / "cursus-chromium-install.lock"


class ChromiumUnavailable(Exception):
    pass


# Debian's and Ubuntu's Chromium, then Google Chrome (preinstalled on GitHub's ubuntu runners, where
# Ubuntu's chromium is a snap that cannot be installed): the same headless flags work for all.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_or_install_chromium() -> str:
    """A Chromium-family browser, installing Debian's chromium if none is found (one process at a time)."""
    with open(INSTALL_LOCK, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = next(filter(None, map(shutil.which, BROWSERS)), None)
        if found:
            return found
        if shutil.which("apt-get") is None:
            raise ChromiumUnavailable("chromium is not installed and there is no apt-get to install it")
        try:
            for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
                subprocess.run(command, check=True, capture_output=True, timeout=900)
        except (subprocess.SubprocessError, OSError) as exc:
            raise ChromiumUnavailable(f"could not install chromium with apt-get: {exc}") from None
        found = shutil.which("chromium")
        if not found:
            raise ChromiumUnavailable("apt-get install chromium succeeded but no chromium binary is on PATH")
        return found


def _closed_local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the with block ends


@dataclass
class PageVisit:
    dom: str
    screenshot: Path
    page_requests: list[str]  # network URLs the page itself asked for
    blocked_ok: bool  # every network request of any origin failed without a connection


def visit(
    binary: str, page: Path, workdir: Path, *, window: tuple[int, int] = (1400, 2000), query: str = ""
) -> PageVisit:
    """Load ``page`` (with ``query``, e.g. ``?collapsed=``) twice: once dumping the DOM after
    scripts ran, once taking a screenshot."""
    url = page.as_uri() + query
    netlog = workdir / "netlog.json"
    screenshot = workdir / "page.png"
    common = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-default-apps",
        "--disable-extensions",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--proxy-server=127.0.0.1:{_closed_local_port()}",
        f"--window-size={window[0]},{window[1]}",
        "--virtual-time-budget=3000",
    ]
    dom = subprocess.run(
        [*common, f"--user-data-dir={workdir / 'profile-dom'}", f"--log-net-log={netlog}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # a browser crash shows as an empty DOM, which the caller's asserts report
    ).stdout
    subprocess.run(
        [*common, f"--user-data-dir={workdir / 'profile-shot'}", f"--screenshot={screenshot}", url],
        capture_output=True,
        timeout=120,
        check=False,
    )
    requests, blocked_ok = _network_requests(netlog)
    return PageVisit(dom=dom, screenshot=screenshot, page_requests=requests, blocked_ok=blocked_ok)


def _network_requests(netlog: Path) -> tuple[list[str], bool]:
    """URLs the page asked for (not the browser's own background requests), and whether every
    network request failed before connecting (the block held)."""
    log = json.loads(netlog.read_text())
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    page_urls: list[str] = []
    started: dict[int, str] = {}
    failed: set[int] = set()
    for event in log["events"]:
        params = event.get("params", {})
        source = event["source"]["id"]
        if names.get(event["type"]) == "URL_REQUEST_START_JOB" and "url" in params:
            url = params["url"]
            if url.startswith(LOCAL_SCHEMES):
                continue
            started[source] = url
            # the browser's own requests (updates, time sync) have no origin; the page's do
            if params.get("initiator") != "not an origin":
                page_urls.append(url)
        if params.get("net_error") is not None and params["net_error"] < 0:
            failed.add(source)
    return page_urls, all(source in failed for source in started)
