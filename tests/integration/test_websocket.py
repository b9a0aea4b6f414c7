"""WebSockets (RFC 6455) over HTTP/1.1 on every model, with the `websockets` library's
client as users have it, and raw frames where a real client would refuse to misbehave."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests import certs
from tests.conftest import MODELS
from tests.integration import rawhttp
from tests.integration.conftest import lanthorn, model_server
from tests.integration.wsraw import ECHO_ARGS, MAX, THREADS, at_once, frame
from tests.servers import Server


@pytest.fixture(scope="module", params=MODELS)
def echo(request: pytest.FixtureRequest, site: Path, scratch: Path) -> Iterator[Server]:
    yield from model_server(request, site, scratch, *ECHO_ARGS)


def _ws(server: Server, compression: str | None = "deflate") -> ClientConnection:
    return connect(f"ws://127.0.0.1:{server.port}/echo", open_timeout=10, compression=compression)


def test_messages_come_back_as_sent(echo: Server) -> None:
    with _ws(echo) as ws:
        for message in ("hello", "ünïcödé ✓", b"\x00\xffbinary", "x" * (MAX - 1), b""):
            ws.send(message)
            assert ws.recv(timeout=10) == message
        ws.send(["frag", "ment", "ed"])  # one text message in three frames
        assert ws.recv(timeout=10) == "fragmented"
        ws.ping(b"are you there").wait(10)  # answered with a PONG


def test_compressed_when_offered_and_uncompressed_when_not(echo: Server) -> None:
    with _ws(echo) as ws:
        assert ws.response is not None
        assert "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
        ws.send("a" * 10_000)
        assert ws.recv(timeout=10) == "a" * 10_000
    with _ws(echo, compression=None) as ws:
        assert ws.response is not None
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        ws.send("plain")
        assert ws.recv(timeout=10) == "plain"


def test_a_message_past_the_limit_is_closed_with_1009(echo: Server) -> None:
    with _ws(echo, compression=None) as ws:
        ws.send(b"x" * (MAX + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_a_deflate_bomb_is_closed_with_1009_not_inflated(echo: Server) -> None:
    """A few KB on the wire that inflate to 16 MB: refused once past the limit."""
    with _ws(echo) as ws:
        ws.send(b"\0" * (16 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


# --- raw frames: what a well-behaved client never sends ---------------------------------------


def _handshake(port: int, origin: str | None = None, version: str = "13") -> socket.socket:
    sock = rawhttp.connect(port)
    key = base64.b64encode(os.urandom(16)).decode()
    head = (
        f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: {version}\r\n"
    )
    if origin is not None:
        head += f"Origin: {origin}\r\n"
    sock.sendall(head.encode() + b"\r\n")
    return sock


def _status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    return int(head.split(b" ", 2)[1])


def _close_code(sock: socket.socket) -> int:
    """The code of the server's CLOSE frame (after any other frames), then EOF."""
    data = b""
    sock.settimeout(10)
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    while data:
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        if opcode == 0x8:
            return int(struct.unpack("!H", data[2:4])[0])
        data = data[2 + length :]
    raise AssertionError("no CLOSE frame")


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([frame(0x1, b"\xc3\x28")], 1007),  # invalid UTF-8 in a text message
        ([frame(0x1, b"\xe2\x82", fin=False), frame(0x0, b"\x28")], 1007),  # across frames
        ([frame(0x1, b"hi", masked=False)], 1002),  # clients must mask (RFC 6455 §5.1)
        ([frame(0x0, b"orphan")], 1002),  # a continuation with nothing to continue
        ([frame(0x3, b"?")], 1002),  # a reserved opcode
    ],
    ids=["utf8", "utf8-split", "unmasked", "continuation", "opcode"],
)
def test_protocol_errors_get_their_close_codes(
    echo: Server, frames: list[bytes], code: int
) -> None:
    with _handshake(echo.port) as sock:
        assert _status(sock) == 101
        sock.sendall(b"".join(frames))
        assert _close_code(sock) == code


def test_origins_other_than_the_host_and_the_allowed_are_refused(echo: Server) -> None:
    for origin, status in [
        (f"http://127.0.0.1:{echo.port}", 101),  # the page the server itself serves
        ("https://allowed.example", 101),  # --ws-origin
        ("https://evil.example", 403),
    ]:
        with _handshake(echo.port, origin) as sock:
            assert _status(sock) == status, origin


def test_an_unknown_version_is_426_and_other_paths_are_plain_requests(echo: Server) -> None:
    with _handshake(echo.port, version="8") as sock:
        assert _status(sock) == 426
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(f"ws://127.0.0.1:{echo.port}/notes.txt", open_timeout=10),
    ):
        pass
    assert refused.value.response.status_code == 200  # answered as a GET, then closed


