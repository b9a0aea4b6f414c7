"""Which driver speaks on a new connection, and the hand-over when that changes.

`connect` picks: none for a barred client; TLS around HTTP when serving HTTPS; HTTP
otherwise. Over cleartext with h2c on, the first bytes decide between HTTP/1 and HTTP/2
with prior knowledge (RFC 9113 §3.3); the bytes already read go to the chosen driver
(h11's SWITCHED_PROTOCOL idea). Engines hold a `Link`, so a hand-over needs nothing
from them: the link's methods become the new driver's.
"""

from __future__ import annotations

from collections.abc import Callable

from lanthorn.driver.admission import PenaltyBox
from lanthorn.driver.context import Service
from lanthorn.driver.contract import CLOSE, DRAIN_QUIET_S, Action, Connection
from lanthorn.driver.http1 import HttpConnection
from lanthorn.driver.streams import Streams
from lanthorn.driver.tls import TlsSession
from lanthorn.protocol.http2 import PREFACE, Http2
from lanthorn.protocol.proxyheader import ProxyHeaderError
from lanthorn.protocol.proxyheader import parse as parse_proxy_header


def connect(service: Service, peer: str, now: float) -> Connection:
    """The driver for a newly accepted connection: HTTP, inside TLS when serving HTTPS,
    after a PROXY protocol header where the listener expects one (the client it names
    is the peer from then on). A client past its connection limit is still spoken to,
    so it learns why: 503 on HTTP/1, GOAWAY on HTTP/2 (nginx's limit_conn answers 503
    too)."""
    if service.proxied:
        return Link(lambda link: ProxyHeader(link, service, peer, now))
    return Link(speaker(service, peer, now))


def speaker(service: Service, peer: str, now: float) -> Callable[[Link], Connection]:
    """What speaks first to `peer`, given the link it will speak on."""
    if service.penalties.barred(peer, now):
        service.refused("penalty")
        return lambda link: Barred(peer, service.penalties, now)
    admitted = service.admit(peer)
    if service.tls is None:
        if not service.h2c:
            return lambda link: HttpConnection(service, peer, now, admitted, link.switch)
        return lambda link: Preface(link, service, peer, now, admitted)
    # Over TLS, HTTP/2 is always offered (ALPN h2): --no-h2c is about cleartext.
    deadline = now + service.limits.header_timeout_s
    return lambda link: TlsSession(
        lambda session: Link(
            lambda inner: Preface(inner, service, peer, now, admitted, secured=session)
        ),
        service,
        deadline,
    )


class Link:
    """What an engine drives for one socket: whichever driver speaks on it now.

    `switch` hands the connection to another driver. The methods engines call are that
    driver's own bound methods, kept in slots, so a call through the link costs what a
    direct call does; the properties are read through."""

    __slots__ = ("abort", "drained", "driver", "expired", "feed", "progressed", "shutdown")

    driver: Connection
    feed: Callable[[bytes, float], list[Action]]
    drained: Callable[..., list[Action]]  # (now, data=b"")
    progressed: Callable[[float], None]
    expired: Callable[[float], list[Action]]
    shutdown: Callable[[], list[Action]]
    abort: Callable[[], None]

    def __init__(self, first: Callable[[Link], Connection]) -> None:
        self.switch(first(self))

    def switch(self, driver: Connection) -> None:
        self.driver = driver
        self.feed = driver.feed
        self.drained = driver.drained
        self.progressed = driver.progressed
        self.expired = driver.expired
        self.shutdown = driver.shutdown
        self.abort = driver.abort

    @property
    def deadline(self) -> float:
        return self.driver.deadline

    @property
    def peer(self) -> str:
        return self.driver.peer

    @property
    def idle(self) -> bool:
        return self.driver.idle

    @property
    def multiplexed(self) -> bool:
        return self.driver.multiplexed

    @property
    def reading(self) -> bool:
        return self.driver.reading

    @property
    def lingers(self) -> bool:
        return self.driver.lingers


