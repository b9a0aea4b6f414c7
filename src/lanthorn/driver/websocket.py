"""Open WebSockets (RFC 6455): what answers on one (`Session`), and the driver for one
that has a TCP connection to itself after HTTP/1's 101 (`WebSocketConnection`). Over
HTTP/2 (RFC 8441) a session lives on one stream, and `streams.Streams` carries it.

Two endpoints: "echo" answers every frame with itself; "live-reload" ignores what the
page sends and tells it, within POLL_S of the watcher's report, to swap stylesheets (all
changed files are CSS) or to reload. While nothing comes in or goes out a session sends
a PING every `ping_interval_s`, and gives the client up if nothing at all comes back
within the next interval. A graceful stop starts the closing handshake with 1001
(going away); the socket closes when the client answers it, or at the end of the grace
period. The access log gets one record when the socket is gone: its opening status,
every byte sent over it, and how long it lived.
"""

from __future__ import annotations

import json

from lanthorn.clock import monotonic, wall
from lanthorn.core.request import Request
from lanthorn.driver.context import Service
from lanthorn.driver.contract import CLOSE, Action
from lanthorn.driver.ledger import Ledger
from lanthorn.protocol.websocket import WebSocket

GOING_AWAY = 1001  # RFC 6455 §7.4.1
PROTOCOL = "WebSocket"  # the open-connections metric's label (over HTTP/1.1)
POLL_S = 0.1  # how often a live-reload socket looks for changes (engines sweep coarser)


def reload_message(paths: tuple[str, ...]) -> str:
    """What a live-reload page is told: the stylesheets to swap, or to reload."""
    if paths and all(path.endswith(".css") for path in paths):
        return json.dumps({"css": sorted(paths)})
    return json.dumps({"reload": True})


def endpoint(service: Service, request: Request) -> str | None:
    """What answers WebSockets at the request's path, if anything does."""
    return service.endpoints.get(request.target.partition(b"?")[0].decode("latin-1"))


def framing(service: Service, request: Request, tunnel: bool) -> WebSocket:
    """The framing for a socket opened by `request`: pages from the server's own host
    (either scheme) may open it, and those of the configured origins."""
    config = service.config.websocket
    host = request.headers.get(b"host", b"").decode("latin-1")
    origins = (f"http://{host}", f"https://{host}", *config.origins)
    return WebSocket(config.max_message_bytes, origins, config.deflate, tunnel)


