"""One open WebSocket (RFC 6455), on the connection HTTP/1 handed over after its 101.

Two endpoints: "echo" answers every frame with itself; "live-reload" ignores what the
page sends and tells it, within POLL_S of the watcher's report, to swap stylesheets (all
changed files are CSS) or to reload. Frames come in through the adapter; what goes out
leaves in batches like any other driver's, under the same limits: the send timeout while
a batch is written, and while idle a PING every `ping_interval_s`, closing the socket if
nothing at all comes back within the next interval. A graceful stop starts the closing
handshake with 1001 (going away); the socket closes when the client answers it, or at the
end of the grace period. The access log gets one record when the socket is gone: the 101
and every byte sent over the socket.
"""

from __future__ import annotations

import json

from lanthorn.clock import monotonic, wall
from lanthorn.core.request import Request
from lanthorn.driver.context import Service
from lanthorn.driver.contract import CLOSE, Action
from lanthorn.protocol.websocket import WebSocket

GOING_AWAY = 1001  # RFC 6455 §7.4.1
POLL_S = 0.1  # how often a live-reload socket looks for changes (engines sweep coarser)


def reload_message(paths: tuple[str, ...]) -> str:
    """What a live-reload page is told: the stylesheets to swap, or to reload."""
    if paths and all(path.endswith(".css") for path in paths):
        return json.dumps({"css": sorted(paths)})
    return json.dumps({"reload": True})


class WebSocketConnection:
    __slots__ = (
        "_counted",
        "_deadline",
        "_echo",
        "_held",
        "_ping_at",
        "_pinged",
        "_request",
        "_seen",
        "_sent",
        "_service",
        "_stamp",
        "_writing",
        "_ws",
        "peer",
    )

    multiplexed = True  # read between batches: PINGs and CLOSEs arrive during an echo
    lingers = True  # the closing handshake's last frame must reach the client

    def __init__(
        self, service: Service, peer: str, ws: WebSocket, request: Request, *, now: float,
        counted: bool, endpoint: str,
    ) -> None:  # fmt: skip
        self._service = service
        self.peer = peer
        self._ws = ws
        self._request: Request | None = request  # until the access record is written
        self._counted = counted  # released once, by `abort`
        self._stamp = wall()
        self._sent = 0
        self._held = 0
        self._writing = False
        self._pinged = False
        self._echo = endpoint == "echo"
        self._seen = service.changes.latest[0]  # changes reported before it opened
        self._ping_at = 0.0
        self._deadline = 0.0
        self._idle_from(now)

    @property
    def deadline(self) -> float:
        return self._deadline

    @property
    def idle(self) -> bool:
        return not self._writing

    @property
    def reading(self) -> bool:
        return self._service.memory.reads(self._held)

    def feed(self, data: bytes, now: float) -> list[Action]:
        """Frames from the client (b"": it closed its side)."""
        ws = self._ws
        for frame in ws.receive(data):
            if self._echo:
                ws.echo(frame)
        self._pinged = False  # anything at all shows the client is there
        return self._flush(now)

    def drained(self, now: float, data: bytes = b"") -> list[Action]:
        self._writing = False
        self._held = self._service.memory.update(self._held, 0)
        if data:
            return self.feed(data, now)
        self._idle_from(now)
        return []

    def progressed(self, now: float) -> None:
        if self._writing:
            self._deadline = now + self._service.limits.send_timeout_s

    def expired(self, now: float) -> list[Action]:
        """Changes to report (live reload); idle for an interval: PING; idle for another
        since: the client is gone."""
        if now < self._deadline:
            return []
        if not self._echo:
            generation, paths = self._service.changes.latest
            if generation != self._seen:
                self._seen = generation
                self._ws.send(reload_message(paths))
        if now >= self._ping_at:
            if self._pinged:
                return [CLOSE]
            self._pinged = True
            self._ws.ping()
        out = self._flush(now)
        if not out:
            self._idle_from(now, keep_ping=True)
        return out

    def shutdown(self) -> list[Action]:
        """Graceful stop: 1001, then close once the client answers (may be called
        again: the handshake starts once)."""
        self._ws.close(GOING_AWAY)
        return self._flush(monotonic())

    def abort(self) -> None:
        """The socket is gone: release its count and memory, and log it (once)."""
        if self._counted:
            self._counted = False
            self._service.release(self.peer)
        if self._request is not None:
            self._service.record(self.peer, self._request, 101, self._sent, self._stamp)
            self._request = None
        self._held = self._service.memory.update(self._held, 0)

    def _idle_from(self, now: float, keep_ping: bool = False) -> None:
        """Nothing being written: the next PING is due an interval from now (or stays
        where it was), and a live-reload socket looks for changes every POLL_S."""
        if not keep_ping:
            self._ping_at = now + self._service.config.websocket.ping_interval_s
        self._deadline = self._ping_at if self._echo else min(self._ping_at, now + POLL_S)

    def _flush(self, now: float) -> list[Action]:
        data, ended = self._ws.output()
        out: list[Action] = []
        if data:
            out.append(data)
            self._sent += len(data)
            self._writing = True
            self._deadline = now + self._service.limits.send_timeout_s
            self._held = self._service.memory.update(self._held, len(data))
        if ended:
            out.append(CLOSE)
        return out
