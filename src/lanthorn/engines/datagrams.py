"""HTTP/3's UDP path, for the engines that hold one (asyncio, events): each UDP socket's
datagrams go to a QUIC driver of its own (driver/quic), what it answers goes out, and it
is woken at its deadline through the engine's timer heap. The engine only watches the
sockets (`UdpPath.readers`: call this when that socket is readable) and keeps the time.

A socket is read until it is empty or READ_BATCH datagrams were taken (the engine comes
back while it stays readable), then the answers go out. A datagram the socket cannot
take at once is dropped, as the network may drop any: QUIC's loss recovery sends it
again, and its congestion control slows down. The sockets' buffers are made large
(listeners.datagrams) so that this is rare.

With several workers, they are joined by a mesh: a Unix datagram socket pair per
worker, made before they fork (so no other process can reach it); a worker reads its
own pair's receiving end and writes to the others' sending ends. A datagram the kernel
gave to this worker for a connection of another (its client's address changed) is
handed over with the address it came from and which UDP socket took it; the owner
answers it from its own socket on the same port. The session tickets a worker issues
go to every other worker the same way, so a client resumes (and sends 0-RTT) wherever
the kernel puts it. A message that cannot be sent at once (the worker is gone, or its
queue is full) is dropped too."""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from lanthorn.clock import monotonic
from lanthorn.driver import Service
from lanthorn.driver.context import Worker

if TYPE_CHECKING:  # qh3 is loaded only when HTTP/3 is on (open_path)
    from lanthorn.driver.quic import QuicServer
    from lanthorn.driver.tickets import SessionTickets

Address = tuple[str | object, ...]
Wake = Callable[["Endpoint", float], None]
READ_BATCH = 64  # datagrams taken from one socket before the engine looks elsewhere
_MAX_DATAGRAM = 65536

# What a mesh message carries: its first byte.
_DATAGRAM = b"\x00"  # a datagram handed over (`handover`)
_TICKET = b"\x01"  # a session ticket another worker issued (driver/tickets.encode)
_HANDOVER = struct.Struct("!BBBH")  # UDP socket index, address arity, host length, port
_IPV6 = struct.Struct("!II")  # flow info, scope id


def mesh(count: int) -> tuple[tuple[int, int], ...]:
    """A (receive, send) pair per worker, non-blocking, as file descriptors that stay
    open for the server's life: made before the workers fork."""
    pairs = []
    for _ in range(count):
        inbox, outbox = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        inbox.setblocking(False)
        outbox.setblocking(False)
        pairs.append((inbox.detach(), outbox.detach()))
    return tuple(pairs)


def _socket(fd: int) -> socket.socket:
    return socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM, fileno=fd)


def handover(index: int, address: Address, data: bytes) -> bytes:
    """A datagram for another worker: which UDP socket took it, where it came from."""
    host = str(address[0]).encode()
    head = _HANDOVER.pack(index, len(address), len(host), int(cast(int, address[1])))
    extra = _IPV6.pack(*cast(tuple[int, int], address[2:4])) if len(address) == 4 else b""
    return head + host + extra + data


def taken_over(message: bytes) -> tuple[int, tuple[str | int, ...], bytes]:
    """(UDP socket index, client address, datagram) from `handover`; ValueError if cut."""
    if len(message) < _HANDOVER.size:
        raise ValueError("short handover")
    index, arity, length, port = _HANDOVER.unpack_from(message)
    start = _HANDOVER.size + length
    host = message[_HANDOVER.size : start].decode()
    if arity == 4:
        flow, scope = _IPV6.unpack_from(message, start)
        return index, (host, port, flow, scope), message[start + _IPV6.size :]
    return index, (host, port), message[start:]


def _send(sock: socket.socket, data: bytes, address: Address | None = None) -> None:
    try:
        if address is None:
            sock.send(data)
        else:
            sock.sendto(data, address)
    except OSError:  # full (BlockingIOError), or the peer is unreachable: dropped
        return


