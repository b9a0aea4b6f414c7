"""A real browser (headless Chromium) loads the demo site: over HTTPS it negotiates
HTTP/2 by ALPN, over cleartext it speaks HTTP/1.1; the page, its stylesheet, script and
image all arrive, and the script runs."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests import certs
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
