"""`threads`: a bounded pool of threads over blocking sockets (the course template's
model, with the keep-alive fix of Apache's event MPM).

The main thread accepts and watches *parked* connections; `--threads N` workers each
serve one connection at a time with blocking I/O. A worker keeps its connection while
nobody waits for a thread; when others do and its connection is idle, it parks the
connection back with the main thread, which hands it to a worker again when the client
sends more. So N threads serve any number of keep-alive connections without closing
them under the client. At `max_connections` (served + parked + queued) the main thread
stops accepting; the kernel's backlog holds the rest.
"""

from __future__ import annotations

import queue
import selectors
import socket
import threading
from collections.abc import Callable

from lanthorn.clock import monotonic
from lanthorn.driver import Connection, Service
from lanthorn.engines import blocking
from lanthorn.engines.stopping import StopFlag

_Job = tuple[socket.socket, Connection] | None


class Pool:
    """Workers serve; the main thread accepts and parks. With `workers=0` the main
    thread serves too, one connection at a time: that is the `single` model."""

    def __init__(self, service: Service, listeners: list[socket.socket], workers: int) -> None:
        self.service = service
        self.workers = workers
        self.listeners = listeners
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.returned: queue.SimpleQueue[tuple[socket.socket, Connection]] = queue.SimpleQueue()
        self.selector = selectors.DefaultSelector()
        self.waker_r, self.waker_w = socket.socketpair()
        self.waker_r.setblocking(False)
        self.parked: dict[int, tuple[socket.socket, Connection]] = {}
        self.open = 0  # connections anywhere: queued, served or parked
        self.free = 0  # workers waiting for a job (a heuristic: read without a lock)
        self.lock = threading.Lock()
        self.accepting = False

    # worker side -------------------------------------------------------------------------

    def crowded(self) -> bool:
        if not self.workers:  # inline: anyone else ready is waiting for this thread
            return bool(self.selector.select(0))
        return self.free == 0 and not self.jobs.empty()

    def serve(self, sock: socket.socket, conn: Connection) -> None:
        if blocking.serve(sock, conn, self.service, self.crowded, can_park=True):
            self.returned.put((sock, conn))
            if self.workers:
                self.waker_w.send(b"\0")
            else:
                self.park()
        else:
            with self.lock:
                self.open -= 1

    def dispatch(self, sock: socket.socket, conn: Connection) -> None:
        if self.workers:
            self.jobs.put((sock, conn))
        else:
            self.serve(sock, conn)

    def worker(self) -> None:
        while True:
            with self.lock:
                self.free += 1
            job = self.jobs.get()
            with self.lock:
                self.free -= 1
            if job is None:
                return
            self.serve(*job)

    # main thread -------------------------------------------------------------------------

    def set_accepting(self, accepting: bool) -> None:
        if accepting != self.accepting:
            self.accepting = accepting
            for listener in self.listeners:
                if accepting:
                    self.selector.register(listener, selectors.EVENT_READ, "listen")
                else:
                    self.selector.unregister(listener)

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, address = listener.accept()
        except OSError:
            return
        sock.setblocking(True)
        with self.lock:
            self.open += 1
        self.dispatch(sock, blocking.start(sock, address, self.service))

    def park(self) -> None:
        try:
            while self.waker_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while not self.returned.empty():
            sock, conn = self.returned.get()
            self.parked[sock.fileno()] = (sock, conn)
            self.selector.register(sock, selectors.EVENT_READ, "parked")

    def unpark(self, fd: int) -> tuple[socket.socket, Connection]:
        sock, conn = self.parked.pop(fd)
        self.selector.unregister(sock)
        return sock, conn

    def close_parked(self, fd: int) -> None:
        sock, _ = self.unpark(fd)
        sock.close()
        with self.lock:
            self.open -= 1

    def sweep(self, now: float) -> None:
        self.service.tick(now)
        for fd, (_, conn) in list(self.parked.items()):
            if self.service.draining or now >= conn.deadline:
                self.close_parked(fd)  # parked means idle: nothing to answer

    def run(self, stop: StopFlag, on_ready: Callable[[], None]) -> None:
        pool = [
            threading.Thread(target=self.worker, name=f"lanthorn-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in pool:
            thread.start()
        self.selector.register(self.waker_r, selectors.EVENT_READ, "waker")
        self.set_accepting(True)
        on_ready()
        swept = monotonic()
        try:
            while not stop.is_set():
                for key, _ in self.selector.select(blocking.WAKE_S):
                    if key.data == "listen":
                        self.accept(key.fileobj)  # type: ignore[arg-type]
                    elif key.data == "waker":
                        self.park()
                    elif key.fd in self.parked:
                        self.dispatch(*self.unpark(key.fd))  # the client sent more
                    if not self.workers:
                        break  # inline: one connection per round, then look again
                self.set_accepting(self.open < self.service.limits.max_connections)
                now = monotonic()
                if now - swept >= blocking.WAKE_S:
                    swept = now
                    self.sweep(now)
        finally:
            self.set_accepting(False)
            for listener in self.listeners:
                listener.close()
            self.park()
            for fd in list(self.parked):
                self.close_parked(fd)
            for _ in pool:
                self.jobs.put(None)
            for thread in pool:
                thread.join(max(0.0, self.service.stop_at - monotonic()))
            self.service.close()


def run(listeners: list[socket.socket], service: Service, on_ready: Callable[[], None]) -> None:
    Pool(service, listeners, service.config.server.threads).run(StopFlag.install(service), on_ready)
