"""WebSockets over HTTP/2 (RFC 8441) on every model: extended CONNECT on h2c and over
TLS (ALPN h2), with the h2-based client in h2ws (a browser's way of doing it is in
test_browser)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.conftest import MODELS
from tests.integration import rawhttp
from tests.integration.conftest import model_server
from tests.integration.h2ws import H2WebSocket, Refused
from tests.integration.wsraw import (
    ECHO_ARGS,
    MAX,
    at_once,
    closed_by_sigterm,
    echoed_on_their_streams,
    frame,
)
from tests.servers import Server


@pytest.fixture(scope="module", params=MODELS)
def echo(request: pytest.FixtureRequest, site: Path, scratch: Path) -> Iterator[Server]:
    yield from model_server(request, site, scratch, *ECHO_ARGS)


Connect = Callable[..., H2WebSocket]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Opens clients, and closes them whatever happens in the test."""
    opened: list[H2WebSocket] = []

    def open_client(port: int, **kwargs: bool) -> H2WebSocket:
        client = H2WebSocket(port, **kwargs)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.shut()


def test_messages_come_back_on_their_streams(connect: Connect, echo: Server) -> None:
    """Several WebSockets share one connection, each on its stream, messages of every
    kind and size (one larger than any flow-control window) echoed on the right one."""
    client = connect(echo.port)
    assert client.connect_protocol  # SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3)
    first, second = client.open("/echo"), client.open("/echo", deflate=True)
    echoed_on_their_streams(client, first, second)
    client.send_fragments(first, ["frag", "ment", "ed"])
    assert client.message(first) == "fragmented"
    assert rawhttp.get(echo.port, "/notes.txt").status == 200  # plain requests meanwhile
    client.close(first)
    assert client.close_code(first) == 1000
    assert first in client.ended  # the stream ends as TCP would close (RFC 8441 §5)
    client.send(second, "still open")
    assert client.message(second) == "still open"


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([frame(0x1, b"\xc3\x28")], 1007),  # invalid UTF-8 in a text message
        ([frame(0x1, b"hi", masked=False)], 1002),  # clients must mask, over h2 too
        ([frame(0x0, b"orphan")], 1002),  # a continuation with nothing to continue
    ],
    ids=["utf8", "unmasked", "continuation"],
)
def test_protocol_errors_close_the_socket_not_the_connection(
    connect: Connect, echo: Server, frames: list[bytes], code: int
) -> None:
    client = connect(echo.port)
    bad, good = client.open("/echo"), client.open("/echo")
    client.send_raw(bad, b"".join(frames))
    assert client.close_code(bad) == code
    client.send(good, "unaffected")
    assert client.message(good) == "unaffected"


def test_limits_hold_over_http2(connect: Connect, echo: Server) -> None:
    """Past --ws-max-message: 1009; a deflate bomb: 1009, not inflated."""
    client = connect(echo.port)
    plain, deflated = client.open("/echo"), client.open("/echo", deflate=True)
    client.send(plain, b"x" * (MAX + 1))
    assert client.close_code(plain) == 1009
    client.send(deflated, b"\0" * (16 * 1024 * 1024))  # a few KB on the wire
    assert client.close_code(deflated) == 1009


def test_handshake_refusals(connect: Connect, echo: Server) -> None:
    """The RFC 6455 checks apply to the extended CONNECT (RFC 8441 §5): a foreign
    Origin 403, another version 426 naming 13; a CONNECT elsewhere is no tunnel (405).
    Each refusal ends its stream only."""
    client = connect(echo.port)
    for origin, kwargs, status in [
        ("https://evil.example", {}, 403),
        (None, {"version": b"8"}, 426),
    ]:
        with pytest.raises(Refused) as refused:
            client.open("/echo", origin=origin, **kwargs)  # type: ignore[arg-type]
        assert refused.value.status == status
    assert refused.value.headers[b"sec-websocket-version"] == b"13"
    with pytest.raises(Refused) as refused:
        client.open("/notes.txt")
    assert refused.value.status == 405
    for origin in (f"http://127.0.0.1:{echo.port}", "https://allowed.example"):
        stream = client.open("/echo", origin=origin)
        client.send(stream, origin)
        assert client.message(stream) == origin


def test_not_offered_without_endpoints(connect: Connect, site: Path, scratch: Path) -> None:
    """No WebSocket endpoint: no SETTINGS_ENABLE_CONNECT_PROTOCOL, and an extended
    CONNECT sent anyway is malformed (RFC 8441 §4): its stream is reset."""
    with Server(site, tmp=scratch) as server:
        client = connect(server.port)
        assert not client.connect_protocol
        with pytest.raises(ConnectionResetError):
            client.open("/echo")


