"""Extensible priorities (RFC 9218): how urgent a response is, 0 (most) to 7 (least),
3 by default, and whether it may be sent incrementally, interleaved with others of its
urgency (by default not: it is best sent whole, then the next)."""

from __future__ import annotations

DEFAULT = (3, False)


def parse(value: bytes) -> tuple[int, bool]:
    """(urgency, incremental) from a Priority field value or a PRIORITY_UPDATE frame's
    (§4: a Structured Fields Dictionary; §4.1 `u`, an integer 0-7; §4.2 `i`, a
    boolean, true when bare). A member absent, unknown or not valid keeps its default;
    parameters are ignored."""
    urgency, incremental = DEFAULT
    for member in value.split(b","):
        key, eq, item = member.partition(b"=")
        key = key.partition(b";")[0].strip()
        item = item.partition(b";")[0].strip()
        if key == b"u":
            if eq and len(item) == 1 and item in b"01234567":
                urgency = item[0] - 0x30
        elif key == b"i":
            if not eq or item == b"?1":
                incremental = True
            elif item == b"?0":
                incremental = False
    return urgency, incremental
