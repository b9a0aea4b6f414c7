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


class TunnelRequested(RequestReceived):
    """An extended CONNECT (RFC 8441 §4) asks to open a tunnel for another protocol on
    its stream — a WebSocket for `:protocol: websocket`, which `request.headers` keeps
    under b":protocol". It arrives with the head: the stream stays open both ways, and
    what the client sends on it comes as `TunnelData`."""

    __slots__ = ()

    def __init__(self, request: Request, stream_id: int) -> None:
        super().__init__(request, True, stream_id)


class TunnelData:
    """Bytes the client sent on a tunnel's stream; `ended`: it will send no more
    (END_STREAM, as TCP's FIN). `flow` is what they cost the stream's receive window:
    the window reopens only when the driver acknowledges them, so a tunnel whose peer
    does not read what it is sent stops being sent to (RFC 9113 §5.2)."""

    __slots__ = ("data", "ended", "flow", "stream_id")

    def __init__(self, stream_id: int, data: bytes, ended: bool, flow: int) -> None:
        self.stream_id = stream_id
        self.data = data
        self.ended = ended
        self.flow = flow


class ProtocolFailed:
    """The byte stream broke the protocol; nothing after it can be parsed."""

    __slots__ = ("error",)

    def __init__(self, error: ProtocolError) -> None:
        self.error = error


class StreamFailed:
    """One stream's request broke a limit (HTTP/2): answer `error.status` on it; the
    connection goes on. `request`: the request refused, when its head was whole."""

    __slots__ = ("error", "request", "stream_id")

    def __init__(
        self, stream_id: int, error: ProtocolError, request: Request | None = None
    ) -> None:
        self.stream_id = stream_id
        self.error = error
        self.request = request


class StreamReset:
    """The client abandoned a stream (HTTP/2 RST_STREAM): stop sending on it."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id


class PriorityChanged:
    """The client reprioritised a stream (RFC 9218 §7, PRIORITY_UPDATE): `value` is a
    Priority field value, for the response being sent or still to come."""

    __slots__ = ("stream_id", "value")

    def __init__(self, stream_id: int, value: bytes) -> None:
        self.stream_id = stream_id
        self.value = value


Event = RequestReceived | TunnelData | ProtocolFailed | StreamFailed | StreamReset | PriorityChanged
