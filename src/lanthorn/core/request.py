"""The request as the core sees it, whatever protocol carried it."""

from __future__ import annotations


class Request:
    """A request head. Header names are lowercase bytes; repeated fields are joined with
    ", " as RFC 9110 §5.3 allows for list-valued fields."""

    __slots__ = ("headers", "method", "target", "version")

    def __init__(
        self, method: bytes, target: bytes, version: str, headers: dict[bytes, bytes]
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {self.target!r}, {self.version!r})"
