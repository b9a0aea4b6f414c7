"""What the WebSocket tests share: the echo servers' options, the messages every echo
test sends, and client frames made by hand (RFC 6455 §5.2) for what a well-behaved
client never sends."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Protocol

from tests.servers import Server

MAX = 64 * 1024  # --ws-max-message for the echo servers
THREADS = 4
# An echo endpoint, a small message limit, and one more origin allowed.
ECHO_ARGS = (
    *("--ws-echo", "/echo", "--ws-max-message", str(MAX), "--threads", str(THREADS)),
    *("--ws-origin", "https://allowed.example"),
)


# Every kind and size: text, non-ASCII, binary, one larger than any flow-control
# window (under the limit), empty.
MESSAGES: tuple[str | bytes, ...] = ("hello", "ünïcödé ✓", b"\x00\xffbinary", "x" * (MAX - 1), b"")


class Multiplexed(Protocol):
    """A client with WebSockets on the streams of one connection (h2ws, h3ws)."""

    def open(self, path: str) -> int: ...
    def send(self, stream_id: int, message: str | bytes) -> None: ...
    def message(self, stream_id: int) -> str | bytes: ...
    def close_code(self, stream_id: int) -> int | None: ...
    def pass_on(self, stream_id: int) -> None: ...


def echoed_on_their_streams(client: Multiplexed, first: int, second: int) -> None:
    """Each of MESSAGES, sent on both sockets, comes back on each."""
    for message in MESSAGES:
        client.send(first, message)
        client.send(second, message)
        assert client.message(first) == message
        assert client.message(second) == message


def closed_by_sigterm(client: Multiplexed, server: Server) -> None:
    """A socket open when the server is told to stop gets 1001 (going away); the
    client's framing answers the CLOSE, and the server ends within its grace."""
    stream = client.open("/echo")
    client.send(stream, "before")
    assert client.message(stream) == "before"
    server.signal(signal.SIGTERM)
    assert client.close_code(stream) == 1001
    client.pass_on(stream)  # the framing's answer to the CLOSE: the server ends


def frame(opcode: int, payload: bytes, masked: bool = True, fin: bool = True) -> bytes:
    """A client frame with a payload under 126 bytes."""
    first = (0x80 if fin else 0) | opcode
    assert len(payload) < 126
    if not masked:
        return bytes([first, len(payload)]) + payload
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([first, 0x80 | len(payload)]) + mask + body


def at_once(client: Callable[[int], None], count: int, timeout_s: float) -> list[BaseException]:
    """Run `client(n)` for n in range(count) on threads at once; what each raised."""
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            client(n)
        except BaseException as exc:  # reported to the caller, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
    return failures
