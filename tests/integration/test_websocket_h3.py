"""WebSockets over HTTP/3 (RFC 9220): an extended CONNECT on a QUIC request stream, with
the aioquic-based client in h3ws; the same sessions and checks as over HTTP/2."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.integration.h2ws import Refused
from tests.integration.h3ws import H3WebSocket
from tests.integration.wsraw import (
    ECHO_ARGS,
    MAX,
    closed_by_sigterm,
    echoed_on_their_streams,
    frame,
)
from tests.servers import Server


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ...]:
    _, cert, key = certs.make(tmp_path_factory.mktemp("ws-h3-pki"))
    return ("--tls-cert", str(cert), "--tls-key", str(key))


@pytest.fixture(scope="module", params=["asyncio", "events"])
def echo(
    request: pytest.FixtureRequest, site: Path, scratch: Path, tls: tuple[str, ...]
) -> Iterator[Server]:
    args = (*tls, *ECHO_ARGS, "--access-log", "-", "--model", request.param)
    with Server(site, *args, tmp=scratch) as server:
        yield server
    assert "Traceback" not in server.output()


@pytest.fixture
def client(echo: Server) -> Iterator[H3WebSocket]:
    opened = H3WebSocket(echo.port)
    yield opened
    opened.shut()


def test_messages_come_back_on_their_streams(client: H3WebSocket, echo: Server) -> None:
    assert client.connect_protocol  # SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220 §3)
    first, second = client.open("/echo"), client.open("/echo", deflate=True)
    echoed_on_their_streams(client, first, second)
    assert client.client.get("/notes.txt").status == 200  # plain requests meanwhile
    client.close(first)
    assert client.close_code(first) == 1000
    client.send(second, "still open")
    assert client.message(second) == "still open"
    deadline = time.monotonic() + 10  # the access log is flushed about once a second
    while '"CONNECT /echo HTTP/3.0" 200 ' not in echo.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert '"CONNECT /echo HTTP/3.0" 200 ' in echo.output()


@pytest.mark.parametrize(
    ("raw", "code"),
    [(frame(0x1, b"\xc3\x28"), 1007), (frame(0x1, b"hi", masked=False), 1002)],
    ids=["utf8", "unmasked"],
)
def test_protocol_errors_close_the_socket_not_the_connection(
    client: H3WebSocket, raw: bytes, code: int
) -> None:
    bad, good = client.open("/echo"), client.open("/echo")
    client.client.send_data(bad, raw)
    assert client.close_code(bad) == code
    client.send(good, "unaffected")
    assert client.message(good) == "unaffected"


def test_limits_and_refusals(client: H3WebSocket, echo: Server) -> None:
    """1009 past --ws-max-message and for a deflate bomb; 403 for a foreign Origin, 426
    for another version, 405 for a CONNECT to a file."""
    plain, deflated = client.open("/echo"), client.open("/echo", deflate=True)
    client.send(plain, b"x" * (MAX + 1))
    assert client.close_code(plain) == 1009
    client.send(deflated, b"\0" * (16 * 1024 * 1024))  # a few KB on the wire
    assert client.close_code(deflated) == 1009
    for path, kwargs, status in [
        ("/echo", {"origin": "https://evil.example"}, 403),
        ("/echo", {"version": b"8"}, 426),
        ("/notes.txt", {}, 405),
    ]:
        with pytest.raises(Refused) as refused:
            client.open(path, **kwargs)  # type: ignore[arg-type]
        assert refused.value.status == status
    stream = client.open("/echo", origin=f"https://127.0.0.1:{echo.port}")
    client.send(stream, "same origin")
    assert client.message(stream) == "same origin"


def test_not_offered_without_endpoints(site: Path, scratch: Path, tls: tuple[str, ...]) -> None:
    """No endpoint: no SETTINGS_ENABLE_CONNECT_PROTOCOL, and an extended CONNECT sent
    anyway is malformed: its stream is reset (H3_MESSAGE_ERROR)."""
    with Server(site, *tls, tmp=scratch) as server:
        client = H3WebSocket(server.port)
        try:
            assert not client.connect_protocol
            with pytest.raises(ConnectionResetError):
                client.open("/echo")
            assert client.client.get("/notes.txt").status == 200
        finally:
            client.shut()


def test_a_client_far_ahead_of_its_reading_is_cut_off(
    site: Path, scratch: Path, tls: tuple[str, ...]
) -> None:
    """QUIC's stream credit grows as data arrives (qh3's), so a tunnel cannot hold its
    client back as over HTTP/2: one that sends a megabyte more than it has read back
    loses the connection (H3_EXCESSIVE_LOAD) instead of being buffered for."""
    with Server(site, *tls, *ECHO_ARGS, tmp=scratch) as server:
        client = H3WebSocket(server.port)
        try:
            stream = client.open("/echo")
            # The client's credit for the echoes stays what it was (aioquic's 1 MiB).
            client.client.quic._write_stream_limits = lambda **_: None  # type: ignore[method-assign]
            sent = 0
            while sent < 4 << 20 and client.client.terminated is None:
                client.send(stream, b"y" * 60000)
                sent += 60000
            deadline = time.monotonic() + 10
            while client.client.terminated is None and time.monotonic() < deadline:
                client.client.step()
            assert client.client.terminated is not None
            assert client.client.terminated.error_code == 0x107  # H3_EXCESSIVE_LOAD
        finally:
            client.shut()
        other = H3WebSocket(server.port)  # the server goes on
        try:
            assert other.client.get("/notes.txt").status == 200
        finally:
            other.shut()


def test_sigterm_closes_sockets_with_1001(site: Path, scratch: Path, tls: tuple[str, ...]) -> None:
    with Server(site, *tls, *ECHO_ARGS, tmp=scratch) as server:
        client = H3WebSocket(server.port)
        closed_by_sigterm(client, server)
        for _ in range(10):
            client.client.step()
        client.shut()
        assert server.proc.wait(10) == 0