class Session:
    """One open WebSocket's endpoint and clocks, whatever carries its bytes."""

    __slots__ = (
        "_echo",
        "_ledger",
        "_opened",
        "_ping_at",
        "_pinged",
        "_poll_at",
        "_request",
        "_seen",
        "_sent",
        "_service",
        "_stamp",
        "_ws",
        "peer",
    )

    def __init__(
        self, service: Service, ledger: Ledger, ws: WebSocket, request: Request, *, now: float,
        endpoint: str,
    ) -> None:  # fmt: skip
        self._service = service
        self._ledger = ledger  # the connection's (HTTP/1.1's, or the stream's HTTP/2 or 3)
        self.peer = ledger.peer
        self._ws = ws
        self._request: Request | None = request  # until the access record is written
        self._stamp = wall()
        self._opened = now
        self._sent = 0
        self._pinged = False
        self._echo = endpoint == "echo"
        self._seen = service.changes.latest[0]  # changes reported before it opened
        self._ping_at = now + service.config.websocket.ping_interval_s
        self._poll_at = now + POLL_S

    @property
    def deadline(self) -> float:
        """When `expired` is due: the next PING, or the next look for changes."""
        return self._ping_at if self._echo else min(self._ping_at, self._poll_at)

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the client (b"": it will send no more)."""
        ws = self._ws
        for frame in ws.receive(data):
            if self._echo:
                ws.echo(frame)
        self._pinged = False  # anything at all shows the client is there
        self._ping_at = now + self._service.config.websocket.ping_interval_s

    def expired(self, now: float) -> bool:
        """Report changes (live reload); PING when quiet for an interval. False: quiet
        for another interval since, so the client is gone."""
        if not self._echo and now >= self._poll_at:
            self._poll_at = now + POLL_S
            generation, paths = self._service.changes.latest
            if generation != self._seen:
                self._seen = generation
                self._ws.send(reload_message(paths))
        if now >= self._ping_at:
            if self._pinged:
                return False
            self._pinged = True
            self._ws.ping()
            self._ping_at = now + self._service.config.websocket.ping_interval_s
        return True

    def close(self) -> None:
        """Start the closing handshake with 1001: the server is going away."""
        self._ws.close(GOING_AWAY)

    def output(self, now: float) -> tuple[bytes, bool]:
        """Frames to send, and whether the socket ends after them. Sending is activity:
        the next PING is an interval away."""
        data, ended = self._ws.output()
        if data:
            self._sent += len(data)
            if not self._pinged:
                self._ping_at = now + self._service.config.websocket.ping_interval_s
        return data, ended

    def finish(self, now: float) -> None:
        """The socket is gone: its access record (once), with how long it lived (its
        duration too: the request ends when the socket does)."""
        if self._request is not None:
            request, self._request = self._request, None
            status = 101 if request.version == "1.1" else 200  # 200 over HTTP/2
            lived = now - self._opened
            self._ledger.record(request, status, self._sent, self._stamp, lived, lived=lived)


class WebSocketConnection:
    """A WebSocket that has its TCP connection to itself (after HTTP/1's 101)."""

    __slots__ = (
        "_counted",
        "_held",
        "_open",
        "_send_by",
        "_service",
        "_session",
        "_writing",
        "peer",
    )

    multiplexed = True  # read between batches: PINGs and CLOSEs arrive during an echo
    lingers = True  # the closing handshake's last frame must reach the client

    def __init__(self, service: Service, session: Session, *, now: float, counted: bool) -> None:
        self._session = session
        self._service = service
        self.peer = session.peer
        self._counted = counted  # released once, by `abort`
        self._open = True  # among the worker's open WebSockets (metrics), until `abort`
        service.connected(PROTOCOL)
        self._held = 0
        self._writing = False
        self._send_by = now

    @property
    def deadline(self) -> float:
        """While a batch is written, the send timeout; else the session's clock."""
        return self._send_by if self._writing else self._session.deadline

    @property
    def idle(self) -> bool:
        return not self._writing

    @property
    def reading(self) -> bool:
        return self._service.memory.reads(self._held)

    def feed(self, data: bytes, now: float) -> list[Action]:
        """Frames from the client (b"": it closed its side)."""
        self._session.receive(data, now)
        return self._flush(now)

    def drained(self, now: float, data: bytes = b"") -> list[Action]:
        self._writing = False
        self._held = self._service.memory.update(self._held, 0)
        return self.feed(data, now) if data else self._flush(now)

    def progressed(self, now: float) -> None:
        if self._writing:
            self._send_by = now + self._service.limits.send_timeout_s

    def expired(self, now: float) -> list[Action]:
        if now < self.deadline:
            return []
        if self._writing or not self._session.expired(now):
            return [CLOSE]  # the client stopped reading, or is gone
        return self._flush(now)

    def shutdown(self) -> list[Action]:
        """Graceful stop: 1001, then close once the client answers (may be called
        again: the handshake starts once)."""
        self._session.close()
        return [] if self._writing else self._flush(monotonic())

    def abort(self) -> None:
        """The socket is gone: release its count and memory, and log it (once)."""
        if self._counted:
            self._counted = False
            self._service.release(self.peer)
        self._session.finish(monotonic())
        self._held = self._service.memory.update(self._held, 0)
        if self._open:
            self._open = False
            self._service.disconnected(PROTOCOL)

    def _flush(self, now: float) -> list[Action]:
        data, ended = self._session.output(now)
        out: list[Action] = []
        if data:
            out.append(data)
            self._writing = True
            self._send_by = now + self._service.limits.send_timeout_s
            self._held = self._service.memory.update(self._held, len(data))
        if ended:
            out.append(CLOSE)
        return out
