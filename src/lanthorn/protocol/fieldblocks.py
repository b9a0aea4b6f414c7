"""Response header blocks in HPACK (RFC 7541) without the dynamic table.

A server answering the same file again and again sends the same fields: encoded without
indexing (§6.2.2) and without Huffman coding, a block depends only on the fields, never
on the connection's history, so a plan's block is computed once and reused by every
connection (kept in `ResponsePlan.memo`); only the Date field is appended per second.
The price is a few bytes per response against a dynamic table, and no per-request
encoding work, which in Python is the larger cost.

The first block on a connection starts with a dynamic table size update to 0
(§6.3): whatever the client's SETTINGS_HEADER_TABLE_SIZE, our table is then empty and
within its limit, and never needs signalling again.
"""

from __future__ import annotations

from hpack.table import HeaderTable

TABLE_SIZE_ZERO = b"\x20"  # §6.3: 001 prefix, new maximum size 0
_STATIC_FIELDS = {field: index for index, field in enumerate(HeaderTable.STATIC_TABLE, 1)}
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _) in enumerate(HeaderTable.STATIC_TABLE, 1):
    _STATIC_NAMES.setdefault(_name, _index)


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """§5.1: `value` with an N-bit prefix, the prefix byte's high bits set to `first`."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: bytes) -> bytes:
    return _integer(len(value), 7, 0x00) + value  # §5.2, H=0: no Huffman coding


def field(name: bytes, value: bytes) -> bytes:
    """One field: indexed when the static table holds it whole (§6.1), otherwise a
    literal without indexing, naming it by static index when it can (§6.2.2)."""
    whole = _STATIC_FIELDS.get((name, value))
    if whole is not None:
        return _integer(whole, 7, 0x80)
    index = _STATIC_NAMES.get(name)
    if index is not None:
        return _integer(index, 4, 0x00) + _string(value)
    return b"\x00" + _string(name) + _string(value)


def block(fields: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(field(name, value) for name, value in fields)
