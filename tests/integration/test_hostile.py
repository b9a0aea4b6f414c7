"""Hostile and broken input: each gets a precise status or a closed connection, and the
server keeps serving everyone else (DESIGN §5.5)."""

from __future__ import annotations

import socket
import time

import pytest

from tests.integration import rawhttp
from tests.servers import Server


def _still_serving(server: Server) -> None:
    assert rawhttp.get(server.port, "/notes.txt").body == b"plain text\n"


def _answer(server: Server, data: bytes) -> tuple[rawhttp.Response, bool]:
    """Send `data`, read one response, report whether the server then closed."""
    with rawhttp.connect(server.port) as sock:
        sock.sendall(data)
        buffer = bytearray()
        response = rawhttp.read_response(sock, buffer)
        closed = not buffer and rawhttp.read_until_closed(sock) == b""
    return response, closed


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # RFC 9112 §3.2: Host is required
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"GET noslash HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 3\r\n\r\n0\r\n\r\n",
            400,
        ),  # RFC 9112 §6.1: smuggling shape
        (b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", 400),  # a broken HTTP/2 preface
        (b"GET / HTTP/0.9\r\n\r\n", 505),
    ],
)
def test_malformed_gets_precise_status(server: Server, data: bytes, status: int) -> None:
    response, closed = _answer(server, data)
    assert response.status == status
    assert response.headers["connection"] == "close"
    assert closed
    _still_serving(server)


@pytest.mark.parametrize("target", [b"/a%zz", b"/%", b"ftp://host/x"])
def test_bad_target_400_framing_intact(server: Server, target: bytes) -> None:
    """The request was framed correctly, so the connection stays usable."""
    with rawhttp.connect(server.port) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        buffer = bytearray()
        assert rawhttp.read_response(sock, buffer).status == 400
        sock.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        assert rawhttp.read_response(sock, buffer).body == b"plain text\n"


def test_uri_too_long_414(server: Server) -> None:
    response, closed = _answer(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert response.status == 414 and closed
    _still_serving(server)


def test_header_block_too_large_431(server: Server) -> None:
    big = b"X-Big: " + b"v" * 20000 + b"\r\n"
    response, closed = _answer(server, b"GET / HTTP/1.1\r\nHost: t\r\n" + big + b"\r\n")
    assert response.status == 431 and closed
    _still_serving(server)


def test_header_block_trickled_431(server: Server) -> None:
    """A single header value that never ends is bounded too (it is buffered inside the
    parser, out of sight of the field callbacks)."""
    with rawhttp.connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Long: ")
        buffer = bytearray()
        try:
            for _ in range(64):
                sock.sendall(b"v" * 4096)
        except OSError:
            pass  # the server may already have answered and closed
        response = rawhttp.read_response(sock, buffer)
    assert response.status == 431
    _still_serving(server)


def test_too_many_headers_431(server: Server) -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(150))
    response, _ = _answer(server, b"GET / HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n")
    assert response.status == 431
    _still_serving(server)


def test_small_body_on_get_is_drained_in_sync(server: Server) -> None:
    """RFC 9112 §6.3: the body is framed by Content-Length; the next request follows."""
    data = (
        b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789"
        b"GET /style.css HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
        b"GET /text..txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    with rawhttp.connect(server.port) as sock:
        sock.sendall(data)
        buffer = bytearray()
        bodies = [rawhttp.read_response(sock, buffer).body for _ in range(3)]
    assert bodies == [b"plain text\n", b"body{color:red}\n", b"dots inside\n"]


def test_huge_body_refused_413(server: Server) -> None:
    head = b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000000\r\n\r\n"
    response, closed = _answer(server, head)
    assert response.status == 413 and closed
    with rawhttp.connect(server.port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        buffer = bytearray()
        try:
            for _ in range(40):
                sock.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
        except OSError:
            pass
        assert rawhttp.read_response(sock, buffer).status == 413
    _still_serving(server)


def test_empty_lines_and_partial_requests_cost_nothing(server: Server) -> None:
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a request.
    r, _ = _answer(
        server, b"\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert r.status == 200
    for data in (b"", b"\r\n", b"GET /notes.txt HTT", b"GET / HTTP/1.1\r\nHost: t\r\n"):
        with rawhttp.connect(server.port) as sock:
            sock.sendall(data)
    _still_serving(server)


def test_disconnect_mid_response(server: Server) -> None:
    for _ in range(5):
        with rawhttp.connect(server.port) as sock:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            sock.sendall(b"GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\n" * 3)
            sock.recv(1000)
    _still_serving(server)


def test_other_clients_served_while_one_stalls(server: Server) -> None:
    """A half-sent request must not block anyone else for long. (On `single` the stalled
    client holds the only thread until it completes or times out: that is the model.)"""
    if "single" in server.args:
        with rawhttp.connect(server.port) as stalled:
            stalled.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            assert rawhttp.read_response(stalled, bytearray()).status == 200
            stalled.sendall(b"GET /notes.txt HTTP/1.1\r\nHo")  # a turn stalls mid-head
            with rawhttp.connect(server.port) as other:
                other.settimeout(20)  # served once the stall hits the header timeout
                other.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                assert rawhttp.read_response(other, bytearray()).status == 200
        return
    with rawhttp.connect(server.port) as stalled:
        stalled.sendall(b"GET /notes.txt HTTP/1.1\r\nHo")
        start = time.monotonic()
        _still_serving(server)
        assert time.monotonic() - start < 5
