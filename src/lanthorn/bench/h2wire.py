"""HTTP/2 frames built by hand (RFC 9113 §4.1) for the attack clients, and a scanner
that skips through what a server sends back, noting GOAWAY frames and nothing else."""

from __future__ import annotations

import struct

from hpack import Encoder, NeverIndexedHeaderTuple

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8, 0x9,
)  # fmt: skip
END_STREAM, END_HEADERS = 0x1, 0x4
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
CANCEL = 0x8
MAX_FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE's initial value


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes((kind, flags))
        + (struct.pack(">I", stream_id & 0x7FFFFFFF) + payload)
    )


def settings(**values: int) -> bytes:
    ids = {"initial_window_size": SETTINGS_INITIAL_WINDOW_SIZE}
    payload = b"".join(struct.pack(">HI", ids[name], v) for name, v in values.items())
    return frame(SETTINGS, 0, 0, payload)


PING_FRAME = frame(PING, 0, 0, b"lanthorn")
EMPTY_SETTINGS = settings()
OPENING = PREFACE + EMPTY_SETTINGS


def request_block(path: str, authority: str = "127.0.0.1") -> bytes:
    """An HPACK block for a GET, with no dynamic-table entries (so each stream may
    reuse it whatever the server's decoder has seen)."""
    fields = [(":method", "GET"), (":scheme", "http"), (":path", path),
              (":authority", authority)]  # fmt: skip
    return Encoder().encode([NeverIndexedHeaderTuple(n, v) for n, v in fields], huffman=False)


def get(stream_id: int, block: bytes) -> bytes:
    """HEADERS for a complete GET: END_STREAM | END_HEADERS."""
    return frame(HEADERS, END_STREAM | END_HEADERS, stream_id, block)


def padding_block(size: int) -> bytes:
    """`size`-odd bytes of HPACK: literal never-indexed `x-pad` fields of 4000 bytes."""
    field = Encoder().encode([NeverIndexedHeaderTuple("x-pad", "a" * 4000)], huffman=False)
    return field * (size // len(field) + 1)


class Scanner:
    """Frames off a byte stream: counts them and keeps the GOAWAY error codes."""

    __slots__ = ("buffer", "frames", "goaway")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.frames = 0
        self.goaway: list[int] = []

    def feed(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos, end = 0, len(buf)
        while end - pos >= 9:
            length = int.from_bytes(buf[pos : pos + 3], "big")
            if end - pos < 9 + length:
                break
            if buf[pos + 3] == GOAWAY and length >= 8:
                self.goaway.append(int.from_bytes(buf[pos + 13 : pos + 17], "big"))
            self.frames += 1
            pos += 9 + length
        del buf[:pos]
