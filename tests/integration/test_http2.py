"""HTTP/2 over cleartext (prior knowledge, RFC 9113 §3.3) on every model, with real
clients (httpx, curl, nghttp, h2load) and a frame-level client for what they hide:
windows, resets, GOAWAY. The same requests must get the same answers as over HTTP/1.1."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import h2.errors
import h2.settings
import httpx
import pytest

from tests.conftest import INDEX, LARGE_SIZE, STYLES
from tests.h2client import H2Client, Reply
from tests.integration import rawhttp
from tests.servers import Server

# Fields that differ by protocol: HTTP/1 framing (RFC 9113 §8.2.2) and the clock.
_HOP = {"connection", "keep-alive", "date"}

CASES = [
    ("GET", "/", []),
    ("HEAD", "/", []),
    ("GET", "/styles.css", [("Accept-Encoding", "br, gzip")]),
    ("GET", "/large.bin", [("Range", "bytes=100-199,1000-1099")]),
    ("GET", "/large.bin", [("Range", "bytes=-10")]),
    ("GET", "/large.bin", [("Range", "bytes=99999999-")]),
    ("GET", "/index.html", [("If-None-Match", "*")]),
    ("GET", "/sub", []),
    ("GET", "/missing", []),
    ("GET", "/../escape.txt", []),
    ("GET", "/escape.txt", []),
    ("OPTIONS", "/", []),
    ("DELETE", "/notes.txt", []),
]


def _http1(port: int, method: str, path: str, headers: list[tuple[str, str]]) -> rawhttp.Response:
    extra = "".join(f"{n}: {v}\r\n" for n, v in headers)
    return rawhttp.get(port, path, extra, method)


@pytest.mark.parametrize(("method", "path", "headers"), CASES)
def test_same_answer_as_http1(
    server: Server, method: str, path: str, headers: list[tuple[str, str]]
) -> None:
    one = _http1(server.port, method, path, headers)
    with H2Client(server.port) as client:
        two = client.wait(client.request(path, method, headers))
    assert two.status == one.status
    assert "date" in two.headers
    assert _comparable(two.headers, bytes(two.body)) == _comparable(one.headers, one.body)


def _comparable(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    """Without per-protocol fields, and with multipart's random boundary made constant."""
    fields = {k: v for k, v in headers.items() if k not in _HOP}
    kind, _, boundary = fields.get("content-type", "").partition("; boundary=")
    if boundary:
        fields["content-type"] = kind
        body = body.replace(boundary.encode(), b"BOUNDARY")
    return fields, body


