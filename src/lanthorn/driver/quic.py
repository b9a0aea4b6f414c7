"""One worker's QUIC connections (RFC 9000) on its UDP socket: datagrams in, each routed
by its destination connection ID to the connection it belongs to, whose HTTP/3 streams
the same stream driver as HTTP/2's answers (`Streams` over the `Http3` adapter);
datagrams out.

An engine with a UDP path calls `received(data, address, now)` for each datagram and
`expired(now)` once `deadline` has passed; after either, `take()` gives what to send.

A datagram for no known connection opens one only if it is a QUIC v1 Initial packet in
a datagram of at least 1200 bytes — a client pads its first flight (RFC 9000 §14.1), so
a spoofed small datagram never makes the server answer with more than it was sent — and
while the worker is under --max-connections. A long-header packet of another version
gets Version Negotiation (§6); anything else for no known connection is dropped.

With `--quic-retry` (address validation, RFC 9000 §8.1), an Initial without a token
gets a Retry, smaller than what it was sent, and only an Initial that returns a valid
token opens a connection: a flood from spoofed addresses costs an HMAC per datagram and
no state. Tokens are HMAC-SHA256 over the client's address, a time and the connection
IDs, valid for TOKEN_S, under a key every worker of the server shares.

A connection whose handshake is not done within --header-timeout is dropped (silently:
its address may not be the client's); QUIC's idle timeout is --keepalive-timeout.
Session tickets (resumption, 0-RTT) are kept by `tickets.SessionTickets`, which every
worker shares.

With several workers (`-w N`), each has its own UDP socket on the port (SO_REUSEPORT):
the kernel picks one by the client's address and port, so a connection's datagrams keep
reaching the worker that opened it until the client's address changes (a NAT rebinding,
a migration, RFC 9000 §9). Every connection ID a worker issues begins with its row (a
byte), so the worker that then gets the datagram knows whose it is: a 1-RTT or Handshake
packet for a connection of another row is handed over (`forwards()`, through the
engine's mesh of worker sockets) and answered by its owner, from the same port.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import struct
import zlib
from typing import Any

from qh3._hazmat import Buffer
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import NetworkAddress, QuicConnection
from qh3.quic.packet import (
    QuicHeader,
    QuicPacketType,
    QuicProtocolVersion,
    encode_quic_retry,
    encode_quic_version_negotiation,
    pull_quic_header,
)

from lanthorn.driver.context import Service, Worker
from lanthorn.driver.contract import CLOSE, Action, peer_host
from lanthorn.driver.streams import Streams
from lanthorn.driver.tickets import SessionTickets
from lanthorn.protocol.http3 import ALPN, Http3
from lanthorn.timers import Timers

MIN_INITIAL = 1200  # RFC 9000 §14.1: the smallest datagram that carries an Initial
TOKEN_S = 10.0  # how long a Retry token stays valid
_CID_LENGTH = 8
_VERSIONS: list[int] = [QuicProtocolVersion.VERSION_1]
# Packets whose destination connection ID the server issued (Initial and 0-RTT packets
# carry one the client chose).
_OURS = frozenset((QuicPacketType.ONE_RTT, QuicPacketType.HANDSHAKE))
# qh3 logs a client's ordinary CONNECTION_CLOSE as a warning: only its errors are news.
logging.getLogger("quic").setLevel(logging.ERROR)


QUIC_TLS = "TLSv1.3"  # QUIC is always TLS 1.3 (RFC 9001 §4.2)


class TaggedConnection(QuicConnection):
    """A server connection whose connection IDs all begin with `tag` (its worker's row).
    qh3 draws them itself: each is re-drawn right after qh3 makes it, before any is
    sent (the first in __init__, the others in _replenish_connection_ids)."""

    def __init__(self, tag: int, **kwargs: Any) -> None:
        self._tag = bytes((tag,))
        super().__init__(**kwargs)
        self.host_cid = self._local_initial_source_connection_id = self._retag()

    def _replenish_connection_ids(self) -> None:
        super()._replenish_connection_ids()
        self._retag()

    def _retag(self) -> bytes:
        numbers = self._host_cid_seq_map
        for issued in self._host_cids:
            if not issued.cid.startswith(self._tag):
                numbers.pop(issued.cid, None)
                issued.cid = self._tag + issued.cid[1:]
                numbers[issued.cid] = issued.sequence_number
        return self._host_cids[0].cid


class _Connection:
    __slots__ = ("adapter", "cids", "handshake_by", "shaken", "streams")

    def __init__(self, adapter: Http3, streams: Streams, handshake_by: float) -> None:
        self.adapter = adapter
        self.streams = streams
        self.cids: set[bytes] = set()
        self.handshake_by = handshake_by  # a handshake not done by then is dropped
        self.shaken = False  # its handshake was confirmed (and counted for the metrics)


class RetryTokens:
    """Stateless address-validation tokens (RFC 9000 §8.1.2): the address a Retry went
    to, when, and the connection IDs the connection must be opened with, under an HMAC
    with a key of this process."""

    __slots__ = ("_key",)

    _TAG = 16

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"quic retry tokens", hashlib.sha256).digest()

    def make(self, address: NetworkAddress, original: bytes, retry: bytes, now: float) -> bytes:
        body = struct.pack("!dB", now, len(original)) + original + bytes([len(retry)]) + retry
        return body + self._tag(address, body)

    def check(
        self, address: NetworkAddress, token: bytes, now: float
    ) -> tuple[bytes, bytes] | None:
        """(original destination ID, retry source ID), or None: forged, old, elsewhere."""
        body, tag = token[: -self._TAG], token[-self._TAG :]
        if len(body) < 10 or not hmac.compare_digest(tag, self._tag(address, body)):
            return None
        issued, length = struct.unpack_from("!dB", body)
        original = body[9 : 9 + length]
        retry = body[10 + length :]
        if not 0 <= now - issued <= TOKEN_S or len(retry) != body[9 + length]:
            return None
        return original, retry

    def _tag(self, address: NetworkAddress, body: bytes) -> bytes:
        where = f"{address[0]}|{address[1]}|".encode()
        return hmac.new(self._key, where + body, hashlib.sha256).digest()[: self._TAG]


class QuicServer:
    __slots__ = (
        "_config",
        "_connections",
        "_forwards",
        "_out",
        "_retry",
        "_routes",
        "_service",
        "_tickets",
        "_timers",
        "_worker",
    )

    def __init__(self, service: Service, tickets: SessionTickets) -> None:
        self._service = service
        self._tickets = tickets
        self._worker: Worker = service.worker
        self._retry = RetryTokens(self._worker.secret) if service.config.server.quic_retry else None
        limits = service.limits
        config = QuicConfiguration(
            is_client=False,
            alpn_protocols=ALPN,
            connection_id_length=_CID_LENGTH,
            idle_timeout=limits.keepalive_timeout_s,
            # qh3's HTTP/3 announces H3_DATAGRAM, which needs this (RFC 9297 §2.1.1).
            max_datagram_frame_size=65536,
            probe_datagram_size=False,
        )
        # qh3 reads the certificate off the configuration as each connection begins, so
        # a renewed one (loaded into it again) reaches new connections only.
        assert service.certificate is not None  # the config refuses HTTP/3 without TLS
        service.certificate.load(config.load_cert_chain)
        self._config = config
        self._routes: dict[bytes, _Connection] = {}
        self._connections: set[_Connection] = set()
        # When each connection is next due: its QUIC timer or its driver's deadline.
        self._timers: Timers[_Connection] = Timers()
        self._out: list[tuple[bytes, NetworkAddress]] = []
        # Datagrams for connections of other workers: (their row, datagram, from).
        self._forwards: list[tuple[int, bytes, NetworkAddress]] = []

    def __len__(self) -> int:
        return len(self._connections)

    @property
    def deadline(self) -> float:
        """The earliest of the connections' QUIC timers and drivers' deadlines."""
        at = self._timers.next_at()
        return math.inf if at is None else at

    def received(
        self, data: bytes, address: NetworkAddress, now: float, forwarded: bool = False
    ) -> None:
        """A datagram from `address` (`forwarded`: by another worker, which got it)."""
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=_CID_LENGTH)
        except ValueError:
            return  # not QUIC
        cid = header.destination_cid
        connection = self._routes.get(cid)
        if connection is None:
            owner = None if forwarded else self._owner(cid, header.packet_type)
            if owner is not None:
                self._forwards.append((owner, data, address))
                return
            connection = self._open(data, header, address, now)
            if connection is None:
                return
        connection.adapter.address = address  # the latest path (migration, RFC 9000 §9)
        self._carry_out(connection, connection.streams.feed(data, now), now)

    def expired(self, now: float) -> None:
        for connection in self._timers.due(now):
            if connection not in self._connections:
                continue
            adapter = connection.adapter
            if not adapter.confirmed and now >= connection.handshake_by:
                self._forget(connection)  # silently: the address may not be the client's
                continue
            timer = adapter.timer()
            if timer is not None and timer <= now:
                adapter.tick(now)
            streams = connection.streams
            actions = streams.expired(now) if streams.deadline <= now else []
            self._carry_out(connection, actions, now)

    def shutdown(self, now: float) -> None:
        """Graceful stop: GOAWAY on every connection; each closes once its streams end."""
        for connection in list(self._connections):
            self._carry_out(connection, connection.streams.shutdown(), now)

    def close(self) -> None:
        """The end: every connection is closed at once (CONNECTION_CLOSE is sent)."""
        for connection in list(self._connections):
            connection.adapter.close()
            self._out += connection.adapter.datagrams(0.0)
            self._forget(connection)

    def take(self) -> list[tuple[bytes, NetworkAddress]]:
        out, self._out = self._out, []
        return out

    def forwards(self) -> list[tuple[int, bytes, NetworkAddress]]:
        """Datagrams that belong to another worker's connections, with its row."""
        out, self._forwards = self._forwards, []
        return out

    def _owner(self, cid: bytes, kind: QuicPacketType) -> int | None:
        """The other worker a datagram for no connection of this one belongs to, if any:
        for 1-RTT and Handshake packets, the one that issued `cid` (its first byte);
        where the workers share one UDP socket (systemd's), for Initial and 0-RTT the
        one the client's own `cid` hashes to, as the kernel spreads nothing then."""
        worker = self._worker
        if kind in _OURS:
            if len(cid) == _CID_LENGTH and cid[0] != worker.row and cid[0] < worker.count:
                return cid[0]
        elif worker.shared_udp and worker.count > 1:
            row = zlib.crc32(cid) % worker.count
            return row if row != worker.row else None
        return None

    def _open(
        self, data: bytes, header: QuicHeader, address: NetworkAddress, now: float
    ) -> _Connection | None:
        if header.version is not None and header.version not in _VERSIONS:
            if len(data) >= MIN_INITIAL:  # answer only what could be a client's first flight
                negotiation = encode_quic_version_negotiation(
                    source_cid=header.destination_cid,
                    destination_cid=header.source_cid,
                    supported_versions=_VERSIONS,
                )
                self._out.append((negotiation, address))
            return None
        if (
            header.packet_type != QuicPacketType.INITIAL
            or len(data) < MIN_INITIAL
            or len(self._connections) >= self._service.limits.max_connections
        ):
            return None
        original, retried = header.destination_cid, None
        if self._retry is not None:
            if not header.token:
                self._send_retry(header, address, now)
                return None
            checked = self._retry.check(address, header.token, now)
            if checked is None:
                return None  # forged, expired, or from another address: dropped
            original, retried = checked
        quic = TaggedConnection(
            self._worker.row,
            configuration=self._config,
            session_ticket_fetcher=self._tickets.fetch,
            session_ticket_handler=self._tickets.issued,
            original_destination_connection_id=original,
            retry_source_connection_id=retried,
        )
        peer = peer_host(address)
        service = self._service
        adapter = Http3(service.limits, quic, address, tunnels=bool(service.endpoints))
        admitted = self._service.admit(peer)
        streams = Streams(self._service, peer, now, adapter, admitted, tls=QUIC_TLS)
        connection = _Connection(adapter, streams, now + self._service.limits.header_timeout_s)
        self._connections.add(connection)
        self._route(connection, header.destination_cid)
        self._route(connection, quic.host_cid)
        return connection

    def _send_retry(self, header: QuicHeader, address: NetworkAddress, now: float) -> None:
        assert self._retry is not None and header.version is not None
        source = bytes((self._worker.row,)) + os.urandom(_CID_LENGTH - 1)
        token = self._retry.make(address, header.destination_cid, source, now)
        retry = encode_quic_retry(
            version=header.version,
            source_cid=source,
            destination_cid=header.source_cid,
            original_destination_cid=header.destination_cid,
            retry_token=token,
        )
        self._out.append((retry, address))

    def _route(self, connection: _Connection, cid: bytes) -> None:
        connection.cids.add(cid)
        self._routes[cid] = connection

    def _carry_out(self, connection: _Connection, actions: list[Action], now: float) -> None:
        """What the driver answered (for QUIC, only CLOSE matters: its frames are already
        on the QUIC streams), the connection IDs issued and retired, and the datagrams."""
        adapter = connection.adapter
        for cid in adapter.issued:
            self._route(connection, cid)
        for cid in adapter.retired:
            connection.cids.discard(cid)
            self._routes.pop(cid, None)
        adapter.issued.clear()
        adapter.retired.clear()
        if CLOSE in actions:
            adapter.close()
        self._out += adapter.datagrams(now)
        if CLOSE in actions or adapter.terminated:
            self._forget(connection)
            return
        due = connection.streams.deadline
        if (timer := adapter.timer()) is not None:
            due = min(due, timer)
        if not adapter.confirmed:
            due = min(due, connection.handshake_by)
        elif not connection.shaken:
            connection.shaken = True
            self._service.handshake(True)
        self._timers.wake(connection, due)

    def _forget(self, connection: _Connection) -> None:
        if connection in self._connections:
            if not connection.shaken:  # a handshake that never completed
                connection.shaken = True
                self._service.handshake(connection.adapter.confirmed)
            self._connections.discard(connection)
            self._timers.forget(connection)
            for cid in connection.cids:
                if self._routes.get(cid) is connection:
                    del self._routes[cid]
            connection.streams.abort()
