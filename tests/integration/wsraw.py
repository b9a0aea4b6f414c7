"""What the WebSocket tests share: the echo servers' options, and client frames made
by hand (RFC 6455 §5.2) for what a well-behaved client never sends."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

MAX = 64 * 1024  # --ws-max-message for the echo servers
THREADS = 4
# An echo endpoint, a small message limit, and one more origin allowed.
ECHO_ARGS = (
    *("--ws-echo", "/echo", "--ws-max-message", str(MAX), "--threads", str(THREADS)),
    *("--ws-origin", "https://allowed.example"),
)


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
