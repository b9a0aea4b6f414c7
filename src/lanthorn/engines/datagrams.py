"""HTTP/3's UDP path, on the asyncio engine: each UDP socket's datagrams go to a QUIC
driver of its own (driver/quic), what it answers goes out, and it is woken at its
deadline through the engine's timer heap."""

from __future__ import annotations

import asyncio
import functools
import math
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from lanthorn.clock import monotonic
from lanthorn.driver import Service

if TYPE_CHECKING:  # qh3 is loaded only when HTTP/3 is on (open_endpoints)
    from lanthorn.driver.quic import QuicServer

Wake = Callable[["Endpoint", float], None]


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self, quic: QuicServer, wake: Wake) -> None:
        self._quic = quic
        self._wake = wake
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def active(self) -> bool:
        """Some QUIC connection is still open."""
        return len(self._quic) > 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._quic.received(data, addr, monotonic())
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

    def _flush(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            for data, address in self._quic.take():
                transport.sendto(data, address)
        deadline = self._quic.deadline
        if deadline < math.inf:
            self._wake(self, deadline)


async def open_endpoints(
    sockets: list[socket.socket], service: Service, wake: Wake
) -> list[Endpoint]:
    """An endpoint on each UDP socket (none: HTTP/3 is off)."""
    if not sockets:
        return []
    from lanthorn.driver.quic import QuicServer  # (here: qh3 only when HTTP/3 is on)

    cert, key = service.config.server.tls_cert, service.config.server.tls_key
    assert cert is not None  # the config refuses http3 without it
    loop = asyncio.get_running_loop()
    endpoints = [Endpoint(QuicServer(service, cert, key), wake) for _ in sockets]
    for sock, endpoint in zip(sockets, endpoints, strict=True):
        await loop.create_datagram_endpoint(functools.partial(_same, endpoint), sock=sock)
    return endpoints


def _same(endpoint: Endpoint) -> Endpoint:
    return endpoint
