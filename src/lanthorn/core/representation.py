"""From an opened file to the plan: content coding, validators, preconditions, ranges.

The order is RFC 9110's: choose the representation (§12.5.3, sidecars or on-the-fly
compression); its validators (§8.8); preconditions (§13.2.2) → 304/412; then Range
(§14.2, with If-Range §13.1.5) → 206 / 416; else 200.
"""

from __future__ import annotations

import os
import secrets
from typing import BinaryIO, NamedTuple

from lanthorn.clock import http_date
from lanthorn.core import conditional, ranges
from lanthorn.core.pages import page_plan
from lanthorn.core.request import Request
from lanthorn.core.response import Body, Chunk, Fields, FileBody, ResponsePlan

Headers = list[tuple[bytes, bytes]]
_LAST_HTTP_DATE = 253402300799  # 9999-12-31T23:59:59Z


class Variant(NamedTuple):
    """The bytes to send: an open file, or data in memory (read or compressed)."""

    file: BinaryIO | None
    data: bytes | None
    size: int
    etag: bytes
    last_modified: bytes
    mtime_s: int
    coding: str  # "identity", "gzip", "br" or "zstd"

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def whole(self) -> Body:
        """All of it as a body, which takes over the descriptor (if any)."""
        if self.data is not None:
            self.close()
            return self.data
        assert self.file is not None
        return FileBody(self.file, 0, self.size)

    def slice(self, start: int, count: int, refs: list[int] | None = None) -> Chunk:
        """The bytes from `start`; a file slice takes (a share of) the descriptor."""
        if self.data is not None:
            return self.data[start : start + count]
        assert self.file is not None
        return FileBody(self.file, start, count, refs)


def etag(st: os.stat_result, coding: str) -> bytes:
    """A strong validator (§8.8.3) from inode, mtime and size; one per content coding
    (§8.8.3: different codings are different representations)."""
    suffix = "" if coding == "identity" else f"-{coding}"
    return f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}{suffix}"'.encode()


def validators(st: os.stat_result) -> tuple[bytes, int]:
    """(Last-Modified value, its whole seconds)."""
    mtime = min(st.st_mtime, _LAST_HTTP_DATE)  # HTTP-dates end with year 9999
    return http_date(mtime).encode(), int(mtime)


def plan_for(
    request: Request, variant: Variant, content_type: bytes, extra: Headers, hints: Fields = ()
) -> ResponsePlan:
    """The response for a representation; `extra` holds Vary, Cache-Control and the
    site's own headers, `hints` the 103's fields, which only a 200 takes (the page is
    being fetched whole; after a 304 it comes from the browser's cache, and its
    subresources most likely too). Takes ownership of `variant` (closes what it does
    not send)."""
    validator_headers = [(b"last-modified", variant.last_modified), (b"etag", variant.etag)]
    headers = request.headers
    status = conditional.evaluate(request.method, headers, variant.etag, variant.mtime_s)
    if status is not None:
        variant.close()
        if status == 304:  # §15.4.5: validators and caching fields, no content
            return ResponsePlan(304, validator_headers + extra, b"")
        return page_plan(412, extra)
    coding = (
        [] if variant.coding == "identity" else [(b"content-encoding", variant.coding.encode())]
    )
    described = [(b"content-type", content_type), *coding, *validator_headers]
    range_header = headers.get(b"range")
    # §14.2 defines Range for GET; HEAD answers with the headers GET would get (§9.3.2).
    if range_header is not None:
        if_range = headers.get(b"if-range")
        if if_range is None or conditional.if_range_allows(
            if_range, variant.etag, variant.last_modified, variant.mtime_s, request.wall
        ):
            try:
                spans = ranges.parse(range_header, variant.size)
            except ranges.Unsatisfiable:
                variant.close()
                unsatisfied = [(b"content-range", b"bytes */%d" % variant.size)]
                return page_plan(416, unsatisfied + extra)
            if spans is not None:
                return _partial(variant, spans, content_type, described, extra)
    return ResponsePlan(
        200,
        [
            *described,
            (b"content-length", b"%d" % variant.size),
            (b"accept-ranges", b"bytes"),
            *extra,
        ],
        variant.whole(),
        hints,
    )


def _partial(
    variant: Variant,
    spans: list[ranges.Span],
    content_type: bytes,
    described: Headers,
    extra: Headers,
) -> ResponsePlan:
    size = variant.size
    refs = [len(spans)]  # every part shares the one descriptor; the last to close it wins
    if variant.data is not None:
        variant.close()
    if len(spans) == 1:
        (span,) = spans
        headers = [
            *described,
            (b"content-range", b"bytes %d-%d/%d" % (span.start, span.end, size)),
            (b"content-length", b"%d" % span.length),
            (b"accept-ranges", b"bytes"),
            *extra,
        ]
        return ResponsePlan(206, headers, variant.slice(span.start, span.length))
    # §14.6 multipart/byteranges: CRLF-framed parts, each with its Content-Range.
    boundary = secrets.token_hex(12).encode()
    parts: list[Chunk] = []
    length = 0
    for span in spans:
        part_head = b"\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n" % (
            boundary,
            content_type,
            span.start,
            span.end,
            size,
        )
        parts += [part_head, variant.slice(span.start, span.length, refs)]
        length += len(part_head) + span.length
    closing = b"\r\n--%s--\r\n" % boundary
    parts.append(closing)
    length += len(closing)
    headers = [
        (b"content-type", b"multipart/byteranges; boundary=" + boundary),
        *[h for h in described if h[0] != b"content-type"],
        (b"content-length", b"%d" % length),
        (b"accept-ranges", b"bytes"),
        *extra,
    ]
    if variant.data is not None:
        return ResponsePlan(206, headers, b"".join(p for p in parts if isinstance(p, bytes)))
    return ResponsePlan(206, headers, tuple(parts))
