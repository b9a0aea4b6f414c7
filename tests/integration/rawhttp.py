"""A raw-socket HTTP/1.1 client for tests that need to see (or send) exact bytes."""

from __future__ import annotations

import socket
from typing import NamedTuple

TIMEOUT_S = 10.0


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # lowercase names
    body: bytes
    raw_head: bytes


def connect(port: int, host: str = "127.0.0.1", source: str = "") -> socket.socket:
    """`source`: the client's own address (any of 127.0.0.0/8 on loopback)."""
    return socket.create_connection((host, port), timeout=TIMEOUT_S, source_address=(source, 0))


def read_response(sock: socket.socket, buffer: bytearray, head_only: bool = False) -> Response:
    """Read one response from `sock`; extra bytes stay in `buffer` for the next one."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full head: {bytes(buffer)!r}")
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    raw_head = bytes(buffer[:end])
    del buffer[:end]
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = 0 if head_only or status in (204, 304) else int(headers.get("content-length", 0))
    while len(buffer) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return Response(status, headers, body, raw_head)


def exchange(port: int, data: bytes, head_only: bool = False) -> Response:
    """Send `data` on a fresh connection and read one response."""
    with connect(port) as sock:
        sock.sendall(data)
        return read_response(sock, bytearray(), head_only)


def get(port: int, target: str, extra: str = "", method: str = "GET") -> Response:
    request = f"{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n"
    return exchange(port, request.encode("latin-1"), head_only=method == "HEAD")


def read_until_closed(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)
