"""Live reload in a real browser: headless Chromium, driven over the DevTools protocol
(with the `websockets` client), loads a page from a server started with --live-reload;
a saved stylesheet is swapped in place (the page's state survives), a saved page is
reloaded. The save-to-repaint times are printed."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.servers import Server

PAGE = b"""<!doctype html><html><head><title>live</title>
<link rel="stylesheet" href="/style.css"></head>
<body><p>first version</p></body></html>
"""
RED, BLUE = "rgb(255, 0, 0)", "rgb(0, 0, 255)"


class Page:
    """One browser tab, driven by Runtime.evaluate."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def evaluate(self, expression: str) -> Any:
        ident = next(self.ids)
        params = {"expression": expression, "returnByValue": True}
        self.ws.send(json.dumps({"id": ident, "method": "Runtime.evaluate", "params": params}))
        while True:
            answer = json.loads(self.ws.recv(timeout=10))
            if answer.get("id") == ident:
                return answer["result"]["result"].get("value")

    def until(self, expression: str, timeout_s: float = 10.0) -> float:
        """Seconds until `expression` is true in the page."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            try:
                if self.evaluate(expression):
                    return time.monotonic() - started
            except (KeyError, TimeoutError):
                pass  # the page is being replaced: its context is gone for a moment
            time.sleep(0.02)
        raise AssertionError(f"never true: {expression}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is missing: `make test` installs it (apt-get install chromium)"
    proc = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        port = 0
        deadline = time.monotonic() + 30
        while not port and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "DevTools listening on ws://" in line:
                port = int(line.split("ws://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        assert port, "Chromium did not start its DevTools endpoint"
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@contextlib.contextmanager
def _open(devtools_port: int, url: str) -> Iterator[Page]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{devtools_port}/json/new?{url}", method="PUT"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        target = json.loads(response.read())
    with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
        yield Page(ws)


def test_css_is_swapped_in_place_and_html_reloads_the_page(
    browser: tuple[subprocess.Popen[str], int], tmp_path: Path, scratch: Path
) -> None:
    _, devtools = browser
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(PAGE)
    (site / "style.css").write_text("body { color: rgb(255, 0, 0); }\n")
    with (
        Server(site, "--live-reload", tmp=scratch) as server,
        _open(devtools, server.url("/")) as page,
    ):
        page.until('window.lanthornLiveReload === "open"')
        assert page.evaluate("getComputedStyle(document.body).color") == RED
        page.evaluate("window.marker = 42")

        (site / "style.css").write_text("body { color: rgb(0, 0, 255); }\n")
        css_s = page.until(f'getComputedStyle(document.body).color === "{BLUE}"')
        assert page.evaluate("window.marker") == 42  # swapped in place: no reload

        (site / "index.html").write_bytes(PAGE.replace(b"first", b"second"))
        html_s = page.until('document.body.innerText.includes("second version")')
        assert page.evaluate("window.marker") is None  # a new page
        page.until('window.lanthornLiveReload === "open"')  # and it connects back
        print(f"save to repaint: stylesheet {css_s * 1000:.0f} ms, page {html_s * 1000:.0f} ms")
