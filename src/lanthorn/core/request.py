"""The request as the core sees it, whatever protocol carried it."""

from __future__ import annotations

import math


class Request:
    """A request head. Header names are lowercase bytes; repeated fields are joined with
    ", " as RFC 9110 §5.3 allows for list-valued fields. The headers are never changed
    once parsed (requests made from one field block share them)."""

    __slots__ = ("headers", "method", "target", "version", "wall")

    def __init__(
        self, method: bytes, target: bytes, version: str, headers: dict[bytes, bytes]
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        # Wall-clock time the response is decided at (the driver sets it): a date
        # validator is strong only if the file has not changed within its second since
        # (RFC 9110 §8.8.2.2). Unknown (inf) counts every date as strong.
        self.wall = math.inf

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {self.target!r}, {self.version!r})"
