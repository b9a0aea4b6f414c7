"""The HTTP/1.1 connection driver: one per connection, shared by every engine.

An engine feeds it bytes and carries out what it answers, in order:
- `bytes` — write them;
- `FileBody` — send that file slice (sendfile where possible), then close it;
- `CLOSE` — close the connection once everything before it is written.
After carrying out a batch completely the engine calls `drained(now)`, which may answer
more (requests held back to bound memory). When `now` passes `deadline`, the engine calls
`expired(now)`. An engine never feeds a connection while a batch is still being written,
so per connection at most one batch — a bounded amount of memory and open files — is in
flight (pipelined requests beyond the budget wait, parsed, in `_waiting`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from lanthorn.clock import monotonic, wall
from lanthorn.core.response import Body, FileBody
from lanthorn.driver.admission import MemoryBudget
from lanthorn.driver.context import NO_BODY_STATUSES, Service
from lanthorn.driver.contract import BATCH_BYTES, CLOSE, DRAIN_QUIET_S, Action, Connection
from lanthorn.driver.ledger import Ledger
from lanthorn.driver.websocket import Session, WebSocketConnection, endpoint, framing
from lanthorn.protocol.events import Event, ProtocolFailed, RequestReceived, UpgradeRequested
from lanthorn.protocol.http1 import Http1
from lanthorn.protocol.websocket import is_websocket_upgrade

# One HTTP/1 batch holds at most this many open file bodies (and about BATCH_BYTES of
# in-memory bodies): the bound on what a client that pipelines without reading can make a
# connection hold.
_BATCH_FILES = 4
PROTOCOL = "HTTP/1.1"  # the open-connections metric's label (HTTP/1.0 requests too)


class HttpConnection:
    __slots__ = (
        "_adapter",
        "_batch_bytes",
        "_closing",
        "_counted",
        "_deadline",
        "_handover",
        "_head_started",
        "_held",
        "_idle_since",
        "_ledger",
        "_open",
        "_service",
        "_waiting",
        "_writing",
        "peer",
    )

    lingers = True  # after CLOSE, what was sent must reach the client (RFC 9112 §9.6)

    def __init__(
        self,
        service: Service,
        peer: str,
        now: float,
        admitted: bool = True,
        handover: Callable[[Connection], None] | None = None,
        *,
        tls: str | None = None,
    ) -> None:
        self._service = service
        self._ledger = Ledger(service.access_log, peer, tls, clients=service.clients)
        self._open = True  # among the worker's open HTTP/1 connections (metrics)
        service.connected(PROTOCOL)
        # How to give the connection to another driver (a WebSocket after its 101);
        # None: this connection cannot switch protocols.
        self._handover = handover
        # Counted among its client's connections (released once, by `abort`); a
        # connection that was not is refused: each request gets 503, then it closes.
        self._counted = admitted
        self._adapter = Http1(service.limits)
        self._waiting: deque[Event] = deque()
        self._writing = False
        self._closing = False
        # When the request head being received began; the first request's clock starts
        # at accept, so a client that waits before it trickles gains nothing (nginx's
        # client_header_timeout). None while no head is due (keep-alive idle, writing).
        self._head_started: float | None = now
        # When the connection last fell idle (accepted, or a response written): on a
        # graceful stop it is closed only once it has been idle for DRAIN_QUIET_S.
        self._idle_since = now
        # Memory held for the client, as the worker's budget knows it: the batch being
        # written and a head still arriving.
        self._batch_bytes = 0
        self._held = 0
        self.peer = peer
        # The first request must arrive within the header timeout (nginx does the same).
        self._deadline = now + service.limits.header_timeout_s

    @property
    def deadline(self) -> float:
        """When `expired` is due."""
        return self._deadline

    @property
    def idle(self) -> bool:
        """Nothing half-received, queued or being written: safe to close at any moment."""
        return not (self._writing or self._waiting or self._adapter.in_message)

    def feed(self, data: bytes, now: float) -> list[Action]:
        """Bytes from the peer; b"" means the peer closed its side."""
        if not data or self._closing:
            self._closing = True
            return [CLOSE]
        self._waiting.extend(self._adapter.receive(data))
        out = self._answer(now, False)
        self._account()
        return out

    @property
    def reading(self) -> bool:
        """Over the worker's memory budget, a connection that holds more than a little
        is not read until the budget is back under: writes drain what it holds, and
        reading would only add to it (new heads, requests to answer). The rule is
        MemoryBudget.reads, inlined: engines ask once per request."""
        return not self._service.memory.exceeded or self._held < MemoryBudget.SMALL

    multiplexed = False

    def drained(self, now: float, data: bytes = b"") -> list[Action]:
        """Everything answered so far has been written; `data` arrived meanwhile."""
        was_writing = self._writing
        self._writing = False
        self._batch_bytes = 0
        self._ledger.written(now)
        if data and not self._closing:
            self._waiting.extend(self._adapter.receive(data))
        out = self._answer(now, was_writing)
        self._account()
        return out

    def progressed(self, now: float) -> None:
        """Some of the batch was written: the send timeout counts from the last progress
        (like nginx's send_timeout), so a slow but reading client is never cut."""
        if self._writing:
            self._deadline = now + self._service.limits.send_timeout_s

    def expired(self, now: float) -> list[Action]:
        """Called when `now >= deadline`: 408 for a stalled request, else just close."""
        if now < self._deadline:
            return []
        self._closing = True
        if self._adapter.in_message and not self._writing:
            return [*self._respond_error(408, now), CLOSE]
        return [CLOSE]

    def shutdown(self) -> list[Action]:
        """Graceful stop: busy connections close after their response (it says
        `Connection: close`); idle ones once they have been idle for DRAIN_QUIET_S (the
        deadline moves there). A client may have sent its next request on a keep-alive
        connection that just fell idle: closing that at once would lose the request (a
        reset, RFC 9112 §9.6), while a client that sends within the quiet time gets its
        answer and a close."""
        if self.idle and not self._closing:
            self._deadline = min(self._deadline, self._idle_since + DRAIN_QUIET_S)
        return []

    def abort(self) -> None:
        """The socket is gone: release the client's connection count and the memory
        accounted (HTTP/1 holds no files itself: the engine holds those it was handed);
        the records of its last batch are written now (ledger)."""
        self._ledger.written(monotonic())
        self._gone()
        if self._counted:
            self._counted = False
            self._service.release(self.peer)
        self._held = self._service.memory.update(self._held, 0)
        self._batch_bytes = 0

    # ---------------------------------------------------------------------------------------

    def _answer(self, now: float, just_written: bool) -> list[Action]:
        out: list[Action] = []
        waiting = self._waiting
        if waiting:
            stamp = wall()
            date = self._service.dates.value(stamp)
            files = 0
            size = 0
            closing = False
            while waiting and files < _BATCH_FILES and size < BATCH_BYTES and not closing:
                event = waiting.popleft()
                if isinstance(event, ProtocolFailed):
                    closing = True
                    out += self._respond_error(event.error.status, now)
                    break
                assert isinstance(event, RequestReceived)
                if type(event) is UpgradeRequested and self._upgrade(event, now, stamp, out):
                    return out  # a WebSocket now, or its handshake refused and closing
                body, keeps = self._respond(event, now, date, stamp, out)
                if type(body) is bytes:
                    size += len(body)
                else:
                    for chunk in body if isinstance(body, tuple) else (body,):
                        if isinstance(chunk, FileBody):
                            files += 1
                        else:
                            size += len(chunk)
                closing = not keeps
            if closing:
                self._closing = True
                waiting.clear()
                out.append(CLOSE)
            # Batches of small answers are not worth the bookkeeping: what a connection
            # can hold that way is bounded by the batch's size anyway.
            self._batch_bytes = size if size >= MemoryBudget.SMALL else 0
        self._reschedule(now, bool(out), just_written)
        if not out and self._service.draining:
            self.shutdown()
        return out

    def _upgrade(
        self, event: UpgradeRequested, now: float, stamp: float, out: list[Action]
    ) -> bool:
        """Open a WebSocket if the request asks for one where an endpoint is: its 101,
        then the connection goes to the WebSocket driver with what followed the request.
        False: not a WebSocket request for an endpoint (answered as a plain request)."""
        service, request = self._service, event.request
        answers = endpoint(service, request)
        if (
            self._handover is None
            or answers is None
            or not is_websocket_upgrade(request.method, request.headers)
            or not self._counted
            or service.memory.exceeded
        ):
            return False
        ws = framing(service, request, tunnel=False)
        answer, status = ws.handshake(request.target, request.headers)
        out.append(answer)
        self._waiting.clear()
        self._closing = True
        if status != 101:  # 400, 403 (a foreign Origin) or 426 (version)
            self._ledger.answered(request, status, len(answer), stamp, now)
            out.append(CLOSE)
            return True
        # Requests answered before it in this batch are logged now: this driver hears no
        # more of the batch (their end is the hand-over, just before it is written).
        self._ledger.written(now)
        session = Session(service, self._ledger, ws, request, now=now, endpoint=answers)
        self._gone()  # a WebSocket now, counted as one
        socket = WebSocketConnection(service, session, now=now, counted=self._counted)
        self._counted = False  # the WebSocket releases the count now
        self._held = service.memory.update(self._held, 0)
        self._batch_bytes = 0
        self._handover(socket)
        out += socket.feed(event.rest, now) if event.rest else []
        return True

    def _respond(
        self, event: RequestReceived, now: float, date: bytes, stamp: float, out: list[Action]
    ) -> tuple[Body, bool]:
        """Decide one request and append its wire form to `out`; returns the body that
        was sent (b"" when none), for the batch's accounting, and whether the connection
        stays open."""
        request = event.request
        service = self._service
        plan = service.decide(request, now, stamp, self.peer, self._counted)
        # An overloaded server (503) closes: the client's next try may reach another.
        keep_alive = event.keep_alive and not service.draining and plan.status != 503
        send_body = request.method != b"HEAD" and plan.status not in NO_BODY_STATUSES
        if not send_body:
            plan.close()
        out += self._adapter.response(plan, send_body, keep_alive, date)
        self._ledger.answered(
            request, plan.status, plan.body_length if send_body else 0, stamp, now
        )
        return (plan.body if send_body else b""), keep_alive

    def _account(self) -> None:
        """Tell the worker's budget what this connection holds now."""
        adapter = self._adapter
        held = self._batch_bytes + (adapter.buffered if adapter.in_message else 0)
        if held != self._held:  # (nearly always equal: no call on the hot path)
            self._held = self._service.memory.update(self._held, held)

    def _reschedule(self, now: float, writing: bool, just_written: bool) -> None:
        limits = self._service.limits
        if self._adapter.in_message:
            if self._head_started is None:
                self._head_started = now
        elif writing or just_written:
            self._head_started = None  # a request was complete; no head is under way
        if writing:
            self._writing = True
            self._deadline = now + limits.send_timeout_s
        elif self._head_started is not None:
            if just_written:
                # The next request's head began while we were writing (and not reading):
                # its clock starts now, or a long download would make it time out unread.
                self._head_started = now
            self._deadline = self._head_started + limits.header_timeout_s
        elif just_written:
            self._idle_since = now
            self._deadline = now + limits.keepalive_timeout_s
        # Otherwise (only blank lines arrived) the running clock is left alone, so bytes
        # that start no request cannot hold a connection open.

    def _gone(self) -> None:
        """No longer among the open HTTP/1 connections (closed, or a WebSocket now)."""
        if self._open:
            self._open = False
            self._service.disconnected(PROTOCOL)

    def _respond_error(self, status: int, now: float) -> list[Action]:
        plan = self._service.site.errors[status]
        stamp = wall()
        self._ledger.answered(None, status, plan.body_length, stamp, now)
        out: list[Action] = []
        out += self._adapter.response(plan, True, False, self._service.dates.value(stamp))
        return out
