"""`threads`: a bounded pool of threads over blocking sockets (the course template's model).

The main thread accepts; `--threads N` workers each serve one connection at a time.
Accepted connections beyond the busy workers wait in a queue; while they wait, idle
keep-alive connections give their thread up. At `max_connections` (served + queued) the
acceptor stops accepting and the kernel's backlog holds the rest.
"""

from __future__ import annotations

import queue
import select
import socket
import threading
from collections.abc import Callable

from lanthorn.clock import monotonic
from lanthorn.driver import Service
from lanthorn.engines import blocking
from lanthorn.engines.stopping import StopFlag

_Job = tuple[socket.socket, object] | None


def run(listeners: list[socket.socket], service: Service, on_ready: Callable[[], None]) -> None:
    stop = StopFlag.install(service)
    jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
    slots = threading.BoundedSemaphore(service.limits.max_connections)

    free = [0]  # workers waiting for a job (approximate: only a heuristic reads it)

    def crowded() -> bool:
        return free[0] == 0 and not jobs.empty()

    def worker() -> None:
        while True:
            free[0] += 1
            job = jobs.get()
            free[0] -= 1
            if job is None:
                return
            sock, address = job
            try:
                blocking.handle(sock, address, service, crowded)
            finally:
                slots.release()

    pool = [
        threading.Thread(target=worker, name=f"lanthorn-{i}", daemon=True)
        for i in range(service.config.server.threads)
    ]
    for thread in pool:
        thread.start()
    poller = select.poll()
    by_fd = {s.fileno(): s for s in listeners}
    for listener in listeners:
        poller.register(listener, select.POLLIN)
    on_ready()
    try:
        while not stop.is_set():
            service.tick(monotonic())
            if not slots.acquire(timeout=blocking.WAKE_S):
                continue  # at the connection cap: accept nothing until a slot frees
            accepted = False
            for fd, _ in poller.poll(blocking.WAKE_S * 1000):
                try:
                    sock, address = by_fd[fd].accept()
                except OSError:
                    continue
                sock.setblocking(True)
                jobs.put((sock, address))
                accepted = True
                break
            if not accepted:
                slots.release()
    finally:
        for listener in listeners:
            listener.close()
        for _ in pool:
            jobs.put(None)
        deadline = monotonic() + service.limits.grace_s
        for thread in pool:
            thread.join(max(0.0, deadline - monotonic()))
        service.close()
