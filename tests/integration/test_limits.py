"""Timeouts and connection caps, on every model, with short limits."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MODELS
from tests.integration import rawhttp
from tests.servers import Server


@pytest.fixture(scope="module", params=MODELS)
def quick(request: pytest.FixtureRequest, site: Path, scratch: Path) -> Iterator[Server]:
    """A server with one-second timeouts."""
    model, workers = request.param
    with Server(
        site,
        *("--model", model, "--workers", str(workers), "--access-log", "off"),
        *("--header-timeout", "1", "--keepalive-timeout", "1", "--send-timeout", "2"),
        tmp=scratch,
    ) as srv:
        yield srv
    assert "Traceback" not in srv.output(), srv.output()


def test_slowloris_gets_408_and_close(quick: Server) -> None:
    """A head that trickles in is cut at the header timeout, counted from its start."""
    with rawhttp.connect(quick.port) as sock:
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        buffer = bytearray()
        for _ in range(6):  # keep trickling: must not extend the deadline
            time.sleep(0.25)
            try:
                sock.sendall(b"X-a: b\r\n")
            except OSError:
                break
        response = rawhttp.read_response(sock, buffer)
        elapsed = time.monotonic() - start
        assert response.status == 408
        assert response.headers["connection"] == "close"
        assert rawhttp.read_until_closed(sock) == b""
    assert 0.9 <= elapsed < 4


def test_idle_keep_alive_closed(quick: Server) -> None:
    with rawhttp.connect(quick.port) as sock:
        sock.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        assert rawhttp.read_response(sock, bytearray()).status == 200
        start = time.monotonic()
        assert rawhttp.read_until_closed(sock) == b""  # closed without a response
        assert time.monotonic() - start < 4


def test_silent_connection_closed_without_response(quick: Server) -> None:
    with rawhttp.connect(quick.port) as sock:
        assert rawhttp.read_until_closed(sock) == b""


def test_client_that_never_reads_is_dropped(quick: Server) -> None:
    """A client pipelining large downloads without reading holds bounded memory and is
    dropped after the send timeout (2 s here); others are still served meanwhile."""
    with rawhttp.connect(quick.port) as sock:
        sock.sendall(b"GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\n" * 20)
        if "single" not in quick.args:
            assert rawhttp.get(quick.port, "/notes.txt").status == 200
        time.sleep(4)  # the behaviour under test: a client that does not read
        total = 0
        try:
            while chunk := sock.recv(1 << 20):
                total += len(chunk)
        except ConnectionResetError:
            pass
        assert total < 20 * 3 * 1024 * 1024  # cut long before the end
    assert rawhttp.get(quick.port, "/notes.txt").status == 200


def test_slow_reader_is_not_cut(quick: Server) -> None:
    """The send timeout counts from the last progress: a client that reads slowly but
    steadily gets the whole body even though it takes longer than the timeout."""
    with rawhttp.connect(quick.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /large.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        total = 0
        start = time.monotonic()
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
            if time.monotonic() - start < 3:
                time.sleep(0.05)
        assert total > 3 * 1024 * 1024


@pytest.mark.parametrize("model", ["asyncio", "events", "threads"])
def test_connection_cap_stops_accepting(model: str, site: Path, scratch: Path) -> None:
    """At --max-connections the worker stops accepting; the kernel queues the rest, which
    are served as soon as a place frees."""
    with Server(
        site,
        *("--model", model, "--access-log", "off", "--max-connections", "2"),
        tmp=scratch,
    ) as srv:
        held = [rawhttp.connect(srv.port) for _ in range(2)]
        for sock in held:
            sock.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            assert rawhttp.read_response(sock, bytearray()).status == 200
        waiting = rawhttp.connect(srv.port)  # completes in the kernel's backlog
        waiting.settimeout(1.0)
        waiting.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        with pytest.raises(TimeoutError):
            waiting.recv(1)  # not accepted, so not answered
        held[0].close()
        waiting.settimeout(10)
        assert rawhttp.read_response(waiting, bytearray()).status == 200
        waiting.close()
        held[1].close()
        assert "Traceback" not in srv.output()
