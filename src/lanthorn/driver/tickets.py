"""TLS session tickets for QUIC resumption and 0-RTT (RFC 9001 §4.5-4.6, RFC 8446
§4.6.1), shared by the server's workers.

qh3 draws a ticket's identity at random and leaves keeping the ticket (its resumption
secret) to the application, which finds it again when a client offers that identity.
Every worker keeps the tickets any worker issued: an issued ticket is also queued,
encoded, in `shared` for the engine to send to the other workers, which `learn` it.

A ticket is used once (`fetch` takes it; the resumed connection gets a new one, RFC 8446
§C.4), so a 0-RTT flight replayed to the same worker is refused. A copy replayed to
another worker is accepted there once: early data is why only safe methods are served
from it (http3, RFC 9114 §10.9, RFC 8470). At most LIMIT tickets are kept, the oldest
dropped first; qh3 refuses expired ones.
"""

from __future__ import annotations

import datetime
import struct
from collections import OrderedDict
from typing import cast

from qh3.tls import CipherSuite, SessionTicket

LIMIT = 8192
_EPOCH = datetime.datetime(1970, 1, 1)  # qh3's ticket times are naive UTC
_FIXED = struct.Struct("!IHddq")  # age_add, cipher suite, not before, not after, early max
_LENGTH = struct.Struct("!H")


class SessionTickets:
    """One worker's store: what it issued and what the others told it."""

    __slots__ = ("_limit", "_share", "_tickets", "shared")

    def __init__(self, share: bool, limit: int = LIMIT) -> None:
        self._limit = limit
        self._share = share  # there are other workers to tell
        self._tickets: OrderedDict[bytes, SessionTicket] = OrderedDict()
        self.shared: list[bytes] = []  # issued here, for the other workers

    def __len__(self) -> int:
        return len(self._tickets)

    def issued(self, ticket: SessionTicket) -> None:
        """qh3's session_ticket_handler: a connection of this worker sent `ticket`."""
        self._keep(ticket)
        if self._share:
            self.shared.append(encode(ticket))

    def learn(self, message: bytes) -> None:
        """A ticket another worker issued (what `encode` made; anything else is ignored)."""
        try:
            self._keep(decode(message))
        except (ValueError, struct.error, UnicodeDecodeError):
            return

    def fetch(self, identity: bytes) -> SessionTicket | None:
        """qh3's session_ticket_fetcher: the ticket a client offers, taken (used once)."""
        return self._tickets.pop(identity, None)

    def _keep(self, ticket: SessionTicket) -> None:
        self._tickets[ticket.ticket] = ticket
        while len(self._tickets) > self._limit:
            self._tickets.popitem(last=False)


def _seconds(moment: datetime.datetime) -> float:
    return (moment - _EPOCH).total_seconds()


def _moment(seconds: float) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(seconds=seconds)


def _opaque(value: bytes) -> bytes:
    return _LENGTH.pack(len(value)) + value


def encode(ticket: SessionTicket) -> bytes:
    early = -1 if ticket.max_early_data_size is None else ticket.max_early_data_size
    parts = [
        _FIXED.pack(
            ticket.age_add,
            int(ticket.cipher_suite),
            _seconds(ticket.not_valid_before),
            _seconds(ticket.not_valid_after),
            early,
        ),
        _opaque(ticket.resumption_secret),
        _opaque(b"" if ticket.server_name is None else b"=" + ticket.server_name.encode()),
        _opaque(ticket.ticket),
        _LENGTH.pack(len(ticket.other_extensions)),
    ]
    for kind, value in ticket.other_extensions:
        parts += (_LENGTH.pack(kind), _opaque(value))
    return b"".join(parts)


class _Reader:
    __slots__ = ("_at", "_data")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def unpack(self, layout: struct.Struct) -> tuple[int | float, ...]:
        values = layout.unpack_from(self._data, self._at)
        self._at += layout.size
        return tuple(values)

    def opaque(self) -> bytes:
        (length,) = self.unpack(_LENGTH)
        value = self._data[self._at : self._at + int(length)]
        if len(value) != length:
            raise ValueError("cut short")
        self._at += int(length)
        return value

    def done(self) -> None:
        if self._at != len(self._data):
            raise ValueError("trailing bytes")


def decode(message: bytes) -> SessionTicket:
    """What `encode` made; ValueError (or struct.error) for anything else."""
    reader = _Reader(message)
    age_add, suite, before, after, early = reader.unpack(_FIXED)
    secret, name, identity = reader.opaque(), reader.opaque(), reader.opaque()
    (count,) = reader.unpack(_LENGTH)
    extensions = []
    for _ in range(int(count)):
        (kind,) = reader.unpack(_LENGTH)
        extensions.append((int(kind), reader.opaque()))
    reader.done()
    return SessionTicket(
        age_add=int(age_add),
        cipher_suite=CipherSuite(int(suite)),
        not_valid_after=_moment(after),
        not_valid_before=_moment(before),
        resumption_secret=secret,
        # qh3 types it str, but a server's tickets have None (no SNI of its own).
        server_name=cast(str, name[1:].decode() if name else None),
        ticket=identity,
        max_early_data_size=None if early < 0 else int(early),
        other_extensions=extensions,
    )