def test_httpx_prior_knowledge(server: Server) -> None:
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        for _ in range(3):
            response = client.get(server.url("/"))
            assert response.http_version == "HTTP/2"
            assert response.status_code == 200
            assert response.content == INDEX
        response = client.get(server.url("/styles.css"), headers={"Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert response.content == STYLES  # httpx decodes
        assert client.get(server.url("/missing")).status_code == 404


def test_curl_large_file_and_range(server: Server, site: Path) -> None:
    whole = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", server.url("/large.bin")],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert len(whole) == LARGE_SIZE
    assert (
        hashlib.sha256(whole).digest() == hashlib.sha256((site / "large.bin").read_bytes()).digest()
    )
    part = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-r", "1000-1999", server.url("/large.bin")],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    assert part == whole[1000:2000]


def test_concurrent_streams_share_one_connection(server: Server, site: Path) -> None:
    large = (site / "large.bin").read_bytes()
    with H2Client(server.port) as client:
        ids = {client.request("/large.bin"): large for _ in range(3)}
        ids |= {client.request(f"/notes.txt?{i}"): b"plain text\n" for i in range(30)}
        ids[client.request("/large.bin", headers=[("Range", "bytes=5-9")])] = large[5:10]
        for stream_id, expected in ids.items():
            reply = client.wait(stream_id)
            assert reply.status in (200, 206)
            assert bytes(reply.body) == expected


def test_small_windows_are_respected(server: Server, site: Path) -> None:
    """A 1000-byte stream window: every DATA frame fits it (h2's client would raise on a
    flow-control violation) and the body still arrives whole."""
    settings = {
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000,
        h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384,
    }
    with H2Client(server.port, settings=settings) as client:
        reply = client.get("/styles.css")
        assert reply.status == 200
        assert bytes(reply.body) == STYLES


def test_h2load(server: Server) -> None:
    result = subprocess.run(
        ["h2load", "-n", "2000", "-c", "4", "-m", "10", server.url("/index.html")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "2000 succeeded, 0 failed, 0 errored, 0 timeout" in result.stdout, result.stdout
    assert "status codes: 2000 2xx" in result.stdout


def test_nghttp_fetches_page_and_assets(server: Server) -> None:
    urls = [server.url(p) for p in ("/", "/style.css", "/app.js", "/missing")]
    result = subprocess.run(
        ["nghttp", "-nv", *urls], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(":status: 200") == 3
    assert result.stdout.count(":status: 404") == 1


# --- hostile and broken input -------------------------------------------------------------


def _still_serving(server: Server) -> None:
    with H2Client(server.port) as client:
        assert bytes(client.get("/notes.txt").body) == b"plain text\n"
    assert rawhttp.get(server.port, "/notes.txt").body == b"plain text\n"


def test_garbage_after_preface_gets_goaway(server: Server) -> None:
    with H2Client(server.port) as client:
        # DATA on stream 0 (RFC 9113 §6.1: a connection error of type PROTOCOL_ERROR)
        client.sock.sendall(b"\x00\x00\x04\x00\x00\x00\x00\x00\x00junk")
        client.until_closed()
        assert client.goaway is not None
        assert client.goaway.error_code != h2.errors.ErrorCodes.NO_ERROR
    _still_serving(server)


def test_rapid_reset_is_cut_off(server: Server) -> None:
    """CVE-2023-44487: streams opened and reset at once, forever. (From an address of
    its own: the server then bars it for a while.)"""
    with H2Client(server.port, source="127.0.0.11") as client:
        for _ in range(400):
            stream_id = client.conn.get_next_available_stream_id()
            client.conn.send_headers(
                stream_id,
                [
                    (b":method", b"GET"),
                    (b":scheme", b"http"),
                    (b":authority", b"t"),
                    (b":path", b"/large.bin"),
                ],
            )
            client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            client.replies[stream_id] = Reply()
        try:
            client.flush()
            client.until_closed()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        assert client.goaway is not None
        assert client.goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    _still_serving(server)


def test_streams_past_the_limit_are_refused_and_the_rest_served(server: Server) -> None:
    """RFC 9113 §5.1.2: a stream over SETTINGS_MAX_CONCURRENT_STREAMS is a stream error
    (REFUSED_STREAM, so the client may retry it); the connection goes on."""
    with H2Client(server.port) as client:
        # Sent before the server's SETTINGS are read, so h2's client does not know the
        # limit (128) and does not enforce it itself. Each request's body stays open,
        # so all of them are in progress at once.
        streams = [client.request("/notes.txt", end=False) for _ in range(129)]
        refused = client.wait(streams[-1])
        assert refused.reset == h2.errors.ErrorCodes.REFUSED_STREAM
        for stream_id in streams[:-1]:
            client.conn.end_stream(stream_id)
        client.flush()
        for stream_id in streams[:-1]:
            reply = client.wait(stream_id)
            assert reply.status == 200 and reply.reset is None
        assert client.goaway is None
    _still_serving(server)


def test_body_too_large_is_413_and_stream_reset(server: Server) -> None:
    with H2Client(server.port) as client:
        stream_id = client.request("/upload", "POST", end=False)
        chunk = b"x" * 16384
        sent = 0
        while sent <= 1024 * 1024 and client.replies[stream_id].status == 0:
            while client.conn.local_flow_control_window(stream_id) < len(chunk):
                assert client.pump(), "closed before the 413"
                if client.replies[stream_id].status:
                    break
            else:
                client.conn.send_data(stream_id, chunk)
                client.flush()
                sent += len(chunk)
        reply = client.wait(stream_id)
        assert reply.status == 413
        assert bytes(client.get("/notes.txt").body) == b"plain text\n"  # connection lives


def test_too_many_fields_is_431(server: Server) -> None:
    with H2Client(server.port) as client:
        reply = client.get("/", headers=[(f"x-f{i}", "v") for i in range(150)])
        assert reply.status == 431
        assert bytes(client.get("/notes.txt").body) == b"plain text\n"


def test_long_path_is_414(server: Server) -> None:
    with H2Client(server.port) as client:
        assert client.get("/" + "a" * 9000).status == 414


# --- timeouts, shutdown, opting out -------------------------------------------------------


def test_window_never_opened_is_cut_after_send_timeout(site: Path, scratch: Path) -> None:
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}
    with (
        Server(site, "--send-timeout", "1", "--access-log", "off", tmp=scratch) as srv,
        H2Client(srv.port, settings=settings) as client,
    ):
        stream_id = client.request("/large.bin")
        started = time.monotonic()
        client.until_closed()
        assert client.replies[stream_id].status == 200
        assert not client.replies[stream_id].body
        assert 0.9 < time.monotonic() - started < 5
        assert client.goaway is not None


def test_idle_connection_gets_goaway(site: Path, scratch: Path) -> None:
    with (
        Server(site, "--keepalive-timeout", "1", "--access-log", "off", tmp=scratch) as srv,
        H2Client(srv.port) as client,
    ):
        assert client.get("/notes.txt").status == 200
        started = time.monotonic()
        client.until_closed()
        assert 0.9 < time.monotonic() - started < 5
        assert client.goaway is not None
        assert client.goaway.error_code == h2.errors.ErrorCodes.NO_ERROR


@pytest.mark.parametrize("model", ["asyncio", "events", "threads"])
def test_sigterm_sends_goaway_and_finishes_streams(model: str, site: Path, scratch: Path) -> None:
    srv = Server(site, "--model", model, "--access-log", "off", tmp=scratch)
    try:
        command = ["curl", "-sS", "--http2-prior-knowledge", "--limit-rate", "2M"]
        with (
            H2Client(srv.port) as idle,
            subprocess.Popen([*command, srv.url("/large.bin")], stdout=subprocess.PIPE) as curl,
        ):
            assert idle.get("/notes.txt").status == 200
            assert curl.stdout is not None
            first = curl.stdout.read(1000)  # the download is under way
            srv.signal(signal.SIGTERM)
            idle.until_closed()  # GOAWAY, then closed: it had nothing in flight
            assert idle.goaway is not None
            assert idle.goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
            rest = curl.stdout.read()
            assert curl.wait(30) == 0
            assert len(first + rest) == LARGE_SIZE  # the stream in flight was finished
        assert srv.proc.wait(15) == 0
    finally:
        srv.stop()
    assert "Traceback" not in srv.output()


def test_no_h2c_refuses_the_preface(site: Path, scratch: Path) -> None:
    with Server(site, "--no-h2c", "--access-log", "off", tmp=scratch) as srv:
        response = rawhttp.exchange(srv.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert response.status == 505


@contextlib.contextmanager
def _downloading(server: Server, site: Path, received: int) -> Iterator[tuple[H2Client, int]]:
    """A client with 2 GiB windows, `received` bytes into a 64 MiB download (sparse)."""
    sparse = site / "sparse.bin"
    if not sparse.exists():
        with open(sparse, "wb") as fh:
            fh.truncate(64 << 20)
    huge = (1 << 31) - 1
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: huge}
    with H2Client(server.port, settings=settings) as client:
        client.conn.increment_flow_control_window(huge - 65535)
        download = client.request("/sparse.bin")
        while len(client.replies[download].body) < received:
            assert client.pump()
        yield client, download


def test_cancel_and_ping_are_seen_during_a_download(server: Server, site: Path) -> None:
    """Engines read between batches of a multiplexed connection: after RST_STREAM, only
    what was already in flight (socket buffers, which loopback grows to several MiB, and
    a batch) of the cancelled download arrives before the PING ack and the next
    response — not the rest of the 64 MiB file."""
    with _downloading(server, site, 200_000) as (client, download):
        client.conn.reset_stream(download, h2.errors.ErrorCodes.CANCEL)
        client.conn.ping(b"lanthorn")
        before = client.received  # raw bytes: h2 drops DATA of a reset stream unseen
        reply = client.wait(client.request("/notes.txt"))
        assert bytes(reply.body) == b"plain text\n"
        assert not client.replies[download].ended
        assert client.received - before < 24 << 20  # of the 64 MiB


def test_much_input_during_a_download_does_not_stop_reading(server: Server, site: Path) -> None:
    """1 MiB of (ignorable, RFC 9113 §5.5) frames while a download runs: the
    engine pauses reading to bound what it holds, and must resume between batches."""
    unknown = b"\x00\x40\x00\x99\x00\x00\x00\x00\x00" + b"\x00" * 16384  # type 0x99
    with _downloading(server, site, 100_000) as (client, download):
        client.sock.sendall(unknown * 64)
        # More urgent than the download (RFC 9218 §4.1), as a browser marks a stylesheet:
        # served between its batches, not after it.
        reply = client.wait(client.request("/notes.txt", headers=[("priority", "u=2")]))
        assert bytes(reply.body) == b"plain text\n"
        assert not client.replies[download].ended  # answered during the download
