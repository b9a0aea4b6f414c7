"""WebSockets on the streams of one multiplexed connection (RFC 8441; RFC 9220 for
HTTP/3): the sessions a `streams.Streams` carries, and the flow control that holds their
clients back.

An extended CONNECT to a WebSocket endpoint opens a `Session` on its stream. What the
client sends on the stream goes to the session as it arrives; what the session sends
goes to the connection's body pump through `queue`, as a body without an end until the
session ends (the stream's END_STREAM is TCP's FIN, RFC 8441 §5). The stream's receive
window reopens only while less than BUFFER of the session's output waits to be sent
(the pump says how much after each DATA frame: `sent`), so a client that sends without
reading is held back by flow control, not buffered for. The sessions' own clocks (PING,
live-reload polls) are among the connection's deadlines.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from lanthorn.core.pages import page_plan
from lanthorn.core.response import ResponsePlan
from lanthorn.driver.context import Service
from lanthorn.driver.ledger import Ledger
from lanthorn.driver.websocket import Session, endpoint, framing
from lanthorn.protocol.events import TunnelData, TunnelRequested
from lanthorn.protocol.multiplexed import StreamAdapter
from lanthorn.protocol.websocket import is_websocket_tunnel

BUFFER = 64 * 1024  # a tunnel's unsent output above which its input is held back
# Output for a stream: (stream, data, the session ends) → bytes still waiting on it.
Queue = Callable[[int, bytes, bool], int]


class _Tunnel:
    """A session, and the input it has taken but not acknowledged."""

    __slots__ = ("owed", "session")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.owed = 0


class Tunnels:
    __slots__ = ("_adapter", "_ledger", "_open", "_queue", "_service", "peer")

    def __init__(
        self, service: Service, ledger: Ledger, adapter: StreamAdapter, queue: Queue
    ) -> None:
        self._service = service
        self._ledger = ledger  # the connection's: each session's record goes there
        self.peer = ledger.peer
        self._adapter = adapter
        self._queue = queue
        self._open: dict[int, _Tunnel] = {}

    def __bool__(self) -> bool:
        return bool(self._open)

    def __iter__(self) -> Iterator[int]:
        """The streams with an open session."""
        return iter(self._open)

    @property
    def deadline(self) -> float:
        """The earliest of the sessions' clocks."""
        return min((t.session.deadline for t in self._open.values()), default=math.inf)

    def open(
        self, event: TunnelRequested, now: float, refused: bool, date: bytes, stamp: float
    ) -> ResponsePlan | None:
        """Open a WebSocket on the stream if one is asked for where an endpoint is, and
        answer it (200: RFC 8441 §5); else the plan to answer it with — 405 from the
        core, 503 when refused or over the memory budget, 400, 403 (a foreign Origin) or
        426 (the version spoken) from the handshake. None: answered (or the stream is
        gone); its access record is written when it closes."""
        service, request = self._service, event.request
        answers = endpoint(service, request)
        if (
            answers is None
            or not is_websocket_tunnel(request.headers)
            or refused
            or service.memory.exceeded
        ):
            return service.decide(request, now, stamp, self.peer, not refused)
        ws = framing(service, request, tunnel=True)
        status, fields = ws.open_tunnel(request.headers)
        if status != 200:
            return page_plan(status, fields) if fields else service.site.errors[status]
        if self._adapter.accept(event.stream_id, fields, date):
            session = Session(service, self._ledger, ws, request, now=now, endpoint=answers)
            self._open[event.stream_id] = _Tunnel(session)
        return None

    def take(self, event: TunnelData, now: float) -> None:
        """What the client sent on a stream (on one with no session: discarded)."""
        stream_id = event.stream_id
        tunnel = self._open.get(stream_id)
        if tunnel is None:
            self._adapter.acknowledge(stream_id, event.flow)
            return
        session = tunnel.session
        if event.data:
            session.receive(event.data, now)
        if event.ended:
            session.receive(b"", now)  # as TCP's FIN
        tunnel.owed += event.flow
        self._flush(stream_id, tunnel, now)

    def sent(self, stream_id: int, pending: int) -> None:
        """Some of the stream's output went out, `pending` bytes still wait: below
        BUFFER, its input may come again."""
        tunnel = self._open.get(stream_id)
        if tunnel is not None and tunnel.owed and pending < BUFFER:
            self._adapter.acknowledge(stream_id, tunnel.owed)
            tunnel.owed = 0

    def expired(self, now: float) -> list[int]:
        """Sessions whose clocks are due: changes reported, PINGs sent. Returns the
        streams whose client did not answer a PING within an interval: gone."""
        gone: list[int] = []
        for stream_id, tunnel in list(self._open.items()):
            if now >= tunnel.session.deadline:
                if tunnel.session.expired(now):
                    self._flush(stream_id, tunnel, now)
                else:
                    gone.append(stream_id)
        return gone

    def close(self, now: float) -> None:
        """Graceful stop: every session starts its closing handshake with 1001."""
        for stream_id, tunnel in list(self._open.items()):
            tunnel.session.close()
            self._flush(stream_id, tunnel, now)

    def forget(self, stream_id: int, now: float) -> None:
        """The stream is gone (reset): its session is over."""
        tunnel = self._open.pop(stream_id, None)
        if tunnel is not None:
            tunnel.session.finish(now)

    def finish(self, now: float) -> None:
        """The connection is closing: every session is over."""
        for tunnel in self._open.values():
            tunnel.session.finish(now)
        self._open.clear()

    def _flush(self, stream_id: int, tunnel: _Tunnel, now: float) -> None:
        """Queue what the session sends; when it ends, so does the stream; reopen the
        receive window while little of its output waits."""
        data, ended = tunnel.session.output(now)
        pending = self._queue(stream_id, data, ended)
        if ended:
            del self._open[stream_id]
            tunnel.session.finish(now)
            self._adapter.acknowledge(stream_id, tunnel.owed)  # the connection's window
        elif tunnel.owed and pending < BUFFER:
            self._adapter.acknowledge(stream_id, tunnel.owed)
            tunnel.owed = 0
