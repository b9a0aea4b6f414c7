"""HTTP/2 adapter: after the client preface, arbitrary frames (see `frames`), delivered
in arbitrary pieces, with the server answering, resetting and going away in between.

Invariants: no call on the adapter ever raises; `receive` yields only the five event
types; a connection error (ProtocolFailed) is reported once, last, nothing is read after
it, and a GOAWAY has been queued for it (unless the client's own GOAWAY caused it); each
stream's request is reported at most once, never on a stream that already failed; the
requests respect the limits; everything the server sends parses as HTTP/2 frames whose
header blocks a client can decode.
"""

from __future__ import annotations

from lanthorn.config import Limits
from lanthorn.core.response import ResponsePlan
from lanthorn.protocol import requestfields
from lanthorn.protocol.events import (
    Event,
    PriorityChanged,
    ProtocolFailed,
    RequestReceived,
    StreamFailed,
    StreamReset,
)
from lanthorn.protocol.http2 import Http2
from tests.fuzz.source import Source
from tests.fuzz.targets.frames import ACT, PREFACE, OutputChecker, deliveries

PROFILES = (
    Limits(),
    Limits(max_body_bytes=100, max_headers=4, max_url_bytes=30, max_head_bytes=200, max_streams=3),
)
# 400: an invalid :authority or Host (RFC 9112 §3.2, answered as HTTP/1.1 answers it)
STREAM_STATUSES = frozenset((400, 405, 408, 413, 414, 431))
DATE = b"Tue, 01 Dec 2026 00:00:00 GMT"
PLANS = (
    ResponsePlan(200, [(b"content-type", b"text/plain"), (b"content-length", b"5")], b"hello"),
    ResponsePlan(304, [(b"etag", b'"x"')], b""),
    ResponsePlan(404, [(b"content-length", b"0")], b""),
)


class Connection:
    """The adapter under test, with the bookkeeping the invariants need."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.adapter = Http2(limits, 0.0)
        self.output = OutputChecker()
        self.now = 0.0
        self.failed = False
        self.no_goaway = False  # the failure owes no GOAWAY (or a known bug forgets it)
        self.requested: set[int] = set()
        self.refused: set[int] = set()
        self.to_answer: list[int] = []  # streams with a request or a failure to answer
        self.answering: dict[int, int] = {}  # stream → body bytes still to send

    def receive(self, data: bytes) -> None:
        events: list[Event] = self.adapter.receive(data, self.now)
        if self.failed:
            assert events == [], "events after ProtocolFailed"
        for index, event in enumerate(events):
            self._event(event, last=index == len(events) - 1)
        self.flush()

    def _event(self, event: Event, last: bool) -> None:
        if isinstance(event, ProtocolFailed):
            assert last, "ProtocolFailed is not the last event"
            assert event.error.status == 400
            self.failed = True
            reason = event.error.reason
            self.no_goaway = reason.startswith("client GOAWAY")
        elif isinstance(event, RequestReceived):
            stream_id = event.stream_id
            assert stream_id % 2 == 1 and stream_id not in self.requested, stream_id
            assert stream_id not in self.refused, stream_id
            self.requested.add(stream_id)
            request = event.request
            assert request.version == "2.0" and event.keep_alive
            assert 0 < len(request.target) <= self.limits.max_url_bytes
            assert len(request.headers) <= self.limits.max_headers
            assert all(requestfields._NAME.fullmatch(name) for name in request.headers)
            self.to_answer.append(stream_id)
        elif isinstance(event, StreamFailed):
            assert event.error.status in STREAM_STATUSES, event.error.status
            assert event.stream_id not in self.requested and event.stream_id % 2 == 1
            self.refused.add(event.stream_id)
            self.to_answer.append(event.stream_id)
        elif isinstance(event, PriorityChanged):
            # RFC 9218 §7.1: for a client stream that may still be answered
            assert event.stream_id > 0, event.stream_id
        else:
            assert isinstance(event, StreamReset), type(event)
            self.answering.pop(event.stream_id, None)

    def flush(self) -> None:
        self.output.check(self.adapter.output())
        if self.failed and not self.no_goaway:
            assert self.output.seen.goaway, "connection error without GOAWAY"

    def act(self, code: int) -> None:
        if self.failed:
            return  # the driver closes the connection: the adapter is used no more
        adapter = self.adapter
        self.now += code / 16
        action = code % 6
        if action in (0, 1) and self.to_answer:
            stream_id = self.to_answer.pop(0)
            plan = PLANS[code // 6 % len(PLANS)]
            end = action == 1 or not plan.body_length
            if adapter.respond(stream_id, plan, end, DATE) and not end:
                self.answering[stream_id] = plan.body_length
        elif action == 2 and self.to_answer:
            adapter.reset(self.to_answer.pop(0), answered=bool(code & 0x40))
        elif action == 3:
            adapter.goaway()
        elif action == 4:
            for stream_id in adapter.stalled(self.now - code):
                self.to_answer.append(stream_id)
            oldest = adapter.oldest()
            assert oldest is None or oldest <= self.now
            assert isinstance(adapter.in_message, bool)
        else:
            self._pump()
        self.flush()

    def _pump(self) -> None:
        adapter = self.adapter
        for stream_id, left in list(self.answering.items()):
            window = adapter.window(stream_id)
            # A stream never gets more than the connection's window, nor a negative one.
            assert window == -1 or 0 <= window <= max(0, adapter.connection_window()), window
            if window < 0:
                del self.answering[stream_id]
                continue
            size = min(window, left, max(0, adapter.connection_window()))
            if size or left == 0:
                sent = adapter.send(stream_id, b"y" * size, size == left)
                if not sent or size == left:
                    del self.answering[stream_id]
                else:
                    self.answering[stream_id] = left - size


def fuzz(data: bytes) -> None:
    source = Source(data)
    connection = Connection(source.pick(PROFILES))
    connection.receive(PREFACE)
    assert not connection.failed
    for kind, value in deliveries(source):
        if kind == ACT:
            assert isinstance(value, int)
            connection.act(value)
        else:
            assert isinstance(value, bytes)
            connection.receive(value)
