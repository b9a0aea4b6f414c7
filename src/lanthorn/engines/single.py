"""`single`: one thread, one connection at a time — the teaching baseline.

While a connection is served, nobody else is; new connections wait in the kernel's
accept queue. An idle keep-alive connection steps aside when another is waiting.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable

from lanthorn.clock import monotonic
from lanthorn.driver import Service
from lanthorn.engines import blocking
from lanthorn.engines.stopping import StopFlag


def run(listeners: list[socket.socket], service: Service, on_ready: Callable[[], None]) -> None:
    stop = StopFlag.install(service)
    poller = select.poll()
    for listener in listeners:
        poller.register(listener, select.POLLIN)

    def crowded() -> bool:
        return bool(poller.poll(0))

    on_ready()
    try:
        while not stop.is_set():
            service.tick(monotonic())
            for fd, _ in poller.poll(blocking.WAKE_S * 1000):
                listener = next(s for s in listeners if s.fileno() == fd)
                try:
                    sock, address = listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    continue
                sock.setblocking(True)
                blocking.handle(sock, address, service, crowded)
                if stop.is_set():
                    break
    finally:
        service.draining = True
        for listener in listeners:
            listener.close()
        service.close()
