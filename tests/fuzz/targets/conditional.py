"""Conditional requests (RFC 9110 §13): HTTP-dates and precondition fields.

Input: a byte of options (method, weak or strong entity-tag), the file's mtime (five
bytes), a byte N and N conditional fields (a chosen name, a value), then an HTTP-date
candidate.

Invariants: parse_http_date returns None or an int for any bytes, and reads back every
date http_date writes (IMF-fixdate), also in the obsolete RFC 850 and asctime forms;
evaluate returns None, 304 or 412, and None without conditional fields; an If-None-Match
naming the current entity-tag gives 304 for GET/HEAD and 412 otherwise (when If-Match /
If-Unmodified-Since pass); `*` in If-Match always passes; if_range_allows never raises,
and accepts the current entity-tag only when it is strong.
"""

from __future__ import annotations

import time

from lanthorn.clock import http_date
from lanthorn.core import conditional
from tests.fuzz.source import Source

NAMES = (b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since")
METHODS = (b"GET", b"HEAD", b"POST", b"PUT")
_LAST = 253402300799  # 9999-12-31T23:59:59Z, the last HTTP-date


def check_dates(candidate: bytes, stamp: int) -> None:
    parsed = conditional.parse_http_date(candidate)
    assert parsed is None or isinstance(parsed, int), parsed
    fixdate = http_date(stamp).encode()
    assert conditional.parse_http_date(fixdate) == stamp, fixdate
    tm = time.gmtime(stamp)
    asctime = time.strftime("%a %b ", tm) + f"{tm.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y", tm)
    assert conditional.parse_http_date(asctime.encode()) == stamp, asctime
    if 1970 <= tm.tm_year < 2069:  # two-digit years: 70-99 are 19xx, 00-68 are 20xx
        rfc850 = time.strftime("%A, %d-%b-%y %H:%M:%S GMT", tm)
        assert conditional.parse_http_date(rfc850.encode()) == stamp, rfc850


def fuzz(data: bytes) -> None:
    source = Source(data)
    options = source.byte()
    method = METHODS[options % len(METHODS)]
    mtime = source.number(5) % (_LAST + 1)
    etag = (b'W/"%x"' if options & 4 else b'"%x"') % mtime
    headers = {}
    for _ in range(source.byte() % 5):
        headers[source.pick(NAMES)] = source.sized()
    candidate = source.rest()
    check_dates(candidate, mtime)
    for value in headers.values():
        check_dates(value, mtime)

    status = conditional.evaluate(method, headers, etag, mtime)
    assert status in (None, 304, 412), status
    if not headers:
        assert status is None
    read = method in (b"GET", b"HEAD")
    both = {**headers, b"if-none-match": etag}
    both.pop(b"if-match", None)
    both.pop(b"if-unmodified-since", None)
    assert conditional.evaluate(method, both, etag, mtime) == (304 if read else 412)
    starred = {b"if-match": b"*"}
    assert conditional.evaluate(method, starred, etag, mtime) is None

    allowed = conditional.if_range_allows(candidate, etag, http_date(mtime).encode(), mtime, 1e12)
    assert isinstance(allowed, bool)
    assert conditional.if_range_allows(etag, etag, b"", mtime, 1e12) == (not options & 4)
