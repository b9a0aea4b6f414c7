"""What the core decides: a `ResponsePlan` (status, content headers, body description).

Protocol adapters add the framing headers (Date, Server, Connection / :status) and
serialise. A plan may be shared between requests (cached small files, error pages), so it
is never mutated after construction except for `memo`, where an adapter may keep its
serialised form of the plan keyed by the adapter.
"""

from __future__ import annotations

from typing import BinaryIO

REASONS: dict[int, bytes] = {
    200: b"OK",
    204: b"No Content",
    206: b"Partial Content",
    301: b"Moved Permanently",
    308: b"Permanent Redirect",
    304: b"Not Modified",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    406: b"Not Acceptable",
    408: b"Request Timeout",
    412: b"Precondition Failed",
    413: b"Content Too Large",
    414: b"URI Too Long",
    416: b"Range Not Satisfiable",
    425: b"Too Early",  # RFC 8470 §5.2: a request in early data the server will not risk
    426: b"Upgrade Required",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}


class FileBody:
    """`count` bytes of an open file from `offset`. Whoever holds it last closes it.

    The parts of one multipart body share a single descriptor (`refs` counts the parts
    still open), so a 16-range request holds one file, not sixteen; senders always pass
    explicit offsets, so sharing is safe. Closing a body twice is harmless.
    """

    __slots__ = ("_refs", "count", "file", "offset")

    def __init__(
        self, file: BinaryIO, offset: int, count: int, refs: list[int] | None = None
    ) -> None:
        self.file = file
        self.offset = offset
        self.count = count
        self._refs = refs if refs is not None else [1]

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        refs = self._refs
        if not refs:
            return  # already closed
        self._refs = []
        refs[0] -= 1
        if refs[0] <= 0:
            self.file.close()


Chunk = bytes | FileBody
Body = Chunk | tuple[Chunk, ...]  # a tuple: multipart/byteranges parts, in order


Fields = tuple[tuple[bytes, bytes], ...]


class ResponsePlan:
    """Status, content headers (lowercase names) and body; `hints`, the fields of a
    103 Early Hints response (RFC 8297) that may go before it (core/hints).

    Invariant: a `content-length` header, when present, equals the body's length; the body
    is sent only when the adapter's rules allow (not for HEAD, 1xx, 204 or 304 —
    RFC 9110 §6.4.1).
    """

    __slots__ = ("body", "headers", "hints", "memo", "status")

    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]], body: Body, hints: Fields = ()
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.hints = hints
        self.memo: dict[object, bytes] = {}

    @property
    def body_length(self) -> int:
        return sum(map(_length, self.body)) if isinstance(self.body, tuple) else _length(self.body)

    def close(self) -> None:
        """Release the files behind the body, if any (the plan will not be sent)."""
        for chunk in self.body if isinstance(self.body, tuple) else (self.body,):
            if isinstance(chunk, FileBody):
                chunk.close()


def _length(chunk: Chunk) -> int:
    return len(chunk) if isinstance(chunk, bytes) else chunk.count
