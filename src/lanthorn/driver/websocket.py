"""One open WebSocket (RFC 6455), on the connection HTTP/1 handed over after its 101.

Frames come in through the adapter; what an endpoint answers goes out in batches like
any other driver's, under the same limits: the send timeout while a batch is written, and
while idle a PING every `ping_interval_s`, closing the socket if nothing at all comes
back within the next interval. A graceful stop starts the closing handshake with 1001
(going away); the socket closes when the client answers it, or at the end of the grace
period. The access log gets one record when the socket is gone: the 101 and every byte
sent over the socket.
"""

from __future__ import annotations

from lanthorn.clock import monotonic, wall
from lanthorn.core.request import Request
from lanthorn.driver.context import Service
from lanthorn.driver.contract import CLOSE, Action
from lanthorn.protocol.websocket import WebSocket

GOING_AWAY = 1001  # RFC 6455 §7.4.1


class WebSocketConnection:
    __slots__ = (
        "_counted",
        "_deadline",
        "_held",
        "_pinged",
        "_request",
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
        counted: bool,
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
        self._deadline = now + service.config.websocket.ping_interval_s

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
            ws.echo(frame)
        self._pinged = False  # anything at all shows the client is there
        return self._flush(now)

    def drained(self, now: float, data: bytes = b"") -> list[Action]:
        self._writing = False
        self._hold(0)
        if data:
            return self.feed(data, now)
        self._deadline = now + self._service.config.websocket.ping_interval_s
        return []

    def progressed(self, now: float) -> None:
        if self._writing:
            self._deadline = now + self._service.limits.send_timeout_s

    def expired(self, now: float) -> list[Action]:
        """Idle for an interval: PING; idle for another since: the client is gone."""
        if now < self._deadline:
            return []
        if self._pinged:
            return [CLOSE]
        self._pinged = True
        self._ws.ping()
        return self._flush(now)

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
        self._hold(0)

    def _flush(self, now: float) -> list[Action]:
        data, ended = self._ws.output()
        out: list[Action] = []
        if data:
            out.append(data)
            self._sent += len(data)
            self._writing = True
            self._deadline = now + self._service.limits.send_timeout_s
            self._hold(len(data))
        if ended:
            out.append(CLOSE)
        return out

    def _hold(self, held: int) -> None:
        """Tell the worker's memory budget what this socket holds now."""
        if held != self._held:
            self._service.memory.hold(held - self._held)
            self._held = held
