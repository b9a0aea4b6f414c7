"""One connection over a blocking socket: the loop shared by `single` and `threads`.

The socket's timeout always expresses the driver's deadline (capped at POLL_S so a
graceful stop, or waiting neighbours, are noticed while a keep-alive connection idles).
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
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
)
from lanthorn.engines.listeners import peer_host, tune

WAKE_S = 0.5  # the main thread's select timeout: sweeps, stop flag
POLL_S = 0.05  # an idle worker re-checks whether someone waits for its thread
READ_BYTES = 65536
SENDFILE_CHUNK = 1024 * 1024  # between chunks a graceful stop's deadline is checked


def _sendfile(sock: socket.socket, body: FileBody, service: Service) -> bool:
    """Send a file slice; False if it could not be sent whole (the framing is broken)."""
    offset, end = body.offset, body.offset + body.count
    while offset < end:
        if monotonic() >= service.stop_at:
            return False
        count = min(SENDFILE_CHUNK, end - offset)
        sent = sock.sendfile(body.file, offset, count)
        if sent != count:  # the file shrank underneath us
            return False
        offset += sent
    return True


def _write(sock: socket.socket, actions: list[Action], service: Service) -> bool | None:
    """Carry out a batch: True when done, False on CLOSE, None on a failure."""
    left = service.stop_at - monotonic()
    sock.settimeout(max(0.001, min(service.limits.send_timeout_s, left)))
    for index, action in enumerate(actions):
        try:
            if type(action) is bytes:
                sock.sendall(action)
            elif isinstance(action, FileBody):
                try:
                    if not _sendfile(sock, action, service):
                        discard(actions[index + 1 :])
                        return None
                finally:
                    action.close()
            else:
                assert action is CLOSE
                discard(actions[index + 1 :])
                return False
        except OSError:
            discard(actions[index + 1 :])
            return None
    return True


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
    LINGER = "linger"  # our side is shut: the caller discards input until EOF (bounded)


def start(sock: socket.socket, address: object, service: Service) -> Connection:
    tune(sock)
    return connect(service, peer_host(address), monotonic())


def serve(
    sock: socket.socket,
    conn: Connection,
    service: Service,
    crowded: Callable[[], bool],
    actions: list[Action],
) -> Outcome:
    """Carry out `actions`, then serve the connection until it ends, or until it waits
    for the client (nothing to write, no input pending) while `crowded()` says others
    wait for this thread: then it is parked, not closed — whether it is idle, half-way
    through a request head, or an HTTP/2 connection whose windows are shut. A thread is
    only ever busy writing or answering, never waiting on a slow client for others.

    Lingering after our close (driver.LINGER_S) is left to the caller's selector, so a
    client that never closes its side cannot hold a thread.
    """
    keep_open = False
    try:
        while True:
            while actions:
                done = _write(sock, actions, service)
                if done is None:
                    return Outcome.CLOSED
                if not done:
                    keep_open = _shut_write(sock)
                    if keep_open:
                        conn.abort()  # the driver is done with; the socket lingers
                    return Outcome.LINGER if keep_open else Outcome.CLOSED
                actions = conn.drained(monotonic(), _take(sock) if conn.multiplexed else b"")
            now = monotonic()
            waiting = _has_input(sock)
            if service.draining and not waiting:
                # HTTP/2: GOAWAY at once; both close here once idle.
                actions = conn.shutdown()
                if actions:
                    continue
            if not waiting and crowded():
                keep_open = True
                return Outcome.PARKED
            if now >= service.stop_at:
                return Outcome.CLOSED  # the grace period is over
            if now >= conn.deadline and not waiting:
                actions = conn.expired(now)
                continue
            wake = min(conn.deadline, service.stop_at) - now
            sock.settimeout(max(0.001, min(wake, POLL_S)))
            try:
                data = sock.recv(READ_BYTES)
            except TimeoutError:
                continue
            except OSError:
                return Outcome.CLOSED
            actions = conn.feed(data, monotonic())
    finally:
        if not keep_open:
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
