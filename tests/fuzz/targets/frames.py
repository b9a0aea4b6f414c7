"""HTTP/2 client input for the HTTP/2 targets, decoded from fuzzer bytes, and a checker
for what the server sends back.

After the client preface and SETTINGS (those of h2's own client), the input is a list of
operations, each a byte (mod 8) and its arguments: a raw frame (any type, flags, stream
and payload), HEADERS with an HPACK block of chosen fields (optionally PADDED, with
PRIORITY, or cut into CONTINUATION), DATA, WINDOW_UPDATE, SETTINGS, a control frame
(RST_STREAM, PING, GOAWAY, PRIORITY), "deliver what was sent so far" (chunk boundary),
or a server-side action that the target interprets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import h2.config
import h2.connection
import hpack
from hyperframe.frame import ContinuationFrame, Frame, GoAwayFrame, HeadersFrame

from lanthorn.protocol.h2wire import frame
from tests.fuzz.source import Source


def _client_preface() -> bytes:
    config = h2.config.H2Configuration(client_side=True)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    return conn.data_to_send()


PREFACE = _client_preface()  # "PRI * HTTP/2.0..." and the client's SETTINGS

FIELD_NAMES = (
    b":method", b":scheme", b":authority", b":path", b":status", b":protocol", b"host",
    b"range", b"if-none-match", b"accept-encoding", b"content-length", b"te", b"cookie",
    b"connection", b"Upper", b"x-a", b"", b"sec-websocket-version", b"origin",
)  # fmt: skip
FIELD_VALUES = (
    b"GET", b"HEAD", b"POST", b"CONNECT", b"OPTIONS", b"http", b"https", b"/", b"/a.txt",
    b"/big.bin", b"/missing", b"/%2e%2e/x", b"*", b"example", b"bytes=0-1,5-", b"trailers",
    b"gzip, br", b"0", b"10", b" padded", b"a\r\nb", b"", b"/ws", b"websocket", b"13",
)  # fmt: skip
# The fields of a well-formed request, which a HEADERS operation starts from.
REQUEST = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"example")]

FLUSH = "flush"
WIRE = "wire"
ACT = "act"


def _stream(source: Source) -> int:
    first = source.byte()
    return source.number(4) & 0x7FFFFFFF if first == 0xFF else first


def _field(source: Source, options: tuple[bytes, ...]) -> bytes:
    choice = source.byte()
    return source.sized() if choice >= len(options) else options[choice]


def _headers(source: Source, encoder: hpack.Encoder) -> bytes:
    stream_id = _stream(source)
    flags = source.byte()
    fields = list(REQUEST) if flags & 0x10 else []
    if flags & 0x40:
        fields.append((b":path", _field(source, FIELD_VALUES)))
    for _ in range(source.byte() % 8):
        fields.append((_field(source, FIELD_NAMES), _field(source, FIELD_VALUES)))
    block = encoder.encode(fields, huffman=bool(flags & 0x80))
    prefix = b""
    kind_flags = flags & 0x01  # END_STREAM
    if flags & 0x20:  # PRIORITY: dependency, weight
        kind_flags |= 0x20
        prefix += struct.pack(">IB", source.number(4), source.byte())
    padding = b""
    if flags & 0x08:  # PADDED
        kind_flags |= 0x08
        padding = b"\0" * source.byte()
        prefix = bytes((len(padding),)) + prefix
    if not flags & 0x02:
        return frame(1, kind_flags | 0x04, stream_id, prefix + block + padding)
    cut = source.byte() % (len(block) + 1)  # the rest comes in CONTINUATION
    return frame(1, kind_flags, stream_id, prefix + block[:cut] + padding) + frame(
        9, 0x04 if not flags & 0x04 else 0, stream_id, block[cut:]
    )


def _control(source: Source) -> bytes:
    kind = source.byte() % 4
    stream_id = _stream(source)
    if kind == 0:
        return frame(3, 0, stream_id, struct.pack(">I", source.number(4)))  # RST_STREAM
    if kind == 1:
        return frame(6, source.byte() & 1, stream_id, source.take(8).ljust(8, b"\0"))  # PING
    if kind == 2:
        last, code = source.number(4), source.number(4)
        return frame(7, 0, stream_id, struct.pack(">II", last, code))  # GOAWAY
    return frame(2, 0, stream_id, struct.pack(">IB", source.number(4), source.byte()))


def operations(source: Source) -> Iterator[tuple[str, bytes | int]]:
    """(WIRE, bytes) to send, (FLUSH, 0) to deliver them, (ACT, code) for the server."""
    encoder = hpack.Encoder()
    while not source.exhausted:
        op = source.byte() % 8
        if op == 0:  # any frame at all
            kind, flags, stream_id = source.byte(), source.byte(), _stream(source)
            yield WIRE, frame(kind, flags, stream_id, source.sized())
        elif op == 1:
            yield WIRE, _headers(source, encoder)
        elif op == 2:
            stream_id, flags = _stream(source), source.byte() & 0x09
            body = b"x" * (source.number(2) % 20000)
            if flags & 0x08:
                body = bytes((source.byte(),)) + body
            yield WIRE, frame(0, flags, stream_id, body)
        elif op == 3:
            stream_id, increment = _stream(source), source.number(4)
            yield WIRE, frame(8, 0, stream_id, struct.pack(">I", increment))
        elif op == 4:
            pairs = b"".join(
                struct.pack(">HI", source.byte() % 8, source.number(4))
                for _ in range(source.byte() % 4)
            )
            yield WIRE, frame(4, source.byte() & 1, 0, pairs)
        elif op == 5:
            yield WIRE, _control(source)
        elif op == 6:
            yield FLUSH, 0
        else:
            yield ACT, source.byte()


@dataclass
class Seen:
    """What the server's frames so far added up to."""

    goaway: bool = False
    statuses: int = 0


