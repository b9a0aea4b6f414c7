"""`threads`: a bounded pool of threads over blocking sockets (the course template's
model, with the keep-alive fix of Apache's event MPM).

The main thread accepts and watches connections that need no thread: *parked* idle
keep-alive connections, and *lingering* ones (our side shut, discarding what the client
still sends until it closes, driver.LINGER_S at most). `--threads N` workers each serve
one connection at a time with blocking I/O. A worker keeps its connection while nobody
waits for a thread; when others do and its connection is idle, it parks the connection
with the main thread, which hands it to a worker again when the client sends more. So N
threads serve any number of keep-alive clients without closing them under the client.
At `max_connections` (served + parked + lingering + queued) the main thread stops
accepting; the kernel's backlog holds the rest.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import threading
from collections.abc import Callable

from lanthorn.clock import monotonic
from lanthorn.driver import LINGER_BYTES, LINGER_S, Connection, Service
from lanthorn.engines import blocking
from lanthorn.engines.listeners import OUT_OF_RESOURCES
from lanthorn.engines.stopping import StopFlag

log = logging.getLogger("lanthorn")

_Job = tuple[socket.socket, Connection] | None
_Returned = tuple[socket.socket, Connection | None]  # None: lingering


class _Lingering:
    __slots__ = ("deadline", "received", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = monotonic() + LINGER_S
        self.received = 0


class Pool:
    """Workers serve; the main thread accepts, parks and lingers. With `workers=0` the
    main thread serves too, one connection at a time: that is the `single` model."""

    def __init__(self, service: Service, listeners: list[socket.socket], workers: int) -> None:
        self.service = service
        self.workers = workers
        self.listeners = listeners
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.returned: queue.SimpleQueue[_Returned] = queue.SimpleQueue()
        self.selector = selectors.DefaultSelector()
        self.waker_r, self.waker_w = socket.socketpair()
        self.waker_r.setblocking(False)
        self.waker_w.setblocking(False)
        self.parked: dict[int, tuple[socket.socket, Connection]] = {}
        self.lingering: dict[int, _Lingering] = {}
        self.open = 0  # connections anywhere: queued, served, parked or lingering
        self.free = 0  # workers waiting for a job (a heuristic: read without a lock)
        self.lock = threading.Lock()
        self.accepting = False
        self.resume_accepting_at: float | None = None

    # worker side -------------------------------------------------------------------------

    def crowded(self) -> bool:
        if not self.workers:  # inline: anyone else ready is waiting for this thread
            return bool(self.selector.select(0))
        return self.free == 0 and not self.jobs.empty()

    def serve(self, sock: socket.socket, conn: Connection) -> None:
        outcome = blocking.Outcome.CLOSED
        try:
            outcome = blocking.serve(sock, conn, self.service, self.crowded)
        except Exception:  # a bug costs one connection, never a worker
            log.exception("connection failed")
            sock.close()
        if outcome is blocking.Outcome.CLOSED:
            with self.lock:
                self.open -= 1
            self.wake()  # a place is free: accepting may resume
            return
        self.returned.put((sock, conn if outcome is blocking.Outcome.PARKED else None))
        if self.workers:
            self.wake()
        else:
            self.collect()

    def wake(self) -> None:
        if self.workers:
            with contextlib.suppress(BlockingIOError):  # full: already awake
                self.waker_w.send(b"\0")

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
            job = None  # the connection is done with: do not keep it (and its files) alive

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
        except OSError as exc:
            if exc.errno in OUT_OF_RESOURCES:  # do not spin on a listener we cannot serve
                self.set_accepting(False)
                self.resume_accepting_at = monotonic() + 0.1
            return
        sock.setblocking(True)
        with self.lock:
            self.open += 1
        self.dispatch(sock, blocking.start(sock, address, self.service))

    def collect(self) -> None:
        """Take back what workers returned: parked and lingering connections."""
        try:
            while self.waker_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while not self.returned.empty():
            sock, conn = self.returned.get()
            if conn is None:
                sock.setblocking(False)
                self.lingering[sock.fileno()] = _Lingering(sock)
                self.selector.register(sock, selectors.EVENT_READ, "linger")
            else:
                self.parked[sock.fileno()] = (sock, conn)
                self.selector.register(sock, selectors.EVENT_READ, "parked")

    def unpark(self, fd: int) -> tuple[socket.socket, Connection]:
        sock, conn = self.parked.pop(fd)
        self.selector.unregister(sock)
        return sock, conn

    def forget(self, sock: socket.socket) -> None:
        self.selector.unregister(sock)
        sock.close()
        with self.lock:
            self.open -= 1

    def drain_lingering(self, fd: int) -> None:
        entry = self.lingering[fd]
        try:
            data = entry.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        entry.received += len(data)
        if not data or entry.received > LINGER_BYTES:
            del self.lingering[fd]
            self.forget(entry.sock)

    def sweep(self, now: float) -> None:
        self.service.tick(now)
        for fd, (sock, conn) in list(self.parked.items()):
            if self.service.draining or now >= conn.deadline:
                del self.parked[fd]
                blocking.farewell(sock, conn)  # parked means idle: nothing to answer
                self.forget(sock)
        self.expire_lingering(now)
        if self.resume_accepting_at is not None and now >= self.resume_accepting_at:
            self.resume_accepting_at = None

    def expire_lingering(self, now: float) -> None:
        for fd, entry in list(self.lingering.items()):
            if now >= entry.deadline or now >= self.service.stop_at:
                del self.lingering[fd]
                self.forget(entry.sock)

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
                        self.collect()
                    elif key.data == "linger":
                        self.drain_lingering(key.fd)
                    elif key.fd in self.parked:
                        self.dispatch(*self.unpark(key.fd))  # the client sent more
                    if not self.workers:
                        break  # inline: one connection per round, then look again
                self.set_accepting(
                    self.open < self.service.limits.max_connections
                    and self.resume_accepting_at is None
                )
                now = monotonic()
                if now - swept >= blocking.WAKE_S:
                    swept = now
                    self.sweep(now)
        finally:
            self.shutdown(pool)

    def shutdown(self, pool: list[threading.Thread]) -> None:
        self.set_accepting(False)
        for listener in self.listeners:
            listener.close()
        self.collect()
        for fd in list(self.parked):
            sock, conn = self.parked.pop(fd)
            blocking.farewell(sock, conn)
            self.forget(sock)
        for _ in pool:
            self.jobs.put(None)
        for thread in pool:
            thread.join(max(0.0, self.service.stop_at - monotonic()))
        self.collect()
        # Lingering connections still get their time (within the grace period): closing
        # one with unread input (an HTTP/2 client's WINDOW_UPDATEs) would reset it and
        # destroy the end of the response it has not read yet.
        while self.lingering:
            for key, _ in self.selector.select(blocking.WAKE_S):
                if key.data == "linger":
                    self.drain_lingering(key.fd)
            self.expire_lingering(monotonic())
        self.service.close()


def run(listeners: list[socket.socket], service: Service, on_ready: Callable[[], None]) -> None:
    Pool(service, listeners, service.config.server.threads).run(StopFlag.install(service), on_ready)
