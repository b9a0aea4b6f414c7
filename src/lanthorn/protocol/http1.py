"""HTTP/1.1 adapter (RFC 9112) over httptools (llhttp): bytes → events, plans → bytes.

Framing limits are enforced here, where the bytes are: request-target length (414),
header block size and count (431), request body size (413), Transfer-Encoding other than
chunked (501, RFC 9112 §6.1), versions other than 1.0/1.1 (505). Request bodies are
parsed and discarded so the next pipelined request stays in sync (RFC 9112 §6.3).
"""

from __future__ import annotations

import re

import httptools
from httptools import HttpParserCallbackError, HttpParserError, HttpParserUpgrade

from lanthorn.config import Limits
from lanthorn.core.request import Request
from lanthorn.core.response import REASONS, FileBody, ResponsePlan
from lanthorn.errors import ProtocolError
from lanthorn.protocol.events import Event, ProtocolFailed, RequestReceived, UpgradeRequested
from lanthorn.protocol.requestfields import valid_host

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SERVER = b"Server: lanthorn\r\n"
_KEEP_ALIVE = b"\r\nConnection: keep-alive\r\n\r\n"
_CLOSE = b"\r\nConnection: close\r\n\r\n"
_BODYLESS_OK = (b"GET", b"HEAD", b"OPTIONS")  # methods whose requests we answer


def _field_name(name: bytes) -> bytes:
    """`content-type` → `Content-Type` (names are case-insensitive; this is for people)."""
    if name == b"etag":
        return b"ETag"
    return b"-".join(part.capitalize() for part in name.split(b"-"))


def _head_prefix(plan: ResponsePlan) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (plan.status, REASONS[plan.status]), _SERVER]
    lines.extend(b"%s: %s\r\n" % (_field_name(n), v) for n, v in plan.headers)
    lines.append(b"Date: ")
    return b"".join(lines)


