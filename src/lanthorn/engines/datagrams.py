"""HTTP/3's UDP path, on the asyncio engine: each UDP socket's datagrams go to a QUIC
driver of its own (driver/quic), what it answers goes out, and it is woken at its
deadline through the engine's timer heap.

With several workers, they are joined by a mesh: a Unix datagram socket pair per
worker, made before they fork (so no other process can reach it); a worker reads its
own pair's receiving end and writes to the others' sending ends. A datagram the kernel
gave to this worker for a connection of another (its client's address changed) is
handed over with the address it came from and which UDP socket took it; the owner
answers it from its own socket on the same port. The session tickets a worker issues
go to every other worker the same way, so a client resumes (and sends 0-RTT) wherever
the kernel puts it. A message that cannot be sent at once (the worker is gone, or its
queue is full) is dropped, as the network may drop any datagram."""

from __future__ import annotations

import asyncio
import functools
import math
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from lanthorn.clock import monotonic
from lanthorn.driver import Service
from lanthorn.driver.context import Worker

if TYPE_CHECKING:  # qh3 is loaded only when HTTP/3 is on (open_endpoints)
    from lanthorn.driver.quic import QuicServer
    from lanthorn.driver.tickets import SessionTickets

Wake = Callable[["Endpoint", float], None]
_P = TypeVar("_P", bound=asyncio.BaseProtocol)


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


def handover(index: int, address: tuple[str | object, ...], data: bytes) -> bytes:
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


class Mesh(asyncio.DatagramProtocol):
    """This worker's end of the mesh: datagrams handed over to it and session tickets
    the others issued come in; handovers and this worker's tickets go out."""

    def __init__(self, worker: Worker, endpoints: list[Endpoint], tickets: SessionTickets) -> None:
        self._row = worker.row
        self._outboxes = [_socket(outbox) for _, outbox in worker.mesh]
        self._endpoints = endpoints
        self._tickets = tickets
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def datagram_received(self, data: bytes, addr: object) -> None:
        kind, message = data[:1], data[1:]
        if kind == _TICKET:
            self._tickets.learn(message)
            return
        try:
            index, address, datagram = taken_over(message)
        except (ValueError, struct.error, UnicodeDecodeError):
            return
        if index < len(self._endpoints):
            self._endpoints[index].receive(datagram, address, forwarded=True)

    def hand_over(
        self, row: int, index: int, address: tuple[str | object, ...], data: bytes
    ) -> None:
        self._send(row, _DATAGRAM + handover(index, address, data))

    def share(self) -> None:
        """The tickets this worker issued, to every other worker."""
        shared = self._tickets.shared
        while shared:
            message = _TICKET + shared.pop()
            for row in range(len(self._outboxes)):
                if row != self._row:
                    self._send(row, message)

    def _send(self, row: int, message: bytes) -> None:
        try:
            self._outboxes[row].send(message)
        except OSError:
            return  # the worker is gone or behind: lost, as any datagram may be

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self, quic: QuicServer, wake: Wake, index: int) -> None:
        self._quic = quic
        self._wake = wake
        self._index = index  # which of the worker's UDP sockets (the same in every worker)
        self.mesh: Mesh | None = None
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def active(self) -> bool:
        """Some QUIC connection is still open."""
        return len(self._quic) > 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.receive(data, addr)

    def receive(self, data: bytes, addr: tuple[str | object, ...], forwarded: bool = False) -> None:
        self._quic.received(data, addr, monotonic(), forwarded)
        self._flush()

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for something sent earlier: QUIC's loss recovery deals with it."""

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
        if self._transport is not None:
            self._transport.close()
        if self.mesh is not None:
            self.mesh.close()

    def _flush(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            for data, address in self._quic.take():
                transport.sendto(data, address)
        if self.mesh is not None:
            for row, data, address in self._quic.forwards():
                self.mesh.hand_over(row, self._index, address, data)
            self.mesh.share()
        deadline = self._quic.deadline
        if deadline < math.inf:
            self._wake(self, deadline)


async def open_endpoints(
    sockets: list[socket.socket], service: Service, wake: Wake
) -> list[Endpoint]:
    """An endpoint on each UDP socket (none: HTTP/3 is off)."""
    if not sockets:
        return []
    # (Imported here: qh3 is loaded only when HTTP/3 is on.)
    from lanthorn.driver.quic import QuicServer
    from lanthorn.driver.tickets import SessionTickets

    cert, key = service.config.server.tls_cert, service.config.server.tls_key
    assert cert is not None  # the config refuses http3 without it
    loop = asyncio.get_running_loop()
    worker = service.worker
    tickets = SessionTickets(share=bool(worker.mesh))
    endpoints = [
        Endpoint(QuicServer(service, cert, key, tickets), wake, i) for i in range(len(sockets))
    ]
    for sock, endpoint in zip(sockets, endpoints, strict=True):
        await loop.create_datagram_endpoint(functools.partial(_same, endpoint), sock=sock)
    if worker.mesh:
        joined = Mesh(worker, endpoints, tickets)
        inbox = _socket(worker.mesh[worker.row][0])
        await loop.create_datagram_endpoint(functools.partial(_same, joined), sock=inbox)
        for endpoint in endpoints:
            endpoint.mesh = joined
    return endpoints


def _same(protocol: _P) -> _P:
    return protocol
