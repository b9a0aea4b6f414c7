"""What every engine does the same way, written once: how a closed connection lingers
(`Linger`), backing off when accept() runs out of descriptors (`AcceptBackoff`), when a
connection's deadline means abort rather than `expired` (`overdue`), and sending a file
slice (`send_file`). When to wake each connection is `lanthorn.timers.Timers`.

The engines differ in how they wait (a selector, asyncio, blocking sockets), never in
these rules.
"""

from __future__ import annotations

import enum
import errno
import os

from lanthorn.driver import LINGER_BYTES, LINGER_S, Connection, FileBody
from lanthorn.engines.listeners import OUT_OF_RESOURCES

# Housekeeping (the access log's flush, connections held unread until the worker's
# memory budget allows, a graceful stop's idle connections) runs this often; deadlines
# do not wait for it: each connection is woken at its own.
HOUSEKEEPING_S = 0.25


class Verdict(enum.Enum):
    WAIT = "wait"  # not due yet
    EXPIRE = "expire"  # call `expired`: a 408, GOAWAY, a PING, or just close
    ABORT = "abort"  # a batch is stuck: the client stopped reading within the send timeout


def overdue(conn: Connection, now: float, writing: bool) -> Verdict:
    """What a connection's deadline means now. While a batch is being written the
    deadline is the send timeout (the driver moves it with each progress), so a batch
    still in flight past it will not finish: the connection is aborted, not asked."""
    if now < conn.deadline:
        return Verdict.WAIT
    return Verdict.ABORT if writing else Verdict.EXPIRE


class Linger:
    """After CLOSE: our side is shut, and what the client still sends is discarded until
    it closes too, for at most LINGER_S and LINGER_BYTES (RFC 9112 §9.6, nginx's
    lingering_close), so the response it has not read yet is not destroyed by a reset."""

    __slots__ = ("left", "until")

    def __init__(self, now: float, extra_s: float = 0.0) -> None:
        self.until = now + LINGER_S + extra_s
        self.left = LINGER_BYTES

    def discard(self, data: bytes) -> bool:
        """Take what arrived; False once lingering is over (EOF, or too much)."""
        self.left -= len(data)
        return bool(data) and self.left >= 0


class AcceptBackoff:
    """accept() failing for want of resources (EMFILE and friends) leaves the listener
    readable: stop accepting for BACKOFF_S instead of spinning on it."""

    __slots__ = ("until",)

    BACKOFF_S = 0.1

    def __init__(self) -> None:
        self.until: float | None = None

    def failed(self, exc: OSError, now: float) -> bool:
        """Whether the failure means back off (others, such as a client that reset
        before it was accepted, are just skipped)."""
        if exc.errno in OUT_OF_RESOURCES:
            self.until = now + self.BACKOFF_S
            return True
        return False

    def waiting(self, now: float) -> bool:
        """Still backing off; the first call past the end clears it."""
        if self.until is not None and now >= self.until:
            self.until = None
        return self.until is not None


def send_file(sock_fd: int, body: FileBody, offset: int, count: int) -> int:
    """sendfile(2) up to `count` bytes of `body` from `offset` within it; how many went.
    BlockingIOError when the socket takes nothing now; OSError(EIO) when the file shrank
    underneath us: the promised length cannot be met, so the connection must not go on
    (RFC 9112 §6.3: the client would desynchronise)."""
    sent = os.sendfile(sock_fd, body.fileno(), body.offset + offset, count)
    if sent == 0:
        raise OSError(errno.EIO, "file shrank while being sent")
    return sent
