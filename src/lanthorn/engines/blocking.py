"""One connection over a blocking socket: the loop shared by `single` and `threads`.

A thread serves a connection only while there is something to do: a batch to write or
input to read. Writes never wait long: when the client stops taking bytes and others
wait for the thread (`crowded()`), what is left of the batch goes back to the caller
with the connection (Outcome.WRITING), and it is resumed when the socket is writable
again — so a client that stops reading holds no thread, as one that stops sending
holds none. The send timeout is the driver's: its deadline moves with each progress.
Reads wait at most POLL_S at a time, so a graceful stop, or waiting neighbours, are
noticed while a keep-alive connection idles.
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
from collections import deque
from collections.abc import Callable

from lanthorn.clock import monotonic
from lanthorn.driver import (
    CLOSE,
    Action,
    Connection,
    FileBody,
    Service,
    connect,
    discard,
    peer_host,
)
from lanthorn.engines.kernel import send_file
from lanthorn.engines.listeners import tune

WAKE_S = 0.5  # a stopping main thread looks at its lingering connections this often
POLL_S = 0.05  # an idle worker re-checks whether someone waits for its thread
READ_BYTES = 65536
SENDFILE_CHUNK = 1024 * 1024  # between chunks a graceful stop's deadline is checked


class Batch:
    """What is left to write of a batch: actions in order, `pos` bytes into the first."""

    __slots__ = ("actions", "pos")

    def __init__(self, actions: list[Action]) -> None:
        self.actions = deque(actions)
        self.pos = 0

    def __bool__(self) -> bool:
        return bool(self.actions)

    def then(self, actions: list[Action]) -> None:
        """The next batch, once this one is out. The object stays the same: the caller
        of `serve` keeps it, and resumes what is left of it after Outcome.WRITING."""
        assert not self.actions
        self.actions.extend(actions)

    def discard(self) -> None:
        discard(list(self.actions))
        self.actions.clear()


class Written(enum.Enum):
    DONE = "done"  # the batch is out
    CLOSE = "close"  # the batch is out and ends with CLOSE
    BLOCKED = "blocked"  # the client is not reading and others wait for the thread
    FAILED = "failed"  # the socket failed, the file shrank, or time ran out


def _send_once(sock: socket.socket, batch: Batch) -> None:
    """Send some of the batch's first action without waiting.
    BlockingIOError when the socket takes nothing now; OSError when it failed, or the
    file shrank."""
    action = batch.actions[0]
    pos = batch.pos
    if isinstance(action, FileBody):
        sent = send_file(sock.fileno(), action, pos, min(SENDFILE_CHUNK, action.count - pos))
        done = pos + sent >= action.count
        if done:
            action.close()
    else:
        assert type(action) is bytes
        sent = sock.send(memoryview(action)[pos:] if pos else action)
        done = pos + sent >= len(action)
    if done:
        batch.actions.popleft()
        batch.pos = 0
    else:
        batch.pos = pos + sent


def _writable(sock: socket.socket, timeout_s: float) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return bool(poller.poll(max(0, int(timeout_s * 1000))))


def _write(
    sock: socket.socket,
    batch: Batch,
    conn: Connection,
    service: Service,
    crowded: Callable[[], bool],
) -> Written:
    """Carry out the batch as far as the client takes it."""
    sock.setblocking(False)
    while batch:
        if batch.actions[0] is CLOSE:
            batch.discard()
            return Written.CLOSE
        try:
            _send_once(sock, batch)
        except BlockingIOError:
            now = monotonic()
            if now >= conn.deadline or now >= service.stop_at:
                break  # the send timeout, or the end of the grace period
            if crowded():
                return Written.BLOCKED
            _writable(sock, min(POLL_S, conn.deadline - now, service.stop_at - now))
            continue
        except OSError:
            break  # the socket failed, or the file shrank: the framing is broken
        conn.progressed(monotonic())
    else:
        return Written.DONE
    batch.discard()
    return Written.FAILED


def _take(sock: socket.socket) -> bytes:
    """What the client sent while a batch was written, without waiting for more (an EOF
    is left for the next read)."""
    if not _has_input(sock):
        return b""
    try:
        return sock.recv(READ_BYTES)
    except OSError:
        return b""


def _has_input(sock: socket.socket) -> bool:
    """Bytes, an EOF or an error are waiting to be read. poll(), unlike select(), works
    for any descriptor number (select is limited to FD_SETSIZE, 1024)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class Outcome(enum.Enum):
    CLOSED = "closed"  # the socket is closed
    PARKED = "parked"  # idle while others wait: the caller watches it for more input
    WRITING = "writing"  # the client stopped reading: the caller resumes it when writable
    LINGER = "linger"  # our side is shut: the caller discards input until EOF (bounded)


