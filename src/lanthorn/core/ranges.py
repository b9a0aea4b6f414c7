"""Byte ranges (RFC 9110 §14): parse, clip, coalesce, bound.

A Range request can amplify: many small or overlapping ranges make one request cost
many times the file. Ranges are therefore coalesced when they overlap or nearly touch,
and a request with more than MAX_RANGES after that is answered in full (§14.2 lets a
server ignore Range), as nginx's max_ranges does.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_RANGES = 16
COALESCE_GAP = 80  # bytes: about a part header; closer ranges are merged


_HUGE = 10**18  # beyond any file: larger numbers are clamped, never int()-ed whole


def _number(digits: bytes) -> int:
    digits = digits.lstrip(b"0")
    return _HUGE if len(digits) > 18 else int(digits or b"0")


def _magnitude(digits: bytes) -> tuple[int, bytes]:
    """Orders digit strings as the numbers they spell, however long (no int())."""
    digits = digits.lstrip(b"0")
    return len(digits), digits


class Span(NamedTuple):
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    """No range overlaps the representation: 416 with `Content-Range: bytes */size`."""


def parse(value: bytes, size: int) -> list[Span] | None:
    """Spans to send, or None to ignore the header and send 200. Ascending when any
    were merged; otherwise as the client listed them (§14.6 SHOULD), which never overlap.

    None: a unit other than `bytes` (§14.2), a syntactically invalid set (§14.1.1), or
    too many ranges. Raises Unsatisfiable when the set is valid but no range overlaps.
    """
    unit, eq, ranges = value.partition(b"=")
    if not eq or unit.strip().lower() != b"bytes":
        return None
    spans: list[Span] = []
    specs = [spec.strip() for spec in ranges.split(b",")]
    if not any(specs) or len(specs) > 4 * MAX_RANGES:
        return None
    for spec in specs:
        if not spec:
            continue  # empty list elements are allowed (§5.6.1)
        first, dash, last = spec.partition(b"-")
        if not dash or not (first.isdigit() or first == b"") or not (last.isdigit() or not last):
            return None
        if not first:  # suffix: the last N bytes
            if not last:
                return None
            count = _number(last)
            if count and size:
                spans.append(Span(max(0, size - count), size - 1))
            continue
        start = _number(first)
        if last:
            if _magnitude(last) < _magnitude(first):
                return None  # §14.1.1: an invalid range-spec makes the whole set invalid
            end = _number(last)
        else:
            end = size - 1
        if start < size:
            spans.append(Span(start, min(end, size - 1)))  # clip past the end
    if not spans:
        raise Unsatisfiable
    merged = coalesce(spans)
    if len(merged) == len(spans):
        merged = spans  # nothing merged: keep the client's order (§14.6 SHOULD)
    return merged if len(merged) <= MAX_RANGES else None


def coalesce(spans: list[Span]) -> list[Span]:
    """Sort and merge overlapping or nearly adjacent spans."""
    ordered = sorted(spans)
    merged = [ordered[0]]
    for span in ordered[1:]:
        last = merged[-1]
        if span.start <= last.end + 1 + COALESCE_GAP:
            merged[-1] = Span(last.start, max(last.end, span.end))
        else:
            merged.append(span)
    return merged
