"""The attack clients' HTTP/2 (the server's frames, protocol/h2wire, built the other
way round): a GET's field block and frame, padding blocks, and a scanner that skips
through what a server sends back, noting GOAWAY frames and nothing else."""

from __future__ import annotations

from hpack import Encoder, NeverIndexedHeaderTuple

from lanthorn.protocol.h2wire import END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING, frame, settings
from lanthorn.protocol.http2 import PREFACE

PING_FRAME = frame(PING, 0, 0, b"lanthorn")
EMPTY_SETTINGS = settings({})
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