class _FirstBytes:
    """A connection whose first bytes are still awaited, to learn who speaks on it:
    nothing answered yet, so nothing to drain or linger over. The header timeout runs
    from accept."""

    __slots__ = ("_link", "_opened", "_seen", "_service", "deadline", "peer")

    idle = True
    multiplexed = False
    reading = True
    lingers = False  # nothing was answered

    def __init__(self, link: Link, service: Service, peer: str, now: float) -> None:
        self._link = link
        self._service = service
        self._seen = b""
        self._opened = now
        self.peer = peer
        self.deadline = now + service.limits.header_timeout_s

    def feed(self, data: bytes, now: float) -> list[Action]:
        raise NotImplementedError

    def drained(self, now: float, data: bytes = b"") -> list[Action]:
        return self.feed(data, now) if data else []

    def progressed(self, now: float) -> None:
        pass

    def expired(self, now: float) -> list[Action]:
        return [CLOSE] if now >= self.deadline else []

    def shutdown(self) -> list[Action]:
        """Graceful stop: its first request may be on its way (HttpConnection.shutdown)."""
        self.deadline = min(self.deadline, self._opened + DRAIN_QUIET_S)
        return []

    def abort(self) -> None:
        pass


class Preface(_FirstBytes):
    """A cleartext connection's first bytes, until they show HTTP/2 with prior knowledge
    (the 24-octet preface, RFC 9113 §3.3) or anything else (HTTP/1); then the link goes
    to that driver with every byte seen. The first request's clock runs from accept.
    Inside TLS (`secured`), the first bytes come after the handshake: the driver is told
    the TLS version agreed, for its access records."""

    __slots__ = ("_admitted", "_secured")

    def __init__(
        self, link: Link, service: Service, peer: str, now: float, admitted: bool,
        *, secured: TlsSession | None = None,
    ) -> None:  # fmt: skip
        super().__init__(link, service, peer, now)
        self._secured = secured
        self._admitted = admitted

    def feed(self, data: bytes, now: float) -> list[Action]:
        if not data:
            return [CLOSE]  # gone before it said anything
        seen = self._seen + data
        # Over TLS, ALPN has chosen (RFC 9113 §3.2): h2 must begin with the preface, or
        # the HTTP/2 driver ends the connection with PROTOCOL_ERROR (§3.4); http/1.1 is
        # HTTP/1 whatever follows. Without ALPN, the first bytes decide (§3.3).
        alpn = None if self._secured is None else self._secured.alpn
        if alpn is None and len(seen) < len(PREFACE) and PREFACE.startswith(seen):
            self._seen = seen
            return []  # could still be either
        service, peer, opened, admitted = self._service, self.peer, self._opened, self._admitted
        self._admitted = False  # the count is the new driver's to release
        tls = None if self._secured is None else self._secured.version
        driver: Connection
        if alpn == "h2" or (alpn is None and seen.startswith(PREFACE)):
            # Extended CONNECT is offered where WebSockets answer (RFC 8441 §3).
            adapter = Http2(service.limits, opened, tunnels=bool(service.endpoints))
            driver = Streams(service, peer, opened, adapter, admitted, tls=tls)
        else:
            driver = HttpConnection(service, peer, opened, admitted, self._link.switch, tls=tls)
        self._link.switch(driver)
        return driver.feed(seen, now)

    def abort(self) -> None:
        if self._admitted:
            self._admitted = False
            self._service.release(self.peer)


class ProxyHeader(_FirstBytes):
    """The PROXY protocol header a balancer sends first (protocol/proxyheader), until it
    is whole; then the connection is spoken to as if accepted from the client it names,
    with every byte after it. Anything else, or nothing within the header timeout,
    closes the connection unanswered (as nginx's `proxy_protocol` listeners do)."""

    __slots__ = ()

    def feed(self, data: bytes, now: float) -> list[Action]:
        seen = self._seen + data
        try:
            header = parse_proxy_header(seen) if data else None
        except ProxyHeaderError:
            return [CLOSE]
        if header is None:
            self._seen = seen
            return [] if data else [CLOSE]
        client, length = header
        link = self._link
        driver = speaker(self._service, client or self.peer, now)(link)
        link.switch(driver)
        rest = seen[length:]
        return driver.feed(rest, now) if rest else []


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
        until = box.hold(peer)
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