class Http1:
    """One HTTP/1.x connection's parser and serialiser."""

    __slots__ = (
        "_begin_chunk",
        "_begin_mark",
        "_body_bytes",
        "_chunk",
        "_chunk_mark",
        "_events",
        "_fed",
        "_head_bytes",
        "_header_count",
        "_headers",
        "_in_head",
        "_limits",
        "_parser",
        "_request",
        "_url",
        "closed",
        "in_message",
    )

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[Event] = []
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._request: Request | None = None
        self._head_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._fed = 0
        self._chunk = b""
        self._begin_mark = 0
        self._begin_chunk = 0
        self._chunk_mark = -1  # in a chunk with no data yet: the end of the read it began in
        self._in_head = False
        self.in_message = False  # some bytes of a request have arrived, not all of it
        self.closed = False  # the parser stopped (error, Upgrade or CONNECT): no more events

    @property
    def buffered(self) -> int:
        """Bytes of a request head that has begun and not ended (held by httptools)."""
        return self._fed - self._begin_mark if self._in_head and not self.closed else 0

    # --- bytes in -------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Event]:
        """Parse `data`; complete requests come out in order, a failure last."""
        events: list[Event] = []
        if self.closed:
            return events
        self._events = events
        self._chunk = data
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade as exc:
            # Upgrade or CONNECT: the request is complete and HTTP/1 ends with it; what
            # follows belongs to whichever protocol the driver lets take over.
            self.closed = True
            last = events[-1] if events else None
            if type(last) is RequestReceived:  # (llhttp completes the request first)
                events[-1] = UpgradeRequested(last.request, data[exc.args[0] :])
        except HttpParserCallbackError as exc:
            cause = exc.__context__
            # Anything else a callback raised is still the request's fault, never ours
            # to crash on: the framing can no longer be trusted.
            self._fail(
                cause if isinstance(cause, ProtocolError) else ProtocolError(400, str(cause))
            )
        except HttpParserError as exc:
            self._fail(self._classify(exc))
        self._fed += len(data)
        if self._in_head and not self.closed:
            # Header fragments are buffered inside httptools until complete; bound them.
            # A lower bound of the head's size so far: the chunk it began in is not counted.
            unseen = self._fed - self._begin_mark - self._begin_chunk
            if unseen > self._limits.max_head_bytes + self._limits.max_url_bytes:
                self._fail(ProtocolError(431, "request header block too large"))
        elif (
            self._chunk_mark >= 0
            and not self.closed
            and self._fed - self._chunk_mark > self._limits.max_head_bytes
        ):
            # Past a chunk-size line and no data since: after the last chunk, that is the
            # trailer section, which httptools buffers like a head; bounded like one (the
            # bytes of the read the chunk began in are not counted). Chunk extensions are
            # not buffered: they end before the chunk-size line does.
            self._fail(ProtocolError(431, "trailer section too large"))
        return events

    def _fail(self, error: ProtocolError) -> None:
        self.closed = True
        self.in_message = False
        self._events.append(ProtocolFailed(error))

    def _classify(self, exc: HttpParserError) -> ProtocolError:
        text = str(exc)
        if isinstance(exc, httptools.HttpParserInvalidMethodError):
            # RFC 9110 §9.1: a well-formed but unknown method is 501; garbage is 400.
            first = self._chunk.lstrip(b"\r\n").split(b" ", 1)[0]
            if not self._events and _TOKEN.fullmatch(first):
                return ProtocolError(501, f"method {first[:32]!r} not implemented")
            return ProtocolError(400, "malformed method")
        if text in ("Invalid HTTP version", "Pause on PRI/Upgrade"):
            return ProtocolError(505, text)
        return ProtocolError(400, text)

    # httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self._in_head = True
        self._url = b""
        self._headers = {}
        self._head_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._begin_mark = self._fed
        self._begin_chunk = len(self._chunk)
        self._chunk_mark = -1

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_url_bytes:
            raise ProtocolError(414, "request-target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        limits = self._limits
        self._head_bytes += len(name) + len(value) + 4
        if not self._in_head:
            # A chunked trailer field: not part of the head (RFC 9112 §7.1.2), discarded,
            # but buffered until complete, so the section is bounded like a head.
            if self._head_bytes > limits.max_head_bytes:
                raise ProtocolError(431, "trailer section too large")
            return
        if self._head_bytes > limits.max_head_bytes:
            raise ProtocolError(431, "request header block too large")
        self._header_count += 1
        if self._header_count > limits.max_headers:
            raise ProtocolError(431, "too many header fields")
        headers = self._headers
        name = name.lower()
        if name in headers:
            if name == b"host":  # RFC 9112 §3.2: more than one Host is a 400
                raise ProtocolError(400, "duplicate Host")
            headers[name] += b", " + value
        else:
            headers[name] = value

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0  # from now on: the trailer section's
        parser = self._parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise ProtocolError(505, f"HTTP/{version} is not spoken here")
        headers = self._headers
        host = headers.get(b"host")
        if host is None:
            if version == "1.1":
                raise ProtocolError(400, "missing Host")  # RFC 9112 §3.2
        elif not valid_host(host):
            raise ProtocolError(400, "invalid Host")  # RFC 9112 §3.2
        te = headers.get(b"transfer-encoding")
        if te is not None:
            if version == "1.0":  # RFC 9112 §6.1: treat the framing as faulty
                raise ProtocolError(400, "Transfer-Encoding in HTTP/1.0")
            if te.strip().lower() != b"chunked":
                raise ProtocolError(501, "unsupported Transfer-Encoding")
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():  # llhttp already refuses most; never int() garbage
                raise ProtocolError(400, "invalid Content-Length")
            digits = length.lstrip(b"0")
            if len(digits) > 18 or int(digits or b"0") > self._limits.max_body_bytes:
                raise ProtocolError(413, "request body too large")
        method = parser.get_method()
        if (
            headers.get(b"expect", b"").lower() == b"100-continue"
            and method not in _BODYLESS_OK
            and (length not in (None, b"0") or te is not None)
        ):
            # RFC 9110 §10.1.1: answer the final status now instead of waiting for a
            # body we would refuse anyway.
            raise ProtocolError(405, "method not allowed; body not wanted")
        self._request = Request(method, self._url, version, headers)

    def on_chunk_header(self) -> None:
        self._chunk_mark = self._fed + len(self._chunk)

    def on_chunk_complete(self) -> None:
        self._chunk_mark = -1

    def on_body(self, body: bytes) -> None:
        self._chunk_mark = -1  # this chunk has data: it is not the last one
        self._body_bytes += len(body)
        if self._body_bytes > self._limits.max_body_bytes:
            raise ProtocolError(413, "request body too large")

    def on_message_complete(self) -> None:
        self.in_message = False
        request = self._request
        assert request is not None
        self._events.append(RequestReceived(request, self._parser.should_keep_alive()))

    # --- plans out ------------------------------------------------------------------------

    def response(
        self, plan: ResponsePlan, send_body: bool, keep_alive: bool, date: bytes
    ) -> list[bytes | FileBody]:
        """The wire form of `plan`: one bytes object, plus the file body if there is one."""
        prefix = plan.memo.get(Http1)
        if prefix is None:
            prefix = plan.memo[Http1] = _head_prefix(plan)
        tail = _KEEP_ALIVE if keep_alive else _CLOSE
        body = plan.body
        if not send_body:
            return [b"".join((prefix, date, tail))]
        if isinstance(body, bytes):
            return [b"".join((prefix, date, tail, body))]
        if isinstance(body, FileBody):
            return [b"".join((prefix, date, tail)), body]
        return [b"".join((prefix, date, tail)), *body]  # multipart parts, in order
