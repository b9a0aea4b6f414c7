"""What every engine does the same way, written once: when to wake a connection
(`Timers`), how a closed connection lingers (`Linger`), backing off when accept() runs
out of descriptors (`AcceptBackoff`), when a connection's deadline means abort rather
than `expired` (`overdue`), and sending a file slice (`send_file`).

The engines differ in how they wait (a selector, asyncio, blocking sockets), never in
these rules.
"""

from __future__ import annotations

import enum
import errno
import heapq
import itertools
import os
from typing import Generic, TypeVar

from lanthorn.driver import LINGER_BYTES, LINGER_S, Connection, FileBody
from lanthorn.engines.listeners import OUT_OF_RESOURCES

K = TypeVar("K")

# Housekeeping (the access log's flush, connections held unread until the worker's
# memory budget allows, a graceful stop's idle connections) runs this often; deadlines
# do not wait for it: each connection is woken at its own.
HOUSEKEEPING_S = 0.25


class Timers(Generic[K]):
    """When each connection is next due: its driver's deadline (or its lingering's end).

    A heap with lazy deletion. `wake(key, at)` after every driver call that may have
    moved the deadline earlier (feed, drained, expired); a deadline that moved later
    (progress while writing) costs nothing: the old entry comes due, the engine looks
    at the connection, finds it not due yet, and wakes it again at the new time.
    Invariant: every live key has exactly one live entry, at `_at[key]`, no later than
    the time it is really due.

    A wake for a time already past is moved to just after the last `due` (by
    MIN_WAIT_S): a connection still due after it was handled (a driver that answered
    nothing and kept its deadline) is looked at again soon, not in a busy loop."""

    __slots__ = ("_at", "_floor", "_heap", "_seq")

    MIN_WAIT_S = 0.01

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._at: dict[K, float] = {}
        self._seq = itertools.count()  # ties never compare the keys
        self._floor = 0.0

    def wake(self, key: K, at: float) -> None:
        if at < self._floor:  # noqa: PLR1730 - the hot path: no call
            at = self._floor
        known = self._at.get(key)
        if known is None or at < known:
            self._at[key] = at
            heap = self._heap
            heapq.heappush(heap, (at, next(self._seq), key))
            if len(heap) > 2 * len(self._at) + 64:
                self._compact()

    def _compact(self) -> None:
        """Superseded and forgotten entries wait in the heap until they come due: past
        twice the live ones, rebuild it from the live ones, so memory stays bounded
        whatever the connections' deadlines do."""
        seq = self._seq
        self._heap = [(at, next(seq), key) for key, at in self._at.items()]
        heapq.heapify(self._heap)

    def forget(self, key: K) -> None:
        self._at.pop(key, None)

    def next_at(self) -> float | None:
        """The earliest live entry, if any."""
        heap, at = self._heap, self._at
        while heap and at.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale: forgotten, or superseded by an earlier one
        return heap[0][0] if heap else None

    def due(self, now: float) -> list[K]:
        """The keys due by `now`, removed: the caller looks at each and wakes it again."""
        heap, at = self._heap, self._at
        found: list[K] = []
        self._floor = now + self.MIN_WAIT_S
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            if at.get(key) == when:
                del at[key]
                found.append(key)
        return found

    def __len__(self) -> int:
        return len(self._at)


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
