"""What the stream driver still has to send on each stream (`Outgoing`), and the order
it serves them in (`order`, RFC 9218 §10)."""

from __future__ import annotations

import os
from collections import deque

from lanthorn.core.response import Chunk, FileBody
from lanthorn.driver.ledger import Due
from lanthorn.protocol import priority


class Outgoing:
    """The rest of one stream's body: chunks in order, `pos` into the first. `ends`:
    the stream ends with the last chunk (a tunnel's does not until its session ends).
    `due`: its access record, answered when the body is done with (sent or dropped)."""

    __slots__ = (
        "chunks", "due", "ends", "files", "incremental", "pos", "reset_after", "urgency",
    )  # fmt: skip

    def __init__(
        self, chunks: deque[Chunk], reset_after: bool, ends: bool = True, due: Due | None = None
    ) -> None:
        self.chunks = chunks
        self.due = due
        self.pos = 0
        self.files = any(isinstance(chunk, FileBody) for chunk in chunks)
        self.reset_after = reset_after  # answered before the request ended: RST NO_ERROR
        self.ends = ends
        # RFC 9218: its urgency (0 first, 7 last) and whether it interleaves with others.
        self.urgency, self.incremental = priority.DEFAULT

    @property
    def pending(self) -> int:
        """Bytes still to send (a tunnel's chunks are all bytes)."""
        return sum(len(chunk) for chunk in self.chunks if type(chunk) is bytes) - self.pos

    def close(self) -> None:
        for chunk in self.chunks:
            if isinstance(chunk, FileBody):
                chunk.close()
        self.chunks.clear()

    def read(self, limit: int) -> bytes | None:
        """Up to `limit` bytes of the current chunk, advancing past it when done; None
        if the file shrank under us."""
        chunk = self.chunks[0]
        pos = self.pos
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
            self.chunks.popleft()
            if isinstance(chunk, FileBody):
                chunk.close()
            pos = 0
        self.pos = pos
        return data


def order(sending: dict[int, Outgoing]) -> list[int]:
    """The streams in the order they are served (RFC 9218 §10): the most urgent first;
    within an urgency, those that are not incremental one after another in stream
    order, then the incremental ones in turn (the dict's order is the round robin: a
    stream served goes to its back). A stream its window holds back is passed over by
    the pump, so the others use what the connection allows."""
    if len(sending) < 2:
        return list(sending)

    def rank(stream_id: int) -> tuple[int, bool, int]:
        outgoing = sending[stream_id]
        return outgoing.urgency, outgoing.incremental, 0 if outgoing.incremental else stream_id

    return sorted(sending, key=rank)
