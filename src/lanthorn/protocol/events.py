"""What adapters report to the driver. Events are past tense (DESIGN §6)."""

from __future__ import annotations

from lanthorn.core.request import Request
from lanthorn.errors import ProtocolError


class RequestReceived:
    """A complete request (head and any body, which static serving discards)."""

    __slots__ = ("keep_alive", "request")

    def __init__(self, request: Request, keep_alive: bool) -> None:
        self.request = request
        self.keep_alive = keep_alive


class ProtocolFailed:
    """The byte stream broke the protocol; nothing after it can be parsed."""

    __slots__ = ("error",)

    def __init__(self, error: ProtocolError) -> None:
        self.error = error


Event = RequestReceived | ProtocolFailed