class Mesh:
    """This worker's end of the mesh: datagrams handed over to it and session tickets
    the others issued come in; handovers and this worker's tickets go out."""

    def __init__(self, worker: Worker, endpoints: list[Endpoint], tickets: SessionTickets) -> None:
        self._row = worker.row
        self.inbox = _socket(worker.mesh[worker.row][0])
        self._outboxes = [_socket(outbox) for _, outbox in worker.mesh]
        self._endpoints = endpoints
        self._tickets = tickets

    def pull(self) -> None:
        """The inbox is readable: take what waits in it."""
        for _ in range(READ_BATCH):
            try:
                data = self.inbox.recv(_MAX_DATAGRAM)
            except OSError:  # empty (BlockingIOError)
                return
            self._received(data)

    def _received(self, data: bytes) -> None:
        kind, message = data[:1], data[1:]
        if kind == _TICKET:
            self._tickets.learn(message)
            return
        try:
            index, address, datagram = taken_over(message)
        except (ValueError, struct.error, UnicodeDecodeError):
            return
        if index < len(self._endpoints):
            self._endpoints[index].receive(datagram, address)

    def hand_over(self, row: int, index: int, address: Address, data: bytes) -> None:
        _send(self._outboxes[row], _DATAGRAM + handover(index, address, data))

    def share(self) -> None:
        """The tickets this worker issued, to every other worker."""
        shared = self._tickets.shared
        while shared:
            message = _TICKET + shared.pop()
            for row, outbox in enumerate(self._outboxes):
                if row != self._row:
                    _send(outbox, message)


class Endpoint:
    """One UDP socket and its QUIC driver."""

    def __init__(self, sock: socket.socket, quic: QuicServer, wake: Wake, index: int) -> None:
        self.sock = sock
        self._quic = quic
        self._wake = wake
        self._index = index  # which of the worker's UDP sockets (the same in every worker)
        self.mesh: Mesh | None = None

    @property
    def active(self) -> bool:
        """Some QUIC connection is still open."""
        return len(self._quic) > 0

    def pull(self) -> None:
        """The socket is readable: take what waits (up to READ_BATCH), then answer."""
        quic = self._quic
        for _ in range(READ_BATCH):
            try:
                data, address = self.sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # an ICMP error for something sent earlier: QUIC recovers
                continue
            quic.received(data, address, monotonic())  # (QUIC's pacing reads the clock)
        self._flush()

    def receive(self, data: bytes, address: Address) -> None:
        """A datagram another worker took for one of this worker's connections."""
        self._quic.received(data, address, monotonic(), forwarded=True)
        self._flush()

    def check(self, now: float) -> None:
        """Woken: the driver's deadline (QUIC's timers, the streams' clocks)."""
        self._quic.expired(now)
        self._flush()

    def shutdown(self) -> None:
        self._quic.shutdown(monotonic())
        self._flush()

    def close(self) -> None:
        self._quic.close()
        self._flush()
        self.sock.close()

    def _flush(self) -> None:
        sock = self.sock
        for data, address in self._quic.take():
            _send(sock, data, address)
        if self.mesh is not None:
            for row, data, address in self._quic.forwards():
                self.mesh.hand_over(row, self._index, address, data)
            self.mesh.share()
        deadline = self._quic.deadline
        if deadline < math.inf:
            self._wake(self, deadline)


class UdpPath:
    """One worker's UDP sockets with their QUIC drivers, and its end of the mesh."""

    def __init__(self, endpoints: list[Endpoint], joined: Mesh | None) -> None:
        self.endpoints = endpoints
        self._mesh = joined
        # What the engine watches: when the socket is readable, call the function.
        self.readers: list[tuple[socket.socket, Callable[[], None]]] = [
            (endpoint.sock, endpoint.pull) for endpoint in endpoints
        ]
        if joined is not None:
            self.readers.append((joined.inbox, joined.pull))

    @property
    def active(self) -> bool:
        """Some QUIC connection is still open."""
        return any(endpoint.active for endpoint in self.endpoints)

    def shutdown(self) -> None:
        """Graceful stop: GOAWAY on every connection."""
        for endpoint in self.endpoints:
            endpoint.shutdown()

    def close(self) -> None:
        """The end: every connection closed (after the engine stopped watching)."""
        for endpoint in self.endpoints:
            endpoint.close()
        if self._mesh is not None:
            self._mesh.inbox.close()


def open_path(sockets: list[socket.socket], service: Service, wake: Wake) -> UdpPath | None:
    """The UDP path over `sockets` (None when there are none: HTTP/3 is off)."""
    if not sockets:
        return None
    # (Imported here: qh3 is loaded only when HTTP/3 is on.)
    from lanthorn.driver.quic import QuicServer
    from lanthorn.driver.tickets import SessionTickets

    worker = service.worker
    tickets = SessionTickets(share=bool(worker.mesh))
    endpoints = [
        Endpoint(sock, QuicServer(service, tickets), wake, index)
        for index, sock in enumerate(sockets)
    ]
    joined = Mesh(worker, endpoints, tickets) if worker.mesh else None
    for endpoint in endpoints:
        endpoint.mesh = joined
    return UdpPath(endpoints, joined)
