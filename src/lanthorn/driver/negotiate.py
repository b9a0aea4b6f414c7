"""Which driver a new connection gets: none for a barred client, TLS around HTTP when
serving HTTPS, HTTP otherwise."""

from __future__ import annotations

from lanthorn.driver.admission import PenaltyBox
from lanthorn.driver.context import Service
from lanthorn.driver.contract import CLOSE, Action, Connection
from lanthorn.driver.http1 import HttpConnection
from lanthorn.driver.tls import TlsSession


def connect(service: Service, peer: str, now: float) -> Connection:
    """The driver for a newly accepted connection: HTTP, inside TLS when serving HTTPS.
    A client past its connection limit is still spoken to, so it learns why: 503 on
    HTTP/1, GOAWAY on HTTP/2 (nginx's limit_conn answers 503 too)."""
    if service.penalties.barred(peer, now):
        return Barred(peer, service.penalties, now)
    admitted = service.admit(peer)
    if service.tls is None:
        return HttpConnection(service, peer, now, service.h2c, admitted)
    # Over TLS, HTTP/2 is always offered (ALPN h2): --no-h2c is about cleartext.
    conn = HttpConnection(service, peer, now, True, admitted)
    return TlsSession(conn, service.tls, now + service.limits.header_timeout_s)


class Barred:
    """A connection from a client in the penalty box: unheard and unanswered — no TLS,
    no HTTP/2 state. Held unread until the client's bar ends (PenaltyBox.hold), then
    closed; when the worker holds enough of them already, closed at its first sign of
    life (or at once by the deadline)."""

    __slots__ = ("_box", "deadline", "peer", "reading")

    idle = True
    multiplexed = False
    lingers = False  # nothing was answered: closed at once, reset if it sent anything

    def __init__(self, peer: str, box: PenaltyBox, now: float) -> None:
        self.peer = peer
        until = box.hold(peer, now)
        self._box = box if until else None
        self.reading = not until
        self.deadline = until or now

    def feed(self, data: bytes, now: float) -> list[Action]:
        return [CLOSE]

    def drained(self, now: float, data: bytes = b"") -> list[Action]:
        return [CLOSE]

    def progressed(self, now: float) -> None:
        pass

    def expired(self, now: float) -> list[Action]:
        return [CLOSE]

    def shutdown(self) -> list[Action]:
        return [CLOSE]

    def abort(self) -> None:
        if self._box is not None:
            self._box.unhold()
            self._box = None
