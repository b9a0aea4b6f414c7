"""`events`: a single-threaded reactor over `selectors` (epoll), nginx-style.

Every socket is non-blocking. A connection is watched for reading while it has nothing
to write (and the driver takes input: see Connection.reading), and for writing while a
batch is going out (partial writes resume where they stopped; file bodies go out with
non-blocking sendfile(2)). Each connection is woken at its driver's deadline (the
kernel's timer heap sets the selector's timeout); housekeeping runs apart. HTTP/3's UDP
sockets (engines/datagrams) are watched the same way, and woken from the same heap.
"""

from __future__ import annotations

import selectors
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
from lanthorn.engines import datagrams, kernel
from lanthorn.engines.listeners import tune
from lanthorn.engines.stopping import StopFlag
from lanthorn.timers import Timers

READ_BYTES = 65536
# Batches one connection may write back to back before the others get a turn.
SYNC_BATCHES = 4


class _Peer:
    __slots__ = ("conn", "events", "gone", "linger", "out", "sock")

    def __init__(self, sock: socket.socket, conn: Connection) -> None:
        self.sock = sock
        self.conn = conn
        self.out: deque[Action | memoryview] = deque()
        self.events = 0  # what the selector watches it for (0: not registered)
        self.linger: kernel.Linger | None = None  # set once our side is shut
        self.gone = False  # dropped: never woken again


