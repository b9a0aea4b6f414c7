"""HTTP semantics with real clients on every model: conditional requests, ranges,
multipart, codings, resumable downloads (RFC 9110 §8, §12-§14)."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import brotli
import httpx
import requests

from tests.conftest import LARGE_SIZE, STYLES
from tests.integration import rawhttp
from tests.servers import Server


def test_conditional_get_with_requests(server: Server) -> None:
    first = requests.get(server.url("/notes.txt"), timeout=10)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = requests.get(server.url("/notes.txt"), headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    since = requests.get(
        server.url("/notes.txt"), headers={"If-Modified-Since": modified}, timeout=10
    )
    assert since.status_code == 304
    changed = requests.get(server.url("/notes.txt"), headers={"If-Match": '"other"'}, timeout=10)
    assert changed.status_code == 412


def test_curl_time_condition(server: Server, site: Path) -> None:
    """`curl -z FILE` sends If-Modified-Since from the file's mtime."""
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-z", str(site / "notes.txt"),
         "--max-time", "10", server.url("/notes.txt")],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    assert out.stdout == "304"


def test_curl_ranges(server: Server, site: Path) -> None:
    data = (site / "large.bin").read_bytes()
    single = subprocess.run(
        ["curl", "-s", "-r", "1000-1999", "--max-time", "10", server.url("/large.bin")],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert single == data[1000:2000]
    suffix = subprocess.run(
        ["curl", "-s", "-r", "-100", "--max-time", "10", server.url("/large.bin")],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert suffix == data[-100:]


def test_multipart_byteranges_over_the_wire(server: Server, site: Path) -> None:
    """Multiple ranges of a large file: several file slices in one response."""
    data = (site / "large.bin").read_bytes()
    r = rawhttp.get(server.port, "/large.bin", extra="Range: bytes=0-99,1000000-1000099,-50\r\n")
    assert r.status == 206
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + r.headers["content-type"].encode() + b"\r\n\r\n" + r.body
    )
    payloads = [p.get_payload(decode=True) for p in message.iter_parts()]
    assert payloads == [data[:100], data[1000000:1000100], data[-50:]]


def test_416_and_ignored_units(server: Server) -> None:
    r = rawhttp.get(server.port, "/notes.txt", extra="Range: bytes=500-\r\n")
    assert r.status == 416 and r.headers["content-range"] == "bytes */11"
    r = rawhttp.get(server.port, "/notes.txt", extra="Range: items=0-1\r\n")
    assert r.status == 200 and r.body == b"plain text\n"


def test_resumable_download(server: Server, site: Path) -> None:
    """Interrupt a download, resume with Range + If-Range, reassemble the exact file."""
    expected = hashlib.sha256((site / "large.bin").read_bytes()).hexdigest()
    got = bytearray()
    with requests.get(server.url("/large.bin"), stream=True, timeout=10) as r:
        validator = r.headers["ETag"]
        for chunk in r.iter_content(65536):
            got += chunk
            if len(got) > LARGE_SIZE // 3:
                break  # the connection drops
    with requests.get(
        server.url("/large.bin"),
        headers={"Range": f"bytes={len(got)}-", "If-Range": validator},
        timeout=30,
    ) as rest:
        assert rest.status_code == 206
        assert rest.headers["Content-Range"] == f"bytes {len(got)}-{LARGE_SIZE - 1}/{LARGE_SIZE}"
        got += rest.content
    assert hashlib.sha256(got).hexdigest() == expected
    # a changed validator means the whole file again (§13.1.5)
    with requests.get(
        server.url("/large.bin"), headers={"Range": "bytes=10-", "If-Range": '"stale"'},
        timeout=30,
    ) as whole:  # fmt: skip
        assert whole.status_code == 200 and len(whole.content) == LARGE_SIZE


def test_precompressed_with_curl_and_httpx(server: Server) -> None:
    out = subprocess.run(
        ["curl", "-s", "--compressed", "-D", "-", "--max-time", "10", server.url("/styles.css")],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    head, _, payload = out.partition(b"\r\n\r\n")
    assert (
        b"\r\ncontent-encoding: br" in head.lower() or b"\r\ncontent-encoding: gzip" in head.lower()
    )
    assert payload == STYLES  # curl decoded it
    with httpx.Client(timeout=10) as client:
        r = client.get(server.url("/styles.css"), headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip" and r.content == STYLES
        assert r.headers["vary"] == "Accept-Encoding"
    raw = rawhttp.get(server.port, "/styles.css", extra="Accept-Encoding: br\r\n")
    assert brotli.decompress(raw.body) == STYLES
    plain = rawhttp.get(server.port, "/styles.css")
    assert "content-encoding" not in plain.headers and plain.body == STYLES
    gz = rawhttp.get(server.port, "/styles.css", extra="Accept-Encoding: gzip\r\n")
    assert gzip.decompress(gz.body) == STYLES and gz.headers["etag"] != plain.headers["etag"]


def test_default_headers(server: Server) -> None:
    r = rawhttp.get(server.port, "/")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["accept-ranges"] == "bytes"