def test_many_sockets_on_many_connections(connect: Connect, echo: Server) -> None:
    def run(n: int) -> None:
        client = connect(echo.port)
        streams = [client.open("/echo") for _ in range(5)]
        for i in range(20):
            for stream in streams:
                client.send(stream, f"{n}:{stream}:{i}")
            for stream in streams:
                assert client.message(stream) == f"{n}:{stream}:{i}"

    assert at_once(run, 8, 60) == []


def test_a_client_that_does_not_read_is_held_back_by_flow_control(
    connect: Connect, site: Path, scratch: Path
) -> None:
    """It sends and never opens its receive window: the echoes wait in the server, which
    stops reopening the stream's window, so the client cannot make it buffer more; at
    --send-timeout the connection is dropped."""
    args = ("--ws-echo", "/echo", "--send-timeout", "2")
    with Server(site, *args, tmp=scratch) as server:
        client = connect(server.port)
        stream = client.open("/echo")
        client.conn.update_settings({4: 0})  # SETTINGS_INITIAL_WINDOW_SIZE 0: we read nothing
        client.send(stream, b"settle")
        sent = 0
        started = time.monotonic()
        dropped = False
        try:
            while time.monotonic() - started < 10:
                if client.conn.local_flow_control_window(stream) < 1000:
                    client.wait(lambda: client.conn.local_flow_control_window(stream) >= 1000, 3)
                client.send(stream, b"y" * 900)
                sent += 900
        except TimeoutError:  # the window stayed shut: now wait for the send timeout
            with pytest.raises(ConnectionError):
                client.wait(lambda: False, 8)
            dropped = True
        except ConnectionError:
            dropped = True
        assert dropped
        assert sent < 512 * 1024, sent  # held back within the windows, not buffered
        assert time.monotonic() - started < 9
        assert rawhttp.get(server.port, "/notes.txt").status == 200


@pytest.mark.parametrize("model", ["asyncio", "events", "threads", "single"])
def test_sigterm_closes_tunnels_with_1001(
    connect: Connect, site: Path, scratch: Path, model: str
) -> None:
    with Server(site, "--model", model, "--ws-echo", "/echo", tmp=scratch) as server:
        client = connect(server.port)
        closed_by_sigterm(client, server)
        assert server.proc.wait(10) == 0
        assert '"CONNECT /echo HTTP/2.0" 200 ' in server.output()


def test_a_silent_client_is_pinged_then_its_stream_reset(
    connect: Connect, site: Path, scratch: Path
) -> None:
    config = scratch / "ws-h2-ping.toml"
    config.write_text('[websocket]\necho = "/echo"\nping_interval_s = 0.5\n')
    with Server(site, "--config", str(config), tmp=scratch) as server:
        client = connect(server.port)
        stream = client.open("/echo")
        # The client's framing answers PINGs, but nothing is passed on to the server.
        (ping,) = client.frames(stream, 1, timeout=5)
        assert ping.opcode.name == "PING"
        started = time.monotonic()
        client.wait(lambda: stream in client.reset, 5)
        assert 0.3 < time.monotonic() - started < 3.0


def test_wss_over_http2(connect: Connect, site: Path, scratch: Path) -> None:
    (scratch / "ws-h2-pki").mkdir(exist_ok=True)
    _, cert, key = certs.make(scratch / "ws-h2-pki")
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--ws-echo", "/echo")
    with Server(site, *args, "--access-log", "-", tmp=scratch) as server:
        client = connect(server.port, tls=True)
        stream = client.open("/echo", deflate=True)
        client.send(stream, "secret")
        assert client.message(stream) == "secret"
        client.close(stream)
        assert client.close_code(stream) == 1000
        time.sleep(1.5)  # the access log is flushed about once a second
        line = next(x for x in server.output().splitlines() if '"CONNECT /echo' in x)
        assert '"CONNECT /echo HTTP/2.0" 200 ' in line
        lived = float(line.rsplit(" ", 1)[1])  # how long the socket lived, in seconds
        assert 0 <= lived < 10


def test_sockets_count_in_the_connection_limit(connect: Connect, site: Path, scratch: Path) -> None:
    """Tunnels ride their connection and count as it does, not one each: with ten open
    under --max-connections 2, a second connection is still admitted."""
    with Server(site, "--ws-echo", "/echo", "--max-connections", "2", tmp=scratch) as server:
        client = connect(server.port)
        streams = [client.open("/echo") for _ in range(10)]
        for stream in streams:
            client.send(stream, "ok")
            assert client.message(stream) == "ok"
        assert rawhttp.get(server.port, "/notes.txt").status == 200
