"""HTTP/2 on the wire (RFC 9113 §4, §6): frame types, flags, error codes, settings, and
the server's frames built as bytes — no frame objects, so the hot path allocates only
the bytes it sends."""

from __future__ import annotations

import enum
import struct

# §4.1: length (24 bits, as a byte and a short), type, flags, R + stream identifier.
HEAD = struct.Struct(">BHBBL")
HEAD_SIZE = 9
STREAM_MASK = 0x7FFF_FFFF

# §6 frame types, and RFC 9218 §7.1's PRIORITY_UPDATE.
DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9
PRIORITY_UPDATE = 0x10

# Flags (§6): ACK shares its bit with END_STREAM, on frames that have no stream.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# §6.5.2 settings identifiers, and RFC 8441 §3's.
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6
ENABLE_CONNECT_PROTOCOL = 0x8

DEFAULT_WINDOW = 65_535  # §6.9.2
MAX_WINDOW = 2**31 - 1  # §6.9.1
DEFAULT_FRAME_SIZE = 16_384  # §4.2: also the largest frame we accept
LARGEST_FRAME_SIZE = 2**24 - 1


class ErrorCode(enum.IntEnum):
    """§7."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


_pack_head = HEAD.pack
_U32 = struct.Struct(">L")
_SETTING = struct.Struct(">HL")
_GOAWAY = struct.Struct(">LL")


def head(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    """A frame header (§4.1)."""
    return _pack_head(length >> 16, length & 0xFFFF, kind, flags, stream_id)


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return head(len(payload), kind, flags, stream_id) + payload


def settings(values: dict[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(_SETTING.pack(key, v) for key, v in values.items()))


SETTINGS_ACK = frame(SETTINGS, ACK, 0)


def ping_ack(opaque: bytes) -> bytes:
    return frame(PING, ACK, 0, opaque)


def rst_stream(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, _U32.pack(code))


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(increment))


def goaway(last_stream_id: int, code: int) -> bytes:
    return frame(GOAWAY, 0, 0, _GOAWAY.pack(last_stream_id, code))


def u32(payload: bytes, offset: int = 0) -> int:
    """The 31-bit value at `offset` (the reserved high bit cleared)."""
    value: int = _U32.unpack_from(payload, offset)[0]
    return value & STREAM_MASK


def setting_pairs(payload: bytes) -> list[tuple[int, int]]:
    """§6.5.1: identifier and value pairs (the caller checked the length is 6n)."""
    return [(key, value) for key, value in _SETTING.iter_unpack(payload)]
