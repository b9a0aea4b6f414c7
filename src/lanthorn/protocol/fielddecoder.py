"""Request field blocks decoded with HPACK (RFC 7541), remembering blocks seen before.

A client sends the same request again and again (a browser's assets differ in :path,
h2load's not at all), and once its dynamic table holds the fields, the block is nothing
but indexes into it: the same octets, decoded to the same list. Decoding a block is a
pure function of its octets and the dynamic table (§2.3), so a block that left the
table as it was may be answered from memory while the table stays as it is. Any block
that changes the table (an insertion, an eviction, a size update) empties the memory.
Only short blocks are kept, and few, so a connection's memory stays small.
"""

from __future__ import annotations

from collections.abc import Sequence

import hpack
from hpack.exceptions import HPACKError, OversizedHeaderListError

__all__ = ["BlockDecoder", "DecodeFailed", "OversizedHeaderListError"]

_KEPT = 32  # blocks remembered per connection
_KEPT_BYTES = 512  # the longest block remembered

Fields = list[tuple[bytes, bytes]]


class DecodeFailed(Exception):
    """The block is not valid HPACK: a connection error (RFC 9113 §4.3)."""


class BlockDecoder:
    __slots__ = ("_decoder", "_first", "_known", "_length", "_size", "_table")

    def __init__(self, max_header_list_size: int) -> None:
        self._decoder = hpack.Decoder(max_header_list_size=max_header_list_size)
        self._table = self._decoder.header_table
        self._known: dict[bytes, Fields] = {}
        # The table's state when `_known` was filled: its newest entry (by identity:
        # every insertion is a new tuple), its length and its maximum size.
        self._first: object = None
        self._length = 0
        self._size = self._table.maxsize

    def decode(self, block: bytes) -> Fields:
        """The block's fields; raises OversizedHeaderListError past the list size
        given, DecodeFailed for anything else wrong with it."""
        known = self._known.get(block)
        if known is not None:
            return known
        try:
            fields: Fields = self._decoder.decode(block, raw=True)  # type: ignore[assignment]
        except OversizedHeaderListError:
            raise
        except (HPACKError, IndexError, TypeError, ValueError) as exc:
            raise DecodeFailed(str(exc) or type(exc).__name__) from exc
        table = self._table
        # Read as objects: compiled (mypyc), a tuple read as a tuple is a fresh copy,
        # which `is` would never find the same.
        entries: Sequence[object] = table.dynamic_entries
        first = entries[0] if entries else None
        if first is self._first and len(entries) == self._length and table.maxsize == self._size:
            if len(block) <= _KEPT_BYTES and len(self._known) < _KEPT:
                self._known[block] = fields
        else:  # the table changed: what was remembered may now decode otherwise
            self._known.clear()
            self._first, self._length, self._size = first, len(entries), table.maxsize
        return fields
