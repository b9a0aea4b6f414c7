"""The HTTP/2 connection driver: many streams over one connection.

Same contract with engines as `http1.HttpConnection` (negotiate hands a connection to it
when the client opens with the HTTP/2 preface), but a body never leaves as a `FileBody`:
the driver reads files with pread into DATA frames that fit the flow-control windows
(RFC 9113 §5.2), one frame per stream in turn (round robin), so concurrent downloads
share the connection. It is `multiplexed`: engines hand it the input that arrived while a batch
was written (`drained(now, data)`), so a reset, a PING or a new request is seen between
batches of a large download, not after it.

Bounds: one batch carries about BATCH_BYTES of frames; at most _OPEN_FILES streams hold
an open file at once. A request whose answer needs another file waits, undecided, in
`_deferred` while the others (cached small files, errors) are answered at once.

Clocks (each a deadline; `deadline` is the earliest that applies):
- a batch being written must make progress within the send timeout;
- a stream with body left must move DATA within the send timeout (control frames such
  as PING acknowledgements do not count), else the client gets GOAWAY;
- each request must arrive whole within the header timeout, else 408 on that stream;
- an idle connection lives for the keep-alive timeout (the header timeout until the
  first request), then gets GOAWAY — unless a tunnel is open on it.

WebSockets on streams (RFC 8441) are `tunnels.Tunnels`': their output is queued here
like a body without an end and pumped within the windows as any other.

The adapter is injected (`StreamAdapter`): HTTP/2's today, HTTP/3's next.
"""

from __future__ import annotations

from collections import deque

from lanthorn.clock import monotonic, wall
from lanthorn.core.request import Request
from lanthorn.core.response import FileBody, ResponsePlan
from lanthorn.driver.context import NO_BODY_STATUSES, Service, log_error
from lanthorn.driver.contract import BATCH_BYTES, CLOSE, Action
from lanthorn.driver.ledger import Ledger
from lanthorn.driver.outgoing import Outgoing, order
from lanthorn.driver.tunnels import Tunnels
from lanthorn.protocol import priority
from lanthorn.protocol.events import (
    PriorityChanged,
    ProtocolFailed,
    RequestReceived,
    StreamFailed,
    StreamReset,
    TunnelData,
    TunnelRequested,
)
from lanthorn.protocol.multiplexed import StreamAdapter

_OPEN_FILES = 16
# What an incremental stream sends in its turn (one HTTP/2 frame at the smallest frame
# size) before the next takes its own; a stream that is not incremental sends all its
# window and the batch allow, read from its file in one call.
_QUANTUM = 16_384


