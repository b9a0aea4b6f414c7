"""A real browser (headless Chromium) loads the demo site: over HTTPS it negotiates
HTTP/2 by ALPN, over cleartext it speaks HTTP/1.1; the page, its stylesheet, script and
image all arrive, and the script runs."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests import certs
from tests.integration.chromium import open_page
from tests.servers import Server

WWW = Path(__file__).resolve().parents[2] / "www"
ASSETS = ("/", "/css/site.css", "/js/app.js", "/img/lanthorn.png")


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is missing: `make test` installs it (apt-get install chromium)"
    return path


def _dump_dom(url: str) -> str:
    argv = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--ignore-certificate-errors", "--dump-dom", url]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _log_lines(log: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 10  # the access log is flushed about once a second
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"access log has {log.read_text() if log.exists() else 'nothing'}")


@pytest.mark.parametrize("model", ["asyncio", "threads"])
@pytest.mark.parametrize(("tls", "version"), [(True, "HTTP/2.0"), (False, "HTTP/1.1")])
def test_browser_loads_the_demo_site(
    model: str, tls: bool, version: str, tmp_path: Path, scratch: Path
) -> None:
    log = tmp_path / "access.log"
    args = ["--model", model, "--access-log", str(log)]
    if tls:
        _, cert, key = certs.make(tmp_path)
        args += ["--tls-cert", str(cert), "--tls-key", str(key)]
    with Server(WWW, *args, tmp=scratch) as srv:
        dom = _dump_dom(srv.url("/"))
        assert "<title>lanthorn — it works</title>" in dom
        assert "JavaScript ran: this page, its stylesheet, script and image came from" in dom
        lines = _log_lines(log, len(ASSETS))
    for asset in ASSETS:
        assert any(f'"GET {asset} {version}" 200 ' in line for line in lines), lines
    assert all("HeadlessChrome" in line for line in lines)


def test_browser_opens_websockets_over_http2(
    browser: tuple[subprocess.Popen[str], int], tmp_path: Path, scratch: Path
) -> None:
    """Over HTTPS, Chromium opens a page's WebSocket as an extended CONNECT on the
    page's HTTP/2 connection (RFC 8441) once the server offers it."""
    _, devtools = browser
    _, cert, key = certs.make(tmp_path)
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--ws-echo", "/echo")
    with (
        Server(WWW, *args, "--access-log", "-", tmp=scratch) as srv,
        open_page(devtools, srv.url("/")) as page,
    ):
        # (A new tab is about:blank, complete, before it navigates.)
        page.until("location.protocol === 'https:' && document.readyState === 'complete'")
        page.evaluate(
            f"window.replies = []; const ws = new WebSocket('wss://127.0.0.1:{srv.port}/echo');"
            "ws.onopen = () => { ws.send('text ✓'); ws.send(new Uint8Array([0, 255])); };"
            "ws.binaryType = 'arraybuffer';"
            "ws.onmessage = e => { window.replies.push(typeof e.data === 'string' ? e.data"
            " : Array.from(new Uint8Array(e.data)).join(',')); if (window.replies.length == 2)"
            " ws.close(1000); };"
            "ws.onclose = e => { window.closedWith = e.code; };"
        )
        page.until("window.closedWith === 1000")
        assert page.evaluate("window.replies") == ["text ✓", "0,255"]
        lines = [line for line in _log_lines_of(srv) if "/echo" in line]
    assert lines and '"CONNECT /echo HTTP/2.0" 200 ' in lines[0], lines


def _log_lines_of(srv: Server) -> list[str]:
    deadline = time.monotonic() + 10  # the access log is flushed about once a second
    while "/echo" not in srv.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    return srv.output().splitlines()


