"""Clocks: monotonic time for deadlines, wall time for Date and logs.

The HTTP Date header (RFC 9110 §6.6.1, IMF-fixdate) only changes once a second, so it is
formatted at most once a second and reused.
"""

from __future__ import annotations

import time
from email.utils import formatdate

monotonic = time.monotonic
wall = time.time


def http_date(epoch_s: float) -> str:
    """IMF-fixdate, e.g. 'Sun, 06 Nov 1994 08:49:37 GMT' (RFC 9110 §5.6.7)."""
    return formatdate(epoch_s, usegmt=True)


class DateCache:
    """The `Date` header value for the current second, formatted once per second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def value(self, epoch_s: float) -> bytes:
        second = int(epoch_s)
        if second != self._second:
            self._value = http_date(second).encode("ascii")
            self._second = second
        return self._value
