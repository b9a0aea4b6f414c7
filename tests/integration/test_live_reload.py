"""Live reload in a real browser: headless Chromium, driven over the DevTools protocol
(with the `websockets` client), loads a page from a server started with --live-reload;
a saved stylesheet is swapped in place (the page's state survives), a saved page is
reloaded. The save-to-repaint times are printed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests import certs
from tests.integration.chromium import open_page
from tests.servers import Server

PAGE = b"""<!doctype html><html><head><title>live</title>
<link rel="stylesheet" href="/style.css"></head>
<body><p>first version</p></body></html>
"""
RED, BLUE = "rgb(255, 0, 0)", "rgb(0, 0, 255)"


@pytest.mark.parametrize("tls", [False, True], ids=["http1", "https-h2"])
def test_css_is_swapped_in_place_and_html_reloads_the_page(
    browser: tuple[subprocess.Popen[str], int], tmp_path: Path, scratch: Path, tls: bool
) -> None:
    """Over HTTPS the page's socket is a WebSocket over HTTP/2 (RFC 8441), as Chromium
    opens one wherever the server offers extended CONNECT."""
    _, devtools = browser
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(PAGE)
    (site / "style.css").write_text("body { color: rgb(255, 0, 0); }\n")
    args = ["--live-reload", "--access-log", "-"]
    if tls:
        _, cert, key = certs.make(tmp_path)
        args += ["--tls-cert", str(cert), "--tls-key", str(key)]
    with (
        Server(site, *args, tmp=scratch) as server,
        open_page(devtools, server.url("/")) as page,
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
        # The first page's socket closed with it: its record says how it was opened.
        opened = (
            '"CONNECT /_lanthorn/live-reload HTTP/2.0" 200 '
            if tls
            else '"GET /_lanthorn/live-reload HTTP/1.1" 101 '
        )
        deadline = time.monotonic() + 10  # the access log is flushed about once a second
        while opened not in server.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert opened in server.output()
