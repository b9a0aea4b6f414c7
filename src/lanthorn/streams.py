"""The HTTP/2 connection driver: many streams over one connection.

Same contract with engines as `driver.Connection` (it is what a Connection becomes once
the client sends the HTTP/2 preface), but a body never leaves as a `FileBody`: the driver
reads files with pread into DATA frames that fit the flow-control windows (RFC 9113
§5.2), one frame per stream in turn so concurrent downloads share the connection.

Bounds: one batch carries about BATCH_BYTES of frames; at most _OPEN_FILES streams hold
an open file at once (decided requests beyond that wait, undecided, in `_waiting`), so a
client cannot make one connection hold more than that whatever it asks for.
"""

from __future__ import annotations

import os
from collections import deque

from lanthorn.actions import BATCH_BYTES, CLOSE, Action
from lanthorn.clock import wall
from lanthorn.core.request import Request
from lanthorn.core.response import Chunk, FileBody, ResponsePlan
from lanthorn.protocol.events import (
    ProtocolFailed,
    RequestReceived,
    StreamFailed,
    StreamReset,
)
from lanthorn.protocol.http2 import Http2
from lanthorn.service import NO_BODY_STATUSES, Service, log_error

_OPEN_FILES = 16


class _Outgoing:
    """The rest of one stream's body: chunks in order, `pos` into the first."""

    __slots__ = ("chunks", "files", "pos", "reset_after")

    def __init__(self, chunks: deque[Chunk], reset_after: bool) -> None:
        self.chunks = chunks
        self.pos = 0
        self.files = any(isinstance(chunk, FileBody) for chunk in chunks)
        self.reset_after = reset_after  # answered before the request ended: RST NO_ERROR

    def close(self) -> None:
        for chunk in self.chunks:
            if isinstance(chunk, FileBody):
                chunk.close()
        self.chunks.clear()