def start(sock: socket.socket, address: object, service: Service) -> Connection:
    tune(sock)
    return connect(service, peer_host(address), monotonic())


def serve(
    sock: socket.socket,
    conn: Connection,
    service: Service,
    crowded: Callable[[], bool],
    batch: Batch,
) -> Outcome:
    """Carry out `batch`, then serve the connection until it ends, or until it waits
    for the client while `crowded()` says others wait for this thread: then it goes back
    to the caller, not closed — PARKED when it waits for input (idle, half-way through a
    request head, an HTTP/2 connection whose windows are shut), WRITING (with `batch`
    holding the rest) when the client stopped reading. A thread is only ever busy
    writing or answering, never waiting on one client while others wait for it.

    Lingering after our close (driver.LINGER_S) is left to the caller's selector, so a
    client that never closes its side cannot hold a thread.
    """
    keep_open = False
    try:
        while True:
            while batch:
                written = _write(sock, batch, conn, service, crowded)
                if written is Written.BLOCKED:
                    keep_open = True
                    return Outcome.WRITING
                if written is Written.FAILED:
                    return Outcome.CLOSED
                if written is Written.CLOSE:
                    if not conn.lingers:
                        return Outcome.CLOSED
                    keep_open = _shut_write(sock)
                    if keep_open:
                        conn.abort()  # the driver is done with; the socket lingers
                    return Outcome.LINGER if keep_open else Outcome.CLOSED
                data = _take(sock) if conn.multiplexed and conn.reading else b""
                batch.then(conn.drained(monotonic(), data))
            now = monotonic()
            waiting = _has_input(sock)
            if service.draining and not waiting:
                # HTTP/2: GOAWAY at once; both close here once idle.
                batch.then(conn.shutdown())
                if batch:
                    continue
            if (not waiting and crowded()) or not conn.reading:
                keep_open = True  # the caller watches it, or holds it unread
                return Outcome.PARKED
            if now >= service.stop_at:
                return Outcome.CLOSED  # the grace period is over
            if now >= conn.deadline and not waiting:
                batch.then(conn.expired(now))
                continue
            wake = min(conn.deadline, service.stop_at) - now
            sock.settimeout(max(0.001, min(wake, POLL_S)))
            try:
                data = sock.recv(READ_BYTES)
            except TimeoutError:
                continue
            except OSError:
                return Outcome.CLOSED
            batch.then(conn.feed(data, monotonic()))
    finally:
        if not keep_open:
            batch.discard()
            conn.abort()
            sock.close()


def take(sock: socket.socket) -> bytes:
    """What a socket held by no thread has for us, without waiting (b"" at EOF or on an
    error; BlockingIOError if nothing after all)."""
    try:
        return sock.recv(READ_BYTES, socket.MSG_DONTWAIT)
    except BlockingIOError:
        raise
    except OSError:
        return b""


def farewell(sock: socket.socket, conn: Connection) -> None:
    """Graceful stop of a connection held by no thread: send what the driver asks
    (HTTP/2's GOAWAY; nothing on HTTP/1) if the socket takes it at once, and release
    what the driver holds. The caller closes the socket."""
    for action in conn.shutdown():
        if type(action) is bytes:
            with contextlib.suppress(OSError):
                sock.send(action, socket.MSG_DONTWAIT)
    conn.abort()


def _shut_write(sock: socket.socket) -> bool:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return False
    return True