def test_directory_listing_in_a_browser(
    browser: tuple[subprocess.Popen[str], int], tmp_path: Path, scratch: Path
) -> None:
    """--autoindex: sizes for people, a filter box, columns that sort on a click, light
    and dark, readable on a phone (no sideways scroll at 390 px; a screenshot is taken),
    every name escaped, nothing fetched but the page (and the browser's favicon)."""
    _, devtools = browser
    root = tmp_path / "root"
    (root / "files" / "docs").mkdir(parents=True)
    (root / "files" / "small.txt").write_bytes(b"x" * 10)
    (root / "files" / "medium.bin").write_bytes(b"x" * 5 * 1024)
    with open(root / "files" / "large.iso", "wb") as fh:  # sparse
        fh.truncate(3 * 2**20)
    (root / "files" / "<b>bold<i>.txt").write_bytes(b"x")
    args = ("--autoindex", "--access-log", "-")
    with Server(root, *args, tmp=scratch) as srv, open_page(devtools, srv.url("/files/")) as page:
        page.until("document.readyState === 'complete' && !!document.querySelector('tbody')")
        names = "[...document.querySelectorAll('tbody tr')].filter(r => r.style.display !== 'none')"
        rows = f"{names}.map(r => [...r.cells].slice(0, 2).map(c => c.textContent))"
        assert page.evaluate(rows) == [
            ["../", ""], ["docs/", "—"], ["<b>bold<i>.txt", "1 B"], ["large.iso", "3.0 MiB"],
            ["medium.bin", "5.0 KiB"], ["small.txt", "10 B"],
        ]  # fmt: skip
        assert page.evaluate("document.querySelectorAll('b, i').length") == 0  # text only
        page.evaluate(
            "const f = document.querySelector('input'); f.value = 'MED';"
            "f.dispatchEvent(new Event('input'))"
        )
        assert [r[0] for r in page.evaluate(rows)] == ["medium.bin"]
        page.evaluate(
            "const g = document.querySelector('input'); g.value = '';"
            "g.dispatchEvent(new Event('input'));"
            "document.querySelectorAll('th')[1].click()"
        )
        by_size = [r[0] for r in page.evaluate(rows)]
        assert by_size == ["../", "docs/", "<b>bold<i>.txt", "small.txt", "medium.bin",
                           "large.iso"]  # fmt: skip
        page.evaluate("document.querySelectorAll('th')[1].click()")  # again: descending
        assert [r[0] for r in page.evaluate(rows)][2:] == by_size[:1:-1]
        phone = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
        page.call("Emulation.setDeviceMetricsOverride", phone)
        page.call("Emulation.setEmulatedMedia",
                  {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})  # fmt: skip
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        dark = "getComputedStyle(document.body).backgroundColor"
        assert page.evaluate(dark) == "rgb(28, 28, 30)"
        shot = page.call("Page.captureScreenshot", {"format": "png"})["data"]
        (tmp_path / "listing-phone-dark.png").write_bytes(base64.b64decode(shot))
        assert base64.b64decode(shot).startswith(b"\x89PNG") and len(shot) > 5000
        deadline = time.monotonic() + 10  # the access log is flushed about once a second
        while "GET /files/ " not in srv.output() and time.monotonic() < deadline:
            time.sleep(0.1)
    log = srv.output().splitlines()
    requests = [line for line in log if '"GET ' in line and "/favicon.ico " not in line]
    assert len(requests) == 1 and '"GET /files/ HTTP/1.1" 200 ' in requests[0], requests


# A page that asks for a 20 MB image, then, once the image's first bytes are in (its size
# is known), for a stylesheet: the image is on its way when the CSS is requested.
PRIORITIES = b"""<!doctype html><html><head><title>priorities</title></head><body>
<img id=big src="/big.bmp" width=64 height=64>
<script>
(function wait() {
  if (!document.getElementById('big').naturalWidth) return setTimeout(wait, 5);
  const link = document.createElement('link');
  link.rel = 'stylesheet'; link.href = '/late.css';
  document.head.append(link);
})();
</script><p class=r1>text</p></body></html>
"""


def _bitmap(path: Path, width: int, height: int) -> None:
    """An uncompressed 24-bit BMP (black): its size is all pixels."""
    pixels = width * 3 * height
    header = b"BM" + struct.pack("<IHHI", 54 + pixels, 0, 0, 54)
    header += struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, pixels, 2835, 2835, 0, 0)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(54 + pixels)


def test_a_stylesheet_does_not_wait_behind_a_large_image(
    browser: tuple[subprocess.Popen[str], int], tmp_path: Path, scratch: Path
) -> None:
    """RFC 9218 in a real browser, over HTTP/2 on TLS: Chromium asks for the image with
    `priority: i` (urgency 3, incremental) and the stylesheet with `u=0`; the CSS, asked
    for once the image is coming, is all there while the image still comes (here 15-120
    ms after it was asked for; the image ended 80-350 ms later).

    Ending first does not prove the order by itself: a stream that fills its window is
    passed over, so with priorities ignored the CSS still ended first, only later (80-130
    ms, behind 8-9 MB more of the image). The order is proven in memory
    (tests/unit/test_http2.py); this is what a browser sees of it."""
    _, devtools = browser
    root = tmp_path / "root"
    root.mkdir()
    (root / "index.html").write_bytes(PRIORITIES)
    _bitmap(root / "big.bmp", 2560, 2730)  # 20 MiB
    rules = b"".join(b".r%d { color: #%06x; }\n" % (i, i * 997 % 0xFFFFFF) for i in range(8000))
    (root / "late.css").write_bytes(rules)  # 210 KiB: some 13 DATA frames
    _, cert, key = certs.make(tmp_path)
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--access-log", "off")
    with Server(root, *args, tmp=scratch) as srv, open_page(devtools, srv.url("/")) as page:
        both = "performance.getEntriesByType('resource').filter(e => e.responseEnd > 0).length"
        page.until(f"location.protocol === 'https:' && {both} >= 2", 30)
        entries = page.evaluate(
            "Object.fromEntries(performance.getEntriesByType('resource').map(e =>"
            " [new URL(e.name).pathname, [e.nextHopProtocol, e.requestStart, e.responseStart,"
            " e.responseEnd]]))"
        )
    image, css = entries["/big.bmp"], entries["/late.css"]
    assert image[0] == css[0] == "h2"
    assert css[1] > image[2]  # the CSS was asked for once the image was coming
    assert css[3] < image[3], entries
