"""Requests under way on a multiplexed connection (HTTP/2, HTTP/3): those whose head
has arrived and whose end has not, by stream — what the adapters share so that a
request's clock (408), its body's bound (413) and its end are kept one way."""

from __future__ import annotations

from lanthorn.core.request import Request


class _Incoming:
    __slots__ = ("body_bytes", "request", "since")

    def __init__(self, request: Request | None, since: float) -> None:
        self.request = request  # None once the stream has been answered with an error
        self.since = since
        self.body_bytes = 0


class Incoming:
    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: dict[int, _Incoming] = {}

    def begin(self, stream_id: int, request: Request | None, now: float) -> None:
        """A head arrived (`request` None: it is being answered with an error already,
        and what else comes on the stream is discarded)."""
        self._open[stream_id] = _Incoming(request, now)

    def body(self, stream_id: int, size: int, limit: int) -> bool:
        """Body bytes arrived; False once the request's body has passed `limit`."""
        incoming = self._open.get(stream_id)
        if incoming is None or incoming.request is None:
            return True
        incoming.body_bytes += size
        return incoming.body_bytes <= limit

    def end(self, stream_id: int) -> Request | None:
        """The stream's request ended: the request, unless it was answered already."""
        incoming = self._open.pop(stream_id, None)
        return None if incoming is None else incoming.request

    def refuse(self, stream_id: int) -> None:
        """Answered with an error before it ended: the rest is discarded."""
        self._open[stream_id].request = None

    def drop(self, stream_id: int) -> None:
        self._open.pop(stream_id, None)

    @property
    def in_message(self) -> bool:
        """Some request has begun (its head arrived) and has not ended."""
        return any(incoming.request is not None for incoming in self._open.values())

    def stalled(self, before: float) -> list[int]:
        """Streams whose request began at or before `before` and has not ended; they
        are refused here (the driver answers 408 on them)."""
        late = [
            stream_id
            for stream_id, incoming in self._open.items()
            if incoming.request is not None and incoming.since <= before
        ]
        for stream_id in late:
            self._open[stream_id].request = None
        return late

    def oldest(self) -> float | None:
        """When the oldest unfinished request began, if any."""
        return min((i.since for i in self._open.values() if i.request is not None), default=None)