class Streams:
    __slots__ = (
        "_adapter",
        "_batch_by",
        "_closing",
        "_counted",
        "_deferred",
        "_goaway_sent",
        "_held",
        "_idle_by",
        "_ledger",
        "_max_priorities",
        "_open",
        "_open_files",
        "_priorities",
        "_refused",
        "_send_by",
        "_sending",
        "_served",
        "_service",
        "_spent",
        "_tunnels",
        "_waiting",
        "_worked",
        "_writing",
        "deadline",
        "peer",
    )

    multiplexed = True

    def __init__(
        self, service: Service, peer: str, now: float, adapter: StreamAdapter,
        admitted: bool = True, *, tls: str | None = None,
    ) -> None:  # fmt: skip
        self._service = service
        # Over QUIC no batch is reported written: records go out as they are answered.
        self._ledger = Ledger(
            service.access_log, peer, tls, adapter.version,
            immediate=not adapter.batched, clients=service.clients,
        )  # fmt: skip
        self._open = True  # among the worker's open connections of its protocol (metrics)
        service.connected(adapter.protocol)
        # Past the client's connection limit: GOAWAY at once (streams it opened
        # meanwhile get 503), then close.
        self._refused = not admitted
        self._counted = admitted  # among its client's connections: released by `abort`
        self._held = 0  # bytes held for the client, as the worker's budget knows it
        self._adapter = adapter
        self._waiting: deque[RequestReceived] = deque()
        self._deferred: deque[RequestReceived] = deque()  # need a file; none is free
        self._sending: dict[int, Outgoing] = {}  # insertion order is the round robin
        self._spent = 0  # body bytes sent this turn before the pump (`_start`)
        self._tunnels = Tunnels(service, self._ledger, adapter, self._queue)
        self._open_files = 0
        # Priority field values a PRIORITY_UPDATE gave streams not answered yet.
        self._priorities: dict[int, bytes] = {}
        self._max_priorities = service.limits.max_streams
        self._writing = False
        self._closing = False
        self._goaway_sent = False
        self._served = False  # some request has been answered
        # Response work (a stream answered or DATA sent) since the idle clock last
        # started: only that restarts it, never a PING or SETTINGS acknowledgement.
        self._worked = False
        self.peer = peer
        limits = service.limits
        self._batch_by = self._send_by = now + limits.send_timeout_s
        self._idle_by = now + limits.header_timeout_s  # the first request's clock
        self.deadline = self._idle_by

    multiplexed = True  # engines read between batches: resets and requests still arrive
    lingers = True  # after GOAWAY, what was sent must reach the client

    @property
    def reading(self) -> bool:
        """Over the worker's memory budget, not while holding more than a little."""
        return self._service.memory.reads(self._held)

    @property
    def idle(self) -> bool:
        return not (
            self._writing
            or self._waiting
            or self._deferred
            or self._sending
            or self._adapter.in_message
        )

    def feed(self, data: bytes, now: float) -> list[Action]:
        if not data or self._closing:
            return self._close()
        return self._guarded(data, now, False)

    def drained(self, now: float, data: bytes = b"") -> list[Action]:
        if self._closing:
            return []  # CLOSE was the last word
        was_writing = self._writing
        self._writing = False
        self._ledger.written(now)
        return self._guarded(data, now, was_writing)

    def progressed(self, now: float) -> None:
        self._batch_by = self._send_by = now + self._service.limits.send_timeout_s
        self._reschedule()

    def expired(self, now: float) -> list[Action]:
        if now < self.deadline or self._closing:
            return []
        try:
            out = self._expire(now)
        except Exception:
            log_error.exception("%s connection from %s failed", self._adapter.protocol, self.peer)
            return self._close()
        self._account(sum(len(action) for action in out if type(action) is bytes))
        return out

    def shutdown(self) -> list[Action]:
        """Graceful stop: GOAWAY now (RFC 9113 §6.8); close once open streams finish.
        May be called again: GOAWAY is sent once, and an idle connection closes.
        WebSockets get their 1001 first: GOAWAY never precedes a frame on a stream it
        lets finish (RFC 9113 §6.8 allows it, but some clients' stacks, h2's among
        them, refuse every frame after it)."""
        if self._closing:
            return []
        if self._tunnels:
            self._tunnels.close(monotonic())  # 1001 on every WebSocket
            if self._writing:
                return []  # the CLOSE frames, then GOAWAY, go after this batch (_answer)
            self._pump()
        goaway = self._adapter.output() + self._goaway()
        if self._quiet(monotonic()):
            return self._close(goaway)
        return [goaway] if goaway else []

    def abort(self) -> None:
        """The socket is gone: release the client's connection count, open files and
        the memory accounted; write the records still due."""
        self._close()
        self._ledger.written(monotonic())
        self._account(0)
        if self._open:
            self._open = False
            self._service.disconnected(self._adapter.protocol)
        if self._counted:
            self._counted = False
            self._service.release(self.peer)

    # ---------------------------------------------------------------------------------------

    def _guarded(self, data: bytes, now: float, just_written: bool) -> list[Action]:
        try:
            if data:
                failed = self._take(data, now)
                if failed is not None:
                    return failed
            out = self._answer(now, just_written)
        except Exception:  # a bug (ours or h2's) costs this connection, never the server
            log_error.exception("%s connection from %s failed", self._adapter.protocol, self.peer)
            return self._close()
        batch = sum(len(action) for action in out if type(action) is bytes)
        self._account(self._adapter.buffered + batch)
        return out

    def _quiet(self, now: float) -> bool:
        """Idle, no tunnel open, and all that was sent has left (QUIC: acknowledged, or
        closing would lose it): the connection may close."""
        return self.idle and not self._tunnels and self._adapter.flushed(now)

    def _account(self, held: int) -> None:
        """Tell the worker's budget what this connection holds now: the batch being
        written, input h2 keeps until a frame or header block is whole, and tunnels'
        output waiting for their windows."""
        if self._tunnels:
            sending = self._sending
            held += sum(sending[i].pending for i in self._tunnels if i in sending)
        self._held = self._service.memory.update(self._held, held)

    def _take(self, data: bytes, now: float) -> list[Action] | None:
        """Handle what the client sent; the final actions if the connection must end."""
        adapter = self._adapter
        for event in adapter.receive(data, now):
            if type(event) is RequestReceived:
                self._waiting.append(event)
            elif type(event) is TunnelData:
                self._tunnels.take(event, now)
            elif type(event) is TunnelRequested:
                self._open_tunnel(event, now)
            elif type(event) is StreamReset:
                self._forget(event.stream_id)
            elif type(event) is PriorityChanged:
                self._reprioritize(event.stream_id, event.value)
            elif type(event) is StreamFailed:
                self._refuse(event.stream_id, event.error.status, now, event.request)
            elif type(event) is ProtocolFailed:
                # h2 has queued GOAWAY with the error code; nothing else is owed.
                if adapter.abuse:
                    self._service.penalise(self.peer, now, adapter.abuse)
                return self._close(adapter.output())
        return None

    def _refuse(
        self, stream_id: int, status: int, now: float, request: Request | None = None
    ) -> None:
        self._worked = True
        plan = self._service.site.errors[status]
        self._start(stream_id, None, plan, now, request)

    def _answer(self, now: float, just_written: bool) -> list[Action]:
        had_sending = bool(self._sending)
        service = self._service
        ending = service.draining or self._refused
        if ending and not self._goaway_sent and self._tunnels:
            self._tunnels.close(now)  # 1001 on every WebSocket, before GOAWAY
        self._spent = 0
        if self._waiting or (self._deferred and self._open_files < _OPEN_FILES):
            self._decide(now)
        moved = self._spent + (self._pump() if self._sending else 0)
        adapter = self._adapter
        data = adapter.output()
        if ending and not self._goaway_sent:
            data += self._goaway()
        limits = service.limits
        if data:
            self._writing = True
            self._batch_by = now + limits.send_timeout_s
        if moved or not had_sending:  # the send clock runs while no DATA can move
            self._send_by = now + limits.send_timeout_s
        if moved:
            self._worked = True
        if just_written and self._worked and self.idle:
            self._worked = False
            self._idle_by = now + (
                limits.keepalive_timeout_s if self._served else limits.header_timeout_s
            )
        self._reschedule()
        if (ending or adapter.peer_done) and self._quiet(now):
            return self._close(data)
        return [data] if data else []

    def _decide(self, now: float) -> None:
        """Decide what can be: deferred requests first (in order), then new ones. A plan
        that needs a file when all file slots are taken is dropped unsent (its file is
        closed) and its request deferred, to be decided again when a slot frees."""
        stamp = wall()
        service = self._service
        queue = self._deferred
        self._deferred = deque()
        queue.extend(self._waiting)
        self._waiting.clear()
        while queue:
            event = queue.popleft()
            request = event.request
            plan = service.decide(request, now, stamp, self.peer, not self._refused)
            if self._open_files >= _OPEN_FILES and _needs_file(plan, request):
                plan.close()
                self._deferred.append(event)
                continue
            self._start(event.stream_id, request, plan, now)
            self._served = self._worked = True

    def _start(
        self, stream_id: int, request: Request | None, plan: ResponsePlan, now: float,
        logged: Request | None = None,
    ) -> None:  # fmt: skip
        """HEADERS for `plan` now (after its 103 Early Hints, for a GET), its body queued
        for the pump; its access record is answered with the last of the body (at once
        when there is none), for `request`, or `logged`, what is known of a request not
        answered by the core. `request` is None for a stream refused before its request
        ended (413, 431, 408) or a refused tunnel: once answered, it is reset with
        NO_ERROR so the client stops sending (§8.1)."""
        adapter = self._adapter
        stamp = wall()
        date = self._service.dates.value(stamp)
        logged = request if logged is None else logged
        if plan.hints and request is not None and request.method == b"GET":
            # 103 Early Hints first (RFC 8297; a stream gone is found by `respond`).
            adapter.inform(stream_id, plan.hints)
        if not _needs_body(plan, request):
            plan.close()
            if adapter.respond(stream_id, plan, True, date) and request is None:
                adapter.reset(stream_id, answered=True)
            self._ledger.answered(logged, plan.status, 0, stamp, now)
            return
        if not adapter.respond(stream_id, plan, False, date):
            plan.close()  # the stream is gone (h2 closed it): nothing to send
            self._ledger.answered(logged, plan.status, 0, stamp, now)
            return
        body = plan.body
        if type(body) is bytes and not self._sending and self._at_once(stream_id, body):
            self._ledger.answered(logged, plan.status, len(body), stamp, now)
            if request is None:
                adapter.reset(stream_id, answered=True)
            return
        due = (logged, plan.status, plan.body_length, stamp, now)
        chunks = deque(body if isinstance(body, tuple) else (body,))
        outgoing = Outgoing(chunks, request is None, due=due)
        wanted = self._priorities.pop(stream_id, None)  # PRIORITY_UPDATE wins (§7)
        if wanted is None and request is not None:
            wanted = request.headers.get(b"priority")
        if wanted is not None:
            outgoing.urgency, outgoing.incremental = priority.parse(wanted)
        if outgoing.files:
            self._open_files += 1
        self._sending[stream_id] = outgoing

    def _at_once(self, stream_id: int, body: bytes) -> bool:
        """A body in memory that fits the windows goes out with its HEADERS when no
        other body is waiting: the pump's order has nothing to choose from (RFC 9218
        §10), and the request costs no queueing. What is sent so counts against the
        batch."""
        size = len(body)
        if self._spent + size > BATCH_BYTES or size > self._adapter.window(stream_id):
            return False
        self._spent += size
        return self._adapter.send(stream_id, body, True)

    def _reprioritize(self, stream_id: int, value: bytes) -> None:
        """PRIORITY_UPDATE (RFC 9218 §7): a response being sent is served in its new
        place from now on; one still to come takes it when it starts (kept for as many
        streams as the client may have open)."""
        outgoing = self._sending.get(stream_id)
        if outgoing is not None:
            outgoing.urgency, outgoing.incremental = priority.parse(value)
        elif stream_id in self._priorities or len(self._priorities) < self._max_priorities:
            self._priorities[stream_id] = value

    def _open_tunnel(self, event: TunnelRequested, now: float) -> None:
        """An extended CONNECT: a WebSocket opens on its stream, or it is answered and
        the stream reset, its request not having ended (§8.1)."""
        stamp = wall()
        date = self._service.dates.value(stamp)
        plan = self._tunnels.open(event, now, self._refused, date, stamp)
        self._worked = True
        if plan is None:
            self._served = True
            return
        self._start(event.stream_id, None, plan, now, event.request)

    def _queue(self, stream_id: int, data: bytes, ends: bool) -> int:
        """A tunnel's output: queued for the pump; its stream ends after it when
        `ends`. Returns the bytes still waiting on the stream."""
        outgoing = self._sending.get(stream_id)
        if data:
            if outgoing is None:
                outgoing = self._sending[stream_id] = Outgoing(deque(), False, ends=False)
                outgoing.incremental = True  # a tunnel never ends: it takes turns
            outgoing.chunks.append(data)
        if outgoing is None:
            if ends:
                self._adapter.send(stream_id, b"", True)  # END_STREAM (False: gone)
            return 0
        outgoing.ends = ends
        return outgoing.pending

    def _forget(self, stream_id: int) -> None:
        """The stream was reset: drop whatever it was still owed."""
        self._priorities.pop(stream_id, None)
        self._tunnels.forget(stream_id, monotonic())
        for queue in (self._waiting, self._deferred):
            for event in queue:
                if event.stream_id == stream_id:
                    queue.remove(event)
                    break
        outgoing = self._sending.pop(stream_id, None)
        if outgoing is not None:
            self._release(outgoing)

    def _release(self, outgoing: Outgoing) -> None:
        """A body done with, sent whole or not (a stream reset, a connection closing)."""
        if outgoing.files:
            self._open_files -= 1
        outgoing.close()
        if outgoing.due is not None:
            self._ledger.answered(*outgoing.due)
            outgoing.due = None

    def _pump(self) -> int:
        """DATA frames in priority order (`outgoing.order`) while windows and the batch
        allow. Returns how many body bytes moved."""
        adapter = self._adapter
        sending = self._sending
        budget = BATCH_BYTES - self._spent
        while sending and budget > 0 and adapter.connection_window() > 0:
            moved = False
            for stream_id in order(sending):
                sent = self._turn(stream_id, budget)
                if sent >= 0:
                    moved = True
                    budget -= sent
                    if budget <= 0 or adapter.connection_window() <= 0:
                        break
            if not moved:
                break
        return BATCH_BYTES - self._spent - budget

    def _turn(self, stream_id: int, budget: int) -> int:
        """One stream's turn: a stream that is not incremental keeps it, read after
        read, until it is done or held back (by its window, the connection's or the
        batch's); an incremental one sends a frame and goes to the back of the round
        robin. Returns the body bytes moved, -1 if no frame went."""
        adapter = self._adapter
        window = adapter.window(stream_id)
        if window <= 0:
            if window < 0:  # the stream is gone
                self._release(self._sending.pop(stream_id))
            return -1  # held back: passed over, in its place
        outgoing = self._sending.pop(stream_id)
        moved = 0
        while True:
            limit = _QUANTUM if outgoing.incremental else budget
            data = outgoing.read(min(window, budget, limit))
            last = not outgoing.chunks and outgoing.ends
            if data is None or not adapter.send(stream_id, data, last):
                # The file shrank under us, or the stream was closed: it cannot finish.
                self._release(outgoing)
                adapter.reset(stream_id)
                return moved
            moved += len(data)
            budget -= len(data)
            if not outgoing.ends:  # a tunnel: more input may be taken now
                self._tunnels.sent(stream_id, outgoing.pending)
            if last:
                self._release(outgoing)
                if outgoing.reset_after:
                    adapter.reset(stream_id, answered=True)
                return moved
            if not outgoing.chunks:
                return moved  # a tunnel with nothing queued: `_queue` brings it back
            window = adapter.window(stream_id)
            if outgoing.incremental or window <= 0 or budget <= 0:
                self._sending[stream_id] = outgoing  # to the back of the round robin
                return moved

    def _expire(self, now: float) -> list[Action]:
        limits = self._service.limits
        if self._writing and now >= self._batch_by:
            return self._close()  # the client stopped reading mid-batch
        late = self._adapter.stalled(now - limits.header_timeout_s)
        for stream_id in late:
            self._refuse(stream_id, 408, now)  # that request took too long to arrive
        for stream_id in self._tunnels.expired(now):  # no answer to a PING: gone
            self._forget(stream_id)
            self._adapter.reset(stream_id)
        # (A 408 just answered is not idleness: the idle clock starts once it is written.)
        quiet = not late and self._quiet(now) and now >= self._idle_by
        if (self._sending and now >= self._send_by) or quiet:
            # Windows never reopened, or nothing to do for too long: GOAWAY, then close.
            return self._close(self._adapter.output() + self._goaway())
        return self._answer(now, False)

    def _reschedule(self) -> None:
        limits = self._service.limits
        clocks = []
        if self._writing:
            clocks.append(self._batch_by)
        if self._sending:
            clocks.append(self._send_by)
        oldest = self._adapter.oldest()
        if oldest is not None:
            clocks.append(oldest + limits.header_timeout_s)
        if self._tunnels:
            clocks.append(self._tunnels.deadline)
        elif self.idle:
            clocks.append(self._idle_by)
        self.deadline = min(clocks, default=self._idle_by)

    def _goaway(self) -> bytes:
        if self._goaway_sent:
            return b""
        self._goaway_sent = True
        return self._adapter.goaway()

    def _close(self, data: bytes = b"") -> list[Action]:
        self._tunnels.finish(monotonic())
        self._account(len(data))
        self._closing = True
        self._waiting.clear()
        self._deferred.clear()
        for outgoing in self._sending.values():
            self._release(outgoing)
        self._sending.clear()
        return [data, CLOSE] if data else [CLOSE]


def _needs_body(plan: ResponsePlan, request: Request | None) -> bool:
    return not (
        (request is not None and request.method == b"HEAD")
        or plan.status in NO_BODY_STATUSES
        or plan.body_length == 0
    )


def _needs_file(plan: ResponsePlan, request: Request | None) -> bool:
    body = plan.body
    return _needs_body(plan, request) and any(
        isinstance(chunk, FileBody) for chunk in (body if isinstance(body, tuple) else (body,))
    )
