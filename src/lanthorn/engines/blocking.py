"""One connection over a blocking socket: the loop shared by `single` and `threads`.

The socket's timeout always expresses the driver's deadline (capped at WAKE_S so a
graceful stop, or waiting neighbours, are noticed while a keep-alive connection idles).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from lanthorn.clock import monotonic
from lanthorn.driver import CLOSE, Action, Connection, Service, discard
from lanthorn.engines.listeners import peer_host, tune

WAKE_S = 0.5
READ_BYTES = 65536


def _write(sock: socket.socket, actions: list[Action], timeout_s: float) -> bool:
    """Carry out a batch; False when the connection is finished (CLOSE or a failure)."""
    sock.settimeout(timeout_s)
    for index, action in enumerate(actions):
        try:
            if type(action) is bytes:
                sock.sendall(action)
            elif action is CLOSE:
                discard(actions[index + 1 :])
                return False
            else:
                assert not isinstance(action, bytes) and action is not CLOSE
                try:
                    sent = sock.sendfile(action.file, action.offset, action.count)
                finally:
                    action.close()
                if sent != action.count:  # the file shrank: the framing is broken
                    discard(actions[index + 1 :])
                    return False
        except OSError:
            discard(actions[index + 1 :])
            return False
    return True


def handle(
    sock: socket.socket, address: object, service: Service, crowded: Callable[[], bool]
) -> None:
    """Serve one connection to the end. `crowded()` says others are waiting for a turn:
    then an idle keep-alive connection gives its place up (RFC 9112 §9.5 allows it)."""
    tune(sock)
    conn: Connection = service.connection(peer_host(address), monotonic())
    send_timeout = service.limits.send_timeout_s
    try:
        actions: list[Action] = []
        while True:
            while actions:
                if not _write(sock, actions, send_timeout):
                    return
                actions = conn.drained(monotonic())
            now = monotonic()
            if conn.idle and (service.draining or crowded()):
                return
            if now >= conn.deadline:
                actions = conn.expired(now)
                continue
            sock.settimeout(min(conn.deadline - now, WAKE_S))
            try:
                data = sock.recv(READ_BYTES)
            except TimeoutError:
                continue
            except OSError:
                return
            actions = conn.feed(data, monotonic())
    finally:
        sock.close()
