"""Byte ranges (RFC 9110 §14) as a table."""

from __future__ import annotations

import pytest

from lanthorn.core.ranges import MAX_RANGES, Span, Unsatisfiable, parse

SIZE = 10_000


@pytest.mark.parametrize(
    ("header", "spans"),
    [
        (b"bytes=0-499", [Span(0, 499)]),
        (b"bytes=0-0", [Span(0, 0)]),
        (b"bytes=-500", [Span(9500, 9999)]),  # §14.1.2 suffix
        (b"bytes=9500-", [Span(9500, 9999)]),  # open-ended
        (b"bytes=9000-20000", [Span(9000, 9999)]),  # last byte past the end is clipped
        (b"bytes=-20000", [Span(0, 9999)]),
        (b"BYTES = 1-2", [Span(1, 2)]),
        (b"bytes=0-9,5000-5009", [Span(0, 9), Span(5000, 5009)]),
        (b"bytes=5000-5009,0-9", [Span(5000, 5009), Span(0, 9)]),  # client order kept
        (b"bytes=0-99,50-149", [Span(0, 149)]),  # overlapping → coalesced
        (b"bytes=0-9,20-29", [Span(0, 29)]),  # a small gap → coalesced
        (b"bytes=0-9, ,100-109", [Span(0, 9), Span(100, 109)]),  # empty elements allowed
        (b"bytes=20000-30000,0-0", [Span(0, 0)]),  # an unsatisfiable part is dropped
    ],
)
def test_satisfiable(header: bytes, spans: list[Span]) -> None:
    assert parse(header, SIZE) == spans


@pytest.mark.parametrize(
    "header",
    [
        b"items=0-9",  # §14.2: another unit is ignored
        b"bytes",
        b"bytes=",
        b"bytes=a-b",
        b"bytes=5-1",  # last < first: invalid
        # ... also past the clamp (found by the fuzzer: both became 10**18, so equal)
        b"bytes=0-5, 99999999999999999999-11111111111111111111",
        b"bytes=0-5, " + b"7" * 5000 + b"-" + b"6" * 5000,
        b"bytes=--5",
        b"bytes=1-2-3",
        b"bytes=-",
        b"bytes=0-x",
    ],
)
def test_ignored(header: bytes) -> None:
    assert parse(header, SIZE) is None


def test_too_many_ranges_are_ignored_not_amplified() -> None:
    """nginx max_ranges: past the cap the whole representation is sent once."""
    header = b"bytes=" + b",".join(b"%d-%d" % (i * 200, i * 200) for i in range(MAX_RANGES + 1))
    assert parse(header, SIZE) is None
    many_overlapping = b"bytes=" + b",".join([b"0-9999"] * 50)
    assert parse(many_overlapping, SIZE) == [Span(0, 9999)]  # coalesced to one


@pytest.mark.parametrize("header", [b"bytes=10000-", b"bytes=20000-30000", b"bytes=-0"])
def test_unsatisfiable(header: bytes) -> None:
    """§15.5.17: no range overlaps → 416."""
    with pytest.raises(Unsatisfiable):
        parse(header, SIZE)


def test_empty_file_has_no_satisfiable_range() -> None:
    with pytest.raises(Unsatisfiable):
        parse(b"bytes=0-0", 0)
    with pytest.raises(Unsatisfiable):
        parse(b"bytes=-5", 0)


def test_large_offsets() -> None:
    size = 3 * 2**31
    assert parse(b"bytes=%d-" % (2**32), size) == [Span(2**32, size - 1)]


def test_huge_numbers_are_clamped_not_parsed_whole() -> None:
    """Thousands of digits must not reach int() (Python refuses > 4300 digits)."""
    huge = b"9" * 5000
    assert parse(b"bytes=0-" + huge, SIZE) == [Span(0, SIZE - 1)]
    assert parse(b"bytes=-" + huge, SIZE) == [Span(0, SIZE - 1)]
    assert parse(b"bytes=" + b"0" * 5000 + b"5-9", SIZE) == [Span(5, 9)]
    with pytest.raises(Unsatisfiable):
        parse(b"bytes=" + huge + b"-", SIZE)
