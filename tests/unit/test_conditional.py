"""Preconditions (RFC 9110 §13): validator comparison and evaluation order, as a table."""

from __future__ import annotations

import pytest

from lanthorn.core.conditional import (
    evaluate,
    if_range_allows,
    parse_http_date,
    strong_match,
    weak_match,
)

ETAG = b'"abc"'
LM = b"Sun, 06 Nov 1994 08:49:37 GMT"
MTIME = 784111777
EARLIER = b"Sat, 05 Nov 1994 08:49:37 GMT"
LATER = b"Mon, 07 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    "value",
    [LM, b"Sunday, 06-Nov-94 08:49:37 GMT", b"Sun Nov  6 08:49:37 1994"],
)
def test_http_date_three_formats(value: bytes) -> None:
    """§5.6.7: IMF-fixdate, obsolete RFC 850 and asctime formats are all accepted."""
    assert parse_http_date(value) == MTIME


@pytest.mark.parametrize(
    "value",
    [
        b"yesterday",
        b"",
        b"\xff\xfe",
        # Found by the fuzzer: numbers past a C int raised OverflowError (a 500 for a GET
        # with If-Modified-Since, and a logged traceback per request).
        b"Mon, 99999999999 Feb 2004 04:22:35 GMT",
        b"Mon, 09 Feb 99999999999 04:22:35 GMT",
        b"Mon, 09 Feb 2004 99999999999:22:35 GMT",
    ],
)
def test_invalid_dates_ignored(value: bytes) -> None:
    assert parse_http_date(value) is None


def test_overflowing_date_is_ignored_not_a_500() -> None:
    headers = {b"if-modified-since": b"Mon, 99999999999 Feb 2004 04:22:35 GMT"}
    assert evaluate(b"GET", headers, ETAG, MTIME) is None


@pytest.mark.parametrize(
    ("header", "strong", "weak"),
    [
        (b'"abc"', True, True),
        (b'W/"abc"', False, True),  # §8.8.3.2: weak matches only weakly
        (b'"x", "abc"', True, True),
        (b'"x"', False, False),
        (b"*", True, True),
    ],
)
def test_comparison(header: bytes, strong: bool, weak: bool) -> None:
    assert strong_match(header, ETAG) is strong
    assert weak_match(header, ETAG) is weak


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        # §13.1.2 If-None-Match: weak comparison; 304 for GET/HEAD, 412 otherwise
        (b"GET", {b"if-none-match": b'"abc"'}, 304),
        (b"HEAD", {b"if-none-match": b'W/"abc"'}, 304),
        (b"GET", {b"if-none-match": b"*"}, 304),
        (b"GET", {b"if-none-match": b'"nope", "abc"'}, 304),
        (b"GET", {b"if-none-match": b'"nope"'}, None),
        (b"DELETE", {b"if-none-match": b'"abc"'}, 412),
        # §13.1.3 If-Modified-Since: 304 when not modified since
        (b"GET", {b"if-modified-since": LM}, 304),
        (b"GET", {b"if-modified-since": LATER}, 304),
        (b"GET", {b"if-modified-since": EARLIER}, None),
        (b"GET", {b"if-modified-since": b"garbage"}, None),
        # §13.2.2 step 3: If-None-Match present → If-Modified-Since ignored
        (b"GET", {b"if-none-match": b'"nope"', b"if-modified-since": LATER}, None),
        # §13.1.1 If-Match: strong comparison → 412 on mismatch
        (b"GET", {b"if-match": b'"abc"'}, None),
        (b"GET", {b"if-match": b'W/"abc"'}, 412),
        (b"GET", {b"if-match": b'"nope"'}, 412),
        (b"GET", {b"if-match": b"*"}, None),
        # §13.1.4 If-Unmodified-Since
        (b"GET", {b"if-unmodified-since": EARLIER}, 412),
        (b"GET", {b"if-unmodified-since": LM}, None),
        # §13.2.2 step 2: If-Match present → If-Unmodified-Since ignored
        (b"GET", {b"if-match": b'"abc"', b"if-unmodified-since": EARLIER}, None),
        # §13.2.2: step 1 before step 3
        (b"GET", {b"if-match": b'"nope"', b"if-none-match": b'"abc"'}, 412),
        (b"GET", {b"if-unmodified-since": EARLIER, b"if-none-match": b'"abc"'}, 412),
    ],
)
def test_evaluation_order(method: bytes, headers: dict[bytes, bytes], status: int | None) -> None:
    assert evaluate(method, headers, ETAG, MTIME) == status


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        (b'"abc"', True),
        (b'W/"abc"', False),  # §13.1.5: weak tags never match
        (b'"old"', False),
        (LM, True),
        (EARLIER, False),
    ],
)
def test_if_range(value: bytes, allowed: bool) -> None:
    assert if_range_allows(value, ETAG, LM, MTIME, MTIME + 60) is allowed


@pytest.mark.parametrize(("wall", "allowed"), [(MTIME + 0.5, False), (MTIME + 1, True)])
def test_if_range_date_must_be_strong(wall: float, allowed: bool) -> None:
    """§8.8.2.2: a file modified in the current second may change again within it, so
    its Last-Modified is weak until that second has passed; entity-tags are unaffected."""
    assert if_range_allows(LM, ETAG, LM, MTIME, wall) is allowed
    assert if_range_allows(ETAG, ETAG, LM, MTIME, wall)