class _Reactor:
    def __init__(self, service: Service, listeners: list[socket.socket]) -> None:
        self.service = service
        self.selector = selectors.DefaultSelector()
        self.peers: dict[int, _Peer] = {}
        self.accepting = False
        self.backoff = kernel.AcceptBackoff()
        self.timers: Timers[_Peer | datagrams.Endpoint] = Timers()
        self.unread: set[_Peer] = set()  # not watched: the driver wants no input
        udp = [s for s in listeners if s.type == socket.SOCK_DGRAM]
        self.listeners = [s for s in listeners if s.type == socket.SOCK_STREAM]
        self.udp = datagrams.open_path(udp, service, self.timers.wake)

    def set_accepting(self, accepting: bool) -> None:
        if accepting == self.accepting:
            return
        self.accepting = accepting
        for listener in self.listeners:
            if accepting:
                self.selector.register(listener, selectors.EVENT_READ, None)
            else:
                self.selector.unregister(listener)

    def accept(self, listener: socket.socket) -> None:
        while len(self.peers) < self.service.limits.max_connections:
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if self.backoff.failed(exc, monotonic()):
                    self.set_accepting(False)  # housekeeping resumes it
                    return
                continue
            sock.setblocking(False)
            tune(sock)
            service = self.service.door(listener.fileno())
            peer = _Peer(sock, connect(service, peer_host(address), monotonic()))
            self.peers[sock.fileno()] = peer
            self.listen(peer)
            self.schedule(peer)
        self.set_accepting(False)  # at the cap: the kernel's backlog holds the rest

    def read(self, peer: _Peer) -> None:
        try:
            data = peer.sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(peer)
            return
        if peer.linger is not None:  # discarding until the client closes
            if not peer.linger.discard(data):
                self.drop(peer)
            return
        self.run(peer, peer.conn.feed(data, monotonic()))

    def linger(self, peer: _Peer) -> None:
        """Everything is written and we are closing: shut our side, drain theirs."""
        try:
            peer.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.drop(peer)
            return
        discard([a for a in peer.out if not isinstance(a, memoryview)])
        peer.out.clear()
        peer.linger = kernel.Linger(monotonic())
        self.watch(peer, selectors.EVENT_READ)

    def run(self, peer: _Peer, actions: list[Action]) -> None:
        peer.out.extend(actions)
        self.flush(peer)
        self.schedule(peer)

    def schedule(self, peer: _Peer) -> None:
        """Be woken when the driver asks (its deadline may have moved), or when a
        lingering connection's time is up."""
        if not peer.gone:
            linger = peer.linger
            self.timers.wake(peer, linger.until if linger is not None else peer.conn.deadline)

    def flush(self, peer: _Peer) -> None:
        """Write as much as the socket takes; switch interest accordingly."""
        out = peer.out
        sock = peer.sock
        for _ in range(SYNC_BATCHES):
            while out:
                action = out[0]
                try:
                    if action is CLOSE:
                        if peer.conn.lingers:
                            self.linger(peer)
                        else:
                            self.drop(peer)
                        return
                    if isinstance(action, FileBody):
                        sent = kernel.send_file(sock.fileno(), action, 0, action.count)
                        action.offset += sent
                        action.count -= sent
                        if action.count:
                            peer.conn.progressed(monotonic())
                            return self.want_write(peer)
                        action.close()
                    else:
                        assert isinstance(action, bytes | memoryview)
                        sent = sock.send(action)
                        if sent < len(action):
                            out[0] = memoryview(action)[sent:]
                            peer.conn.progressed(monotonic())
                            return self.want_write(peer)
                except (BlockingIOError, InterruptedError):
                    return self.want_write(peer)
                except OSError:
                    self.drop(peer)
                    return
                out.popleft()
            conn = peer.conn
            taken = self.take(peer) if conn.multiplexed and conn.reading else b""
            more = conn.drained(monotonic(), taken)
            if not more:
                break
            out.extend(more)
        else:  # the socket took every batch: let other connections have a turn
            return self.want_write(peer)
        self.listen(peer)

    def take(self, peer: _Peer) -> bytes:
        """What the client sent while a batch was written, without waiting for more.
        An EOF is left for the read event that follows."""
        try:
            return peer.sock.recv(READ_BYTES)
        except OSError:  # BlockingIOError: nothing yet; others show up on the next read
            return b""

    def want_write(self, peer: _Peer) -> None:
        self.watch(peer, selectors.EVENT_WRITE)

    def listen(self, peer: _Peer) -> None:
        """Nothing to write: wait for the client, unless the driver wants no input
        (housekeeping asks it again)."""
        if peer.conn.reading:
            self.watch(peer, selectors.EVENT_READ)
            if self.unread:
                self.unread.discard(peer)
        else:
            self.watch(peer, 0)
            self.unread.add(peer)

    def watch(self, peer: _Peer, events: int) -> None:
        if events != peer.events:
            if not peer.events:
                self.selector.register(peer.sock, events, peer)
            elif not events:
                self.selector.unregister(peer.sock)
            else:
                self.selector.modify(peer.sock, events, peer)
            peer.events = events

    def drop(self, peer: _Peer) -> None:
        fd = peer.sock.fileno()
        if self.peers.pop(fd, None) is None:
            return
        peer.gone = True
        if peer.events:
            self.selector.unregister(peer.sock)
        self.timers.forget(peer)
        self.unread.discard(peer)
        discard([a for a in peer.out if not isinstance(a, memoryview)])
        peer.out.clear()
        peer.conn.abort()
        peer.sock.close()
        if not self.accepting and not self.service.draining and self.backoff.until is None:
            self.set_accepting(True)

    def check(self, peer: _Peer, now: float) -> None:
        """Woken: a lingering connection's time is up, or the driver's deadline."""
        if peer.linger is not None:
            if now >= peer.linger.until:
                self.drop(peer)
            else:
                self.schedule(peer)
            return
        conn = peer.conn
        verdict = kernel.overdue(conn, now, bool(peer.out))
        if verdict is kernel.Verdict.ABORT:
            self.drop(peer)
        elif verdict is kernel.Verdict.EXPIRE:
            self.run(peer, conn.expired(now))
        else:
            self.schedule(peer)  # not due after all: the deadline moved on

    def housekeeping(self, now: float) -> None:
        self.service.tick(now)
        backing_off = self.backoff.until is not None
        if backing_off and not self.backoff.waiting(now) and not self.service.draining:
            self.set_accepting(True)
        if self.service.draining:
            for peer in list(self.peers.values()):
                if peer.linger is None and not peer.out:
                    if goodbye := peer.conn.shutdown():
                        self.run(peer, goodbye)  # HTTP/2: GOAWAY at once
                    else:
                        self.schedule(peer)  # HTTP/1: closed once quiet (its deadline)
        for peer in list(self.unread):
            if not peer.out and peer.conn.reading:
                self.listen(peer)  # the driver takes input again

    def serve(self, stop: StopFlag, on_ready: Callable[[], None]) -> None:
        self.set_accepting(True)
        readers = self.udp.readers if self.udp is not None else []
        for sock, pull in readers:
            self.selector.register(sock, selectors.EVENT_READ, pull)
        on_ready()
        swept = monotonic()
        stop_by: float | None = None
        while True:
            if stop.is_set() and stop_by is None:
                # What the kernel queued is taken and answered (with Connection: close),
                # not reset by the close; then the listeners close, then the drain
                # begins, so no client is told to reconnect to a listener still open.
                for listener in self.listeners:
                    self.accept(listener)
                self.set_accepting(False)
                for listener in self.listeners:
                    listener.close()
                self.service.drain(monotonic(), len(self.peers))
                stop_by = self.service.stop_at
                if self.udp is not None:
                    self.udp.shutdown()
                swept = 0.0  # housekeeping now: idle connections close at once
            busy = self.peers or (self.udp is not None and self.udp.active)
            if stop_by is not None and (not busy or monotonic() >= stop_by):
                break
            timeout = kernel.HOUSEKEEPING_S
            at = self.timers.next_at()
            if at is not None:
                timeout = max(0.0, min(timeout, at - monotonic()))
            for key, mask in self.selector.select(timeout):
                peer = key.data
                if peer is None:
                    self.accept(key.fileobj)  # type: ignore[arg-type]
                elif type(peer) is not _Peer:
                    peer()  # a UDP socket is readable (datagrams.UdpPath.readers)
                elif self.peers.get(key.fd) is not peer:
                    continue  # dropped earlier in this round
                elif mask & selectors.EVENT_WRITE:
                    self.flush(peer)
                    self.schedule(peer)
                else:
                    self.read(peer)
            now = monotonic()
            for due in self.timers.due(now):
                if isinstance(due, datagrams.Endpoint):
                    due.check(now)  # a UDP socket's QUIC connections
                elif not due.gone:
                    self.check(due, now)
            if now - swept >= kernel.HOUSEKEEPING_S:
                swept = now
                self.housekeeping(now)
        for peer in list(self.peers.values()):
            self.drop(peer)
        for sock, _ in readers:
            self.selector.unregister(sock)
        if self.udp is not None:
            self.udp.close()
        self.selector.close()
        self.service.close()


def run(listeners: list[socket.socket], service: Service, on_ready: Callable[[], None]) -> None:
    _Reactor(service, listeners).serve(StopFlag.install(service, drain=False), on_ready)