def test_idle_sockets_hold_no_thread(echo: Server) -> None:
    """Three times as many open WebSockets as threads, all idle: others are served, and
    every socket still echoes."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(_ws(echo)) for _ in range(3 * THREADS)]
        started = time.monotonic()
        assert rawhttp.get(echo.port, "/notes.txt").status == 200
        assert time.monotonic() - started < 1.0
        for i, ws in enumerate(sockets):
            ws.send(f"#{i}")
            assert ws.recv(timeout=10) == f"#{i}"


def test_many_clients_at_once(echo: Server) -> None:
    def client(n: int) -> None:
        with _ws(echo) as ws:
            for i in range(50):
                ws.send(f"{n}:{i}")
                assert ws.recv(timeout=10) == f"{n}:{i}"

    assert at_once(client, 20, 30) == []


# --- lifecycle ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["asyncio", "events", "threads", "single"])
def test_sigterm_closes_sockets_with_1001(site: Path, scratch: Path, model: str) -> None:
    with Server(site, "--model", model, "--ws-echo", "/echo", tmp=scratch) as server:
        with _ws(server) as ws:
            ws.send("before")
            assert ws.recv(timeout=10) == "before"
            server.signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert server.proc.wait(10) == 0
        assert '"GET /echo HTTP/1.1" 101 ' in server.output()


@pytest.mark.parametrize("model", ["asyncio", "threads"])
def test_a_silent_client_is_pinged_then_dropped(site: Path, scratch: Path, model: str) -> None:
    config = scratch / f"ws-ping-{model}.toml"
    config.write_text('[websocket]\necho = "/echo"\nping_interval_s = 0.5\n')
    with Server(site, "--model", model, "--config", str(config), tmp=scratch) as server:
        with _handshake(server.port) as sock:  # a client that never answers a PING
            assert _status(sock) == 101
            started = time.monotonic()
            data = b""
            sock.settimeout(10)
            while chunk := sock.recv(4096):
                data += chunk
            assert data[:1] == b"\x89"  # a PING came first
            assert 0.9 < time.monotonic() - started < 3.0  # then, silence: closed
        with _ws(server) as ws:  # the library's client answers PINGs: kept
            time.sleep(1.5)
            ws.send("still here")
            assert ws.recv(timeout=10) == "still here"


def test_wss_over_tls(site: Path, scratch: Path) -> None:
    (scratch / "ws-pki").mkdir(exist_ok=True)
    ca, cert, key = certs.make(scratch / "ws-pki")
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--ws-echo", "/echo")
    with Server(site, *args, tmp=scratch) as server:
        context = ssl.create_default_context(cafile=str(ca))
        with connect(f"wss://127.0.0.1:{server.port}/echo", ssl=context) as ws:
            ws.send("secret")
            assert ws.recv(timeout=10) == "secret"


# --- `lanthorn ws` ------------------------------------------------------------------------


def test_the_ws_client_prints_replies_and_round_trips(site: Path, scratch: Path) -> None:
    with Server(site, "--ws-echo", "/echo", "--ws-max-message", "1k", tmp=scratch) as server:
        url = f"ws://127.0.0.1:{server.port}/echo"
        hello = lanthorn("ws", url, "hello", "--repeat", "3")
        assert hello.returncode == 0, hello.stderr
        assert hello.stdout == b"hello\n" and b"3 replies, rtt min/median/max" in hello.stderr
        piped = lanthorn("ws", url, stdin=b"\xff\x00 binary")
        assert piped.returncode == 0 and piped.stdout == b"\xff\x00 binary\n"
        too_big = lanthorn("ws", url, "x" * 2000)
        assert too_big.returncode == 1 and b"closed by the server: 1009" in too_big.stderr
        elsewhere = lanthorn("ws", f"ws://127.0.0.1:{server.port}/nothing", "hi")
        assert elsewhere.returncode == 1 and b"answered HTTP 404" in elsewhere.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = lanthorn("ws", f"ws://127.0.0.1:{s.getsockname()[1]}/", "hi")
    assert refused.returncode == 1 and b"connection refused by 127.0.0.1:" in refused.stderr
    bad = lanthorn("ws", "http://nope", "hi")
    assert bad.returncode == 2 and b"bad URL" in bad.stderr
    for result in (hello, piped, too_big, elsewhere, refused, bad):
        assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("model", ["asyncio", "events", "threads", "single"])
def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(
    site: Path, scratch: Path, model: str
) -> None:
    """It keeps sending 60 KB messages and reads none of the echoes: once the socket
    buffers are full the server's batch stalls; others are still served, and at
    --send-timeout the stalled socket is dropped."""
    args = ("--model", model, "--ws-echo", "/echo", "--send-timeout", "1", "--threads", "2")
    with Server(site, *args, tmp=scratch) as server, _handshake(server.port) as sock:
        assert _status(sock) == 101
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(0.2)
        message = frame(0x2, b"x" * 100)  # small frames, many: the echoes pile up
        started = time.monotonic()
        dropped = None
        while time.monotonic() - started < 10:
            try:
                sock.sendall(message * 600)
            except TimeoutError:
                pass  # our sending side is full too: the server stopped reading us
            except OSError:
                dropped = time.monotonic() - started
                break
            assert rawhttp.get(server.port, "/notes.txt").status == 200  # others served
        assert dropped is not None, "never dropped"
        assert 1.0 <= dropped < 8  # not before the send timeout
