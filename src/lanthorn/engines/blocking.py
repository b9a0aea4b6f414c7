"""One connection over a blocking socket: the loop shared by `single` and `threads`.

The socket's timeout always expresses the driver's deadline (capped at WAKE_S so a
graceful stop, or waiting neighbours, are noticed while a keep-alive connection idles).
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable

from lanthorn.clock import monotonic
from lanthorn.driver import (
    CLOSE,
    LINGER_BYTES,
    LINGER_S,
    Action,
    Connection,
    FileBody,
    Service,
    discard,
)
from lanthorn.engines.listeners import peer_host, tune

WAKE_S = 0.5
READ_BYTES = 65536
SENDFILE_CHUNK = 8 * 1024 * 1024  # between chunks a graceful stop's deadline is checked


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
    sock.settimeout(service.limits.send_timeout_s)
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


def _linger(sock: socket.socket) -> None:
    """Shut our side, then discard input until the client closes (bounded)."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = monotonic() + LINGER_S
        total = 0
        while total < LINGER_BYTES and (left := deadline - monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(READ_BYTES)
            if not chunk:
                return
            total += len(chunk)
    except OSError:
        return


def _has_input(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def start(sock: socket.socket, address: object, service: Service) -> Connection:
    tune(sock)
    return service.connection(peer_host(address), monotonic())


def serve(
    sock: socket.socket,
    conn: Connection,
    service: Service,
    crowded: Callable[[], bool],
    can_park: bool,
) -> bool:
    """Serve a connection until it ends (False: the socket is closed) or, when
    `crowded()` says others wait for this thread, until it is idle with no input pending
    (True: the socket stays open for the caller to park).

    Without parking, an idle connection gives its place up by closing, but only after it
    has been answered at least once (RFC 9112 §9.5 lets a server close idle connections).
    """
    answered = False
    parked = False
    try:
        actions: list[Action] = []
        while True:
            while actions:
                done = _write(sock, actions, service)
                if done is None:
                    return False
                if not done:
                    _linger(sock)
                    return False
                actions = conn.drained(monotonic())
                answered = True
            now = monotonic()
            if conn.idle and not _has_input(sock):
                if service.draining:
                    _linger(sock)
                    return False
                if (can_park or answered) and crowded():
                    if can_park:
                        parked = True
                        return True
                    _linger(sock)
                    return False
            if now >= conn.deadline:
                actions = conn.expired(now)
                continue
            sock.settimeout(min(conn.deadline - now, WAKE_S))
            try:
                data = sock.recv(READ_BYTES)
            except TimeoutError:
                continue
            except OSError:
                return False
            actions = conn.feed(data, monotonic())
    finally:
        if not parked:
            sock.close()