class Streams:
    __slots__ = (
        "_adapter",
        "_closing",
        "_goaway_sent",
        "_incomplete_since",
        "_open_files",
        "_sending",
        "_service",
        "_waiting",
        "_writing",
        "deadline",
        "peer",
    )

    def __init__(self, service: Service, peer: str, now: float) -> None:
        self._service = service
        self._adapter = Http2(service.limits)
        self._waiting: deque[RequestReceived] = deque()
        self._sending: dict[int, _Outgoing] = {}
        self._open_files = 0
        self._writing = False
        self._closing = False
        self._goaway_sent = False
        self._incomplete_since: float | None = None
        self.peer = peer
        self.deadline = now + service.limits.keepalive_timeout_s

    @property
    def idle(self) -> bool:
        return not (self._writing or self._waiting or self._sending or self._adapter.in_message)

    def feed(self, data: bytes, now: float) -> list[Action]:
        if not data or self._closing:
            return self._close()
        try:
            return self._receive(data, now)
        except Exception:  # a bug (ours or h2's) costs this connection, never the server
            log_error.exception("HTTP/2 connection from %s failed", self.peer)
            return self._close()

    def _receive(self, data: bytes, now: float) -> list[Action]:
        adapter = self._adapter
        for event in adapter.receive(data):
            if type(event) is RequestReceived:
                self._waiting.append(event)
            elif type(event) is StreamReset:
                self._forget(event.stream_id)
            elif type(event) is StreamFailed:
                plan = self._service.site.errors[event.error.status]
                stamp = wall()
                sent = self._start(event.stream_id, None, plan, self._service.dates.value(stamp))
                self._service.record(self.peer, None, plan.status, sent, stamp)
            elif type(event) is ProtocolFailed:
                # h2 has queued GOAWAY with the error code; nothing else is owed.
                return self._close(adapter.output())
        if adapter.peer_done:
            # The client sent GOAWAY: h2 sends nothing after it, so neither can we.
            return self._close(adapter.output())
        return self._answer(now, False)

    def drained(self, now: float) -> list[Action]:
        was_writing = self._writing
        self._writing = False
        try:
            return self._answer(now, was_writing)
        except Exception:
            log_error.exception("HTTP/2 connection from %s failed", self.peer)
            return self._close()

    def progressed(self, now: float) -> None:
        if self._writing:
            self.deadline = now + self._service.limits.send_timeout_s

    def expired(self, now: float) -> list[Action]:
        if now < self.deadline:
            return []
        if self._writing:  # the client stopped reading mid-batch
            return self._close()
        return self._close(self._adapter.output() + self._goaway())

    def shutdown(self) -> list[Action]:
        """Graceful stop: GOAWAY now (RFC 9113 §6.8); close once open streams finish."""
        goaway = self._adapter.output() + self._goaway()
        if self.idle:
            return self._close(goaway)
        return [goaway]

    # ---------------------------------------------------------------------------------------

    def _answer(self, now: float, just_written: bool) -> list[Action]:
        waiting = self._waiting
        if waiting and self._open_files < _OPEN_FILES:
            stamp = wall()
            date = self._service.dates.value(stamp)
            service = self._service
            while waiting and self._open_files < _OPEN_FILES:
                event = waiting.popleft()
                request = event.request
                plan = service.decide(request, now)
                sent = self._start(event.stream_id, request, plan, date)
                service.record(self.peer, request, plan.status, sent, stamp)
        if self._sending:
            self._pump()
        adapter = self._adapter
        data = adapter.output()
        service = self._service
        if service.draining and not self._goaway_sent:
            data += self._goaway()
        self._reschedule(now, bool(data), just_written)
        if service.draining and self.idle:
            return self._close(data)
        return [data] if data else []

    def _start(
        self, stream_id: int, request: Request | None, plan: ResponsePlan, date: bytes
    ) -> int:
        """HEADERS for `plan` now, its body queued for the pump; returns the body's length.
        `request` is None for a stream refused before its request ended (413, 431): once
        answered, it is reset with NO_ERROR so the client stops sending (RFC 9113 §8.1)."""
        adapter = self._adapter
        if (
            (request is not None and request.method == b"HEAD")
            or plan.status in NO_BODY_STATUSES
            or plan.body_length == 0
        ):
            plan.close()
            adapter.respond(stream_id, plan, True, date)
            if request is None:
                adapter.reset(stream_id, answered=True)
            return 0
        adapter.respond(stream_id, plan, False, date)
        body = plan.body
        outgoing = _Outgoing(deque(body if isinstance(body, tuple) else (body,)), request is None)
        if outgoing.files:
            self._open_files += 1
        self._sending[stream_id] = outgoing
        return plan.body_length

    def _forget(self, stream_id: int) -> None:
        """The client reset the stream: drop whatever it was still owed."""
        for event in self._waiting:
            if event.stream_id == stream_id:
                self._waiting.remove(event)
                break
        outgoing = self._sending.pop(stream_id, None)
        if outgoing is not None:
            self._release(outgoing)

    def _release(self, outgoing: _Outgoing) -> None:
        if outgoing.files:
            self._open_files -= 1
        outgoing.close()

    def _pump(self) -> None:
        """DATA frames, one per stream in turn, while windows and the batch allow."""
        adapter = self._adapter
        sending = self._sending
        budget = BATCH_BYTES
        while sending and budget > 0 and adapter.connection_window() > 0:
            moved = False
            for stream_id in list(sending):
                window = adapter.window(stream_id)
                if window <= 0:
                    if window < 0:  # the stream is gone (reset)
                        self._release(sending.pop(stream_id))
                    continue
                outgoing = sending[stream_id]
                data = self._read(outgoing, min(window, budget))
                if data is None:  # the file shrank under us: the stream cannot finish
                    del sending[stream_id]
                    self._release(outgoing)
                    adapter.reset(stream_id)
                    continue
                last = not outgoing.chunks
                adapter.send(stream_id, data, last)
                budget -= len(data)
                moved = True
                if last:
                    del sending[stream_id]
                    self._release(outgoing)
                    if outgoing.reset_after:
                        adapter.reset(stream_id, answered=True)
                if budget <= 0:
                    break
            if not moved:
                break

    @staticmethod
    def _read(outgoing: _Outgoing, limit: int) -> bytes | None:
        """Up to `limit` bytes of the body's current chunk, advancing past it when done."""
        chunk = outgoing.chunks[0]
        pos = outgoing.pos
        if type(chunk) is bytes:
            data = chunk[pos : pos + limit]
            size = len(chunk)
        else:
            assert isinstance(chunk, FileBody)
            size = chunk.count
            want = min(limit, size - pos)
            data = os.pread(chunk.fileno(), want, chunk.offset + pos)
            if len(data) < want:
                return None
        pos += len(data)
        if pos >= size:
            outgoing.chunks.popleft()
            if isinstance(chunk, FileBody):
                chunk.close()
            pos = 0
        outgoing.pos = pos
        return data

    def _reschedule(self, now: float, writing: bool, just_written: bool) -> None:
        limits = self._service.limits
        if self._adapter.in_message:
            if self._incomplete_since is None:
                self._incomplete_since = now
        else:
            self._incomplete_since = None
        if writing:
            self._writing = True
            self.deadline = now + limits.send_timeout_s
        elif self._sending:
            pass  # blocked on the client's flow-control window: the send clock runs on
        elif self._incomplete_since is not None:
            self.deadline = self._incomplete_since + limits.header_timeout_s
        elif just_written:
            self.deadline = now + limits.keepalive_timeout_s

    def _goaway(self) -> bytes:
        if self._goaway_sent:
            return b""
        self._goaway_sent = True
        return self._adapter.goaway()

    def _close(self, data: bytes = b"") -> list[Action]:
        self._closing = True
        self._waiting.clear()
        for outgoing in self._sending.values():
            self._release(outgoing)
        self._sending.clear()
        return [data, CLOSE] if data else [CLOSE]