class OutputChecker:
    """Parses everything the server sends as HTTP/2 frames with HPACK blocks a client can
    decode; raises if the server ever sends something malformed."""

    def __init__(self) -> None:
        self._decoder = hpack.Decoder()
        self._block = b""
        self._continuing: int | None = None
        self.seen = Seen()

    def check(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            assert len(view) >= 9, "truncated frame header"
            header, length = Frame.parse_frame_header(view[:9], strict=True)
            assert len(view) >= 9 + length, "truncated frame body"
            header.parse_body(view[9 : 9 + length])
            view = view[9 + length :]
            self._frame(header)

    def _frame(self, parsed: Frame) -> None:
        if self._continuing is not None:
            assert parsed.type == 9 and parsed.stream_id == self._continuing, parsed
        if isinstance(parsed, GoAwayFrame):
            self.seen.goaway = True
        if isinstance(parsed, HeadersFrame | ContinuationFrame):
            assert parsed.stream_id % 2 == 1, parsed
            self._block += parsed.data
            if "END_HEADERS" in parsed.flags:
                fields = list(self._decoder.decode(self._block, raw=True))
                self._block, self._continuing = b"", None
                first_name, status = fields[0]
                assert first_name == b":status" and len(status) == 3, fields
                assert not any(bytes(name).startswith(b":") for name, _ in fields[1:]), fields
                self.seen.statuses += 1
            else:
                self._continuing = parsed.stream_id
        else:
            assert parsed.type in (0, 3, 4, 6, 7, 8), parsed  # nothing else is ours to send


LAST = "last"


def deliveries(source: Source) -> Iterator[tuple[str, bytes | int]]:
    """`operations` as the server sees them: (FLUSH, the bytes sent since the last one),
    (ACT, code), and finally (LAST, what was sent after the last flush)."""
    pending = b""
    for kind, value in operations(source):
        if kind == FLUSH:
            yield FLUSH, pending
            pending = b""
        elif kind == ACT:
            yield ACT, value
        else:
            assert isinstance(value, bytes)
            pending += value
    yield LAST, pending
