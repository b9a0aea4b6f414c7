"""What adapters report to the driver. Events are past tense (DESIGN §6)."""

from __future__ import annotations

from lanthorn.core.request import Request
from lanthorn.errors import ProtocolError


class RequestReceived:
    """A complete request (head and any body, which static serving discards).
    `stream_id` is 0 on HTTP/1, where requests are answered in order."""

    __slots__ = ("keep_alive", "request", "stream_id")

    def __init__(self, request: Request, keep_alive: bool, stream_id: int = 0) -> None:
        self.request = request
        self.keep_alive = keep_alive
        self.stream_id = stream_id


class UpgradeRequested(RequestReceived):
    """A request that asks to switch protocols — `Upgrade` (RFC 9110 §7.8) or CONNECT —
    after which HTTP/1 parsing stops. `rest` is what followed it on the connection, for
    the protocol that takes over. Answered as a plain request, it ends the connection."""

    __slots__ = ("rest",)

    def __init__(self, request: Request, rest: bytes) -> None:
        super().__init__(request, False)
        self.rest = rest


class ProtocolFailed:
    """The byte stream broke the protocol; nothing after it can be parsed."""

    __slots__ = ("error",)

    def __init__(self, error: ProtocolError) -> None:
        self.error = error


class StreamFailed:
    """One stream's request broke a limit (HTTP/2): answer `error.status` on it; the
    connection goes on."""

    __slots__ = ("error", "stream_id")

    def __init__(self, stream_id: int, error: ProtocolError) -> None:
        self.stream_id = stream_id
        self.error = error


class StreamReset:
    """The client abandoned a stream (HTTP/2 RST_STREAM): stop sending on it."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


Event = RequestReceived | ProtocolFailed | StreamFailed | StreamReset
