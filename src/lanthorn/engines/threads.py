"""`threads`: a bounded pool of threads over blocking sockets (the course template's
model, with the keep-alive fix of Apache's event MPM).

The main thread accepts and watches every connection that needs no thread: *parked*
ones, waiting for the client — new connections, idle keep-alive ones, requests whose
head is still arriving, HTTP/2 connections whose windows are shut — and *lingering*
ones (our side shut, discarding what the client still sends until it closes,
driver.LINGER_S at most). The main thread reads what a parked connection sends and
feeds it to the driver; only when the driver has something to write (a complete
request answered, a 408, a GOAWAY) does a worker get the connection, with that batch.
`--threads N` workers each serve one connection at a time with blocking I/O. A worker
keeps its connection while nobody waits for a thread; when others do and its connection
waits for the client, it parks the connection again. So N threads serve any number of
keep-alive clients, and slow senders (slowloris) never hold a thread.
At `max_connections` (served + parked + lingering + queued) the main thread stops
accepting; the kernel's backlog holds the rest. On SIGTERM the listeners close at once,
so new connections are refused while the old ones drain.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import selectors
import socket
import threading
from collections.abc import Callable

from lanthorn.clock import monotonic
from lanthorn.driver import CLOSE, DRAIN_QUIET_S, Action, Connection, Service, discard
from lanthorn.engines import blocking
from lanthorn.engines.kernel import HOUSEKEEPING_S, AcceptBackoff, Linger, Verdict, overdue
from lanthorn.engines.stopping import StopFlag
from lanthorn.timers import Timers

log = logging.getLogger("lanthorn")

_Job = tuple[socket.socket, Connection, blocking.Batch] | None
# (socket, connection or None when lingering, the rest of a batch when it stalled)
_Returned = tuple[socket.socket, Connection | None, blocking.Batch | None]


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
        self.unread: set[int] = set()  # parked but not watched: the driver wants no input
        # Connections whose client stopped reading mid-batch, until it is writable again.
        self.stalled: dict[int, tuple[socket.socket, Connection, blocking.Batch]] = {}
        self.lingering: dict[int, tuple[socket.socket, Linger]] = {}
        self.open = 0  # connections anywhere: queued, served, parked or lingering
        self.free = 0  # workers waiting for a job (a heuristic: read without a lock)
        self.lock = threading.Lock()
        self.accepting = False
        self.listening = True  # until a stop closes the listeners
        self.backoff = AcceptBackoff()
        # When each parked, stalled or lingering connection (by descriptor) is due.
        self.timers: Timers[int] = Timers()

    # worker side -------------------------------------------------------------------------

    def crowded(self) -> bool:
        if self.service.draining:
            return False  # nobody new comes: finish what is under way (within the grace)
        if not self.workers:  # inline: anyone else ready is waiting for this thread
            return bool(self.selector.select(0))
        return self.free == 0 and not self.jobs.empty()

    def serve(self, sock: socket.socket, conn: Connection, batch: blocking.Batch) -> None:
        outcome = blocking.Outcome.CLOSED
        try:
            outcome = blocking.serve(sock, conn, self.service, self.crowded, batch)
        except Exception:  # a bug costs one connection, never a worker
            log.exception("connection failed")
            sock.close()
        if outcome is blocking.Outcome.CLOSED:
            with self.lock:
                self.open -= 1
            self.wake()  # a place is free: accepting may resume
            return
        if outcome is blocking.Outcome.LINGER:
            self.returned.put((sock, None, None))
        else:
            stalled = outcome is blocking.Outcome.WRITING
            self.returned.put((sock, conn, batch if stalled else None))
        if self.workers:
            self.wake()
        else:
            self.collect()

    def wake(self) -> None:
        if self.workers:
            with contextlib.suppress(BlockingIOError):  # full: already awake
                self.waker_w.send(b"\0")

    def dispatch(self, sock: socket.socket, conn: Connection, batch: blocking.Batch) -> None:
        """A thread for a connection with something to write."""
        if self.workers:
            self.jobs.put((sock, conn, batch))
        else:
            self.serve(sock, conn, batch)

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
        if accepting != self.accepting and self.listening:
            self.accepting = accepting
            for listener in self.listeners:
                if accepting:
                    self.selector.register(listener, selectors.EVENT_READ, "listen")
                else:
                    self.selector.unregister(listener)

    def accept(self, listener: socket.socket) -> bool:
        """One connection from `listener`, parked until it has something to say; False
        when there was none."""
        try:
            sock, address = listener.accept()
        except OSError as exc:
            if self.backoff.failed(exc, monotonic()):
                self.set_accepting(False)  # resumed once the back-off is over
            return False
        sock.setblocking(True)
        with self.lock:
            self.open += 1
        self.park(sock, blocking.start(sock, address, self.service.door(listener.fileno())))
        return True

    def begin_drain(self) -> None:
        """A graceful stop, at the loop's turn (the handler only flags it): what the kernel
        queued is taken (and answered with Connection: close) rather than reset by the
        close; then the listeners close, then the drain begins, so no client is told to
        reconnect to a listener still open."""
        if self.listening:
            for listener in self.listeners:
                while self.accept(listener):
                    pass
            self.stop_listening()
        if not self.service.draining:  # (single's handler has begun it)
            self.service.drain(monotonic(), self.open)

    def stop_listening(self) -> None:
        """Close the listeners now, so connections are refused, not queued unanswered
        while the workers drain (single calls it from the signal handler: its one
        thread may be busy with a connection for long)."""
        self.set_accepting(False)
        self.listening = False
        for listener in self.listeners:
            listener.close()

    def collect(self) -> None:
        """Take back what workers returned: parked and lingering connections."""
        try:
            while self.waker_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while not self.returned.empty():
            sock, conn, batch = self.returned.get()
            if batch is not None:
                assert conn is not None
                self.stalled[sock.fileno()] = (sock, conn, batch)
                self.selector.register(sock, selectors.EVENT_WRITE, "stalled")
                self.timers.wake(sock.fileno(), conn.deadline)
            elif conn is None:
                sock.setblocking(False)
                linger = Linger(monotonic())
                self.lingering[sock.fileno()] = (sock, linger)
                self.selector.register(sock, selectors.EVENT_READ, "linger")
                self.timers.wake(sock.fileno(), linger.until)
            else:
                self.park(sock, conn)

    def park(self, sock: socket.socket, conn: Connection) -> None:
        fd = sock.fileno()
        self.parked[fd] = (sock, conn)
        if conn.reading:
            self.selector.register(sock, selectors.EVENT_READ, "parked")
        else:
            self.unread.add(fd)
        self.timers.wake(fd, conn.deadline)

    def read_parked(self, fd: int) -> None:
        """The client sent something: the driver takes it here; a thread only once there
        is something to write."""
        sock, conn = self.parked[fd]
        try:
            data = blocking.take(sock)
        except BlockingIOError:
            return
        self.settle(fd, conn.feed(data, monotonic()))

    def settle(self, fd: int, actions: list[Action]) -> None:
        """Carry out what the driver answered for a parked connection."""
        if not actions:  # still waiting for the client
            sock, conn = self.parked[fd]
            if not conn.reading and fd not in self.unread:
                self.selector.unregister(sock)
                self.unread.add(fd)
            self.timers.wake(fd, conn.deadline)
            return
        sock, conn = self.unpark(fd)
        if actions == [CLOSE]:  # nothing to write: no thread needed to close it
            conn.abort()
            sock.close()
            with self.lock:
                self.open -= 1
            return
        self.dispatch(sock, conn, blocking.Batch(actions))

    def resume(self, fd: int) -> None:
        """A stalled client reads again: a thread writes the rest of its batch."""
        sock, conn, batch = self.stalled.pop(fd)
        self.selector.unregister(sock)
        self.dispatch(sock, conn, batch)

    def unpark(self, fd: int) -> tuple[socket.socket, Connection]:
        sock, conn = self.parked.pop(fd)
        if fd in self.unread:
            self.unread.discard(fd)
        else:
            self.selector.unregister(sock)
        return sock, conn

    def forget(self, sock: socket.socket) -> None:
        self.selector.unregister(sock)
        sock.close()
        with self.lock:
            self.open -= 1

    def drain_lingering(self, fd: int) -> None:
        sock, linger = self.lingering[fd]
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not linger.discard(data):
            del self.lingering[fd]
            self.forget(sock)

    def check(self, fd: int, now: float) -> None:
        """Woken: whatever holds the descriptor now (a connection a worker has taken
        since is not here: it is woken again when it comes back)."""
        if fd in self.parked:
            sock, conn = self.parked[fd]
            if overdue(conn, now, False) is Verdict.EXPIRE:  # 408, GOAWAY, or just close
                self.settle(fd, conn.expired(now))
            else:
                self.timers.wake(fd, conn.deadline)  # not due after all: it moved on
        elif fd in self.stalled:
            sock, conn, batch = self.stalled[fd]
            stuck = overdue(conn, now, True) is Verdict.ABORT  # the send timeout
            if stuck or now >= self.service.stop_at:
                del self.stalled[fd]
                batch.discard()
                discard(conn.expired(now))
                conn.abort()
                self.forget(sock)
            else:
                self.timers.wake(fd, conn.deadline)
        elif fd in self.lingering:
            if now >= self.lingering[fd][1].until:
                self.forget(self.lingering.pop(fd)[0])
            else:
                self.timers.wake(fd, self.lingering[fd][1].until)

    def housekeeping(self, now: float) -> None:
        self.service.tick(now)
        for fd in list(self.unread):
            sock, conn = self.parked[fd]
            if conn.reading:  # the driver takes input again
                self.unread.discard(fd)
                self.selector.register(sock, selectors.EVENT_READ, "parked")

    def expire_lingering(self, now: float) -> None:
        for fd, (sock, linger) in list(self.lingering.items()):
            if now >= linger.until or now >= self.service.stop_at:
                del self.lingering[fd]
                self.forget(sock)

    def close_parked(self) -> None:
        for fd in list(self.parked):
            sock, conn = self.unpark(fd)
            blocking.farewell(sock, conn)
            sock.close()
            with self.lock:
                self.open -= 1
        for sock, conn, batch in self.stalled.values():
            batch.discard()
            conn.abort()
            self.forget(sock)
        self.stalled.clear()

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
        quiet_until = math.inf
        try:
            # After a stop, connections (idle keep-alive ones, or ones that answer a
            # request from before the stop) still have DRAIN_QUIET_S: a request on its
            # way is answered (with Connection: close), not cut.
            while True:
                if stop.is_set():
                    if quiet_until == math.inf:
                        self.begin_drain()
                        quiet_until = min(monotonic() + DRAIN_QUIET_S, self.service.stop_at)
                    if not self.open or monotonic() >= quiet_until:
                        break
                timeout = HOUSEKEEPING_S
                at = self.timers.next_at()
                if at is not None:
                    timeout = max(0.0, min(timeout, at - monotonic()))
                for key, _ in self.selector.select(timeout):
                    if key.data == "listen":
                        self.accept(key.fileobj)  # type: ignore[arg-type]
                    elif key.data == "waker":
                        self.collect()
                    elif key.data == "linger":
                        self.drain_lingering(key.fd)
                    elif key.data == "stalled":
                        self.resume(key.fd)
                    elif key.fd in self.parked:
                        self.read_parked(key.fd)
                    if not self.workers:
                        break  # inline: one connection per round, then look again
                now = monotonic()
                self.set_accepting(
                    self.open < self.service.limits.max_connections
                    and not self.backoff.waiting(now)
                )
                for fd in self.timers.due(now):
                    self.check(fd, now)
                if now - swept >= HOUSEKEEPING_S:
                    swept = now
                    self.housekeeping(now)
        finally:
            self.shutdown(pool)

    def shutdown(self, pool: list[threading.Thread]) -> None:
        self.begin_drain()  # (done already when the loop saw the stop: then a no-op)
        self.collect()
        for fd in list(self.stalled):
            self.resume(fd)  # their responses may finish within the grace period
        self.close_parked()
        for _ in pool:
            self.jobs.put(None)
        for thread in pool:
            thread.join(max(0.0, self.service.stop_at - monotonic()))
        self.collect()
        self.close_parked()  # parked by workers while they drained
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
    pool = Pool(service, listeners, service.config.server.threads)
    pool.run(StopFlag.install(service, drain=False), on_ready)
