"""On-the-fly compression (`--compress`) for compressible types, with a bounded cache.

Only files between `min_bytes` and `max_bytes` are compressed, synchronously and at fast
settings (zstd level 3, brotli quality 5, gzip level 6): bounded inputs keep each call
short, so an event loop is never blocked on a large file — larger files go out as they
are (sendfile). Results are kept in an LRU bounded by total bytes, keyed by the file's
identity, so an edited file is compressed afresh.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from collections.abc import Callable

import brotli
import zstandard

COMPRESSIBLE_PREFIXES = (b"text/",)
COMPRESSIBLE_TYPES = frozenset(
    (
        b"application/javascript",
        b"application/json",
        b"application/manifest+json",
        b"application/xml",
        b"application/xhtml+xml",
        b"application/rss+xml",
        b"application/atom+xml",
        b"application/wasm",
        b"image/svg+xml",
        b"image/x-icon",
    )
)

_ZSTD = zstandard.ZstdCompressor(level=3)
ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "zstd": _ZSTD.compress,
    "br": lambda data: bytes(brotli.compress(data, quality=5)),
    "gzip": lambda data: gzip.compress(data, compresslevel=6, mtime=0),
}


def compressible(content_type: bytes) -> bool:
    base = content_type.partition(b";")[0]
    return base.startswith(COMPRESSIBLE_PREFIXES) or base in COMPRESSIBLE_TYPES


class CompressedCache:
    def __init__(self, max_bytes: int) -> None:
        self._entries: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes

    def get(self, key: tuple[object, ...], coding: str, data: Callable[[], bytes]) -> bytes:
        full_key = (*key, coding)
        hit = self._entries.get(full_key)
        if hit is not None:
            self._entries.move_to_end(full_key)
            return hit
        result = ENCODERS[coding](data())
        self._entries[full_key] = result
        self._bytes += len(result)
        while self._bytes > self._max_bytes and self._entries:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped)
        return result
