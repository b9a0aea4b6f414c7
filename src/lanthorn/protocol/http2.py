"""HTTP/2 adapter (RFC 9113), server side: bytes → per-stream events, plans → frames.

It reads and writes frames itself (h2wire), keeps the stream states (§5.1) and both
directions' flow control (§6.9), and decodes request field blocks with HPACK through a
decoder that remembers blocks seen before (fielddecoder). The common case — a GET whose
block the connection sent before, answered by a plan whose block is precomputed
(fieldblocks) — allocates little more than the bytes it sends.

Errors follow §5.4: a frame that breaks the connection's rules ends it with GOAWAY and
the error code (ProtocolFailed, last); one that breaks only a stream's resets it
(RST_STREAM). Request field sections are checked per stream (requestfields: a malformed
one resets only its stream, §8.1.1), and the limits enforced: field count and size
(431), target length (414), body size (413), concurrent streams (REFUSED_STREAM,
§5.1.2), a hard cap on decoded field lists, and clients that reset streams — or make
the server reset them, "MadeYouReset" — faster than they let them finish (the "rapid
reset" attack, CVE-2023-44487: GOAWAY with ENHANCE_YOUR_CALM). Before a frame is
parsed, frameguard bounds control-frame floods and field blocks that grow past the
advertised SETTINGS_MAX_HEADER_LIST_SIZE. The adapter never decides a response and
never touches a file: the driver hands it bytes that fit `window(stream_id)`. `now`
comes with the bytes, so a request that takes too long to arrive can be found per
stream (`stalled`).

Tunnels (RFC 8441): when built with `tunnels`, the adapter advertises
SETTINGS_ENABLE_CONNECT_PROTOCOL; an extended CONNECT is reported with its head
(`TunnelRequested`) and what the client sends on its stream as `TunnelData`, whose
receive window reopens only when the driver `acknowledge`s it.
"""

from __future__ import annotations

from lanthorn.config import Limits
from lanthorn.core.request import Request
from lanthorn.core.response import ResponsePlan
from lanthorn.errors import ProtocolError
from lanthorn.protocol import fieldblocks, requestfields
from lanthorn.protocol import h2wire as wire
from lanthorn.protocol.events import (
    Event,
    PriorityChanged,
    ProtocolFailed,
    RequestReceived,
    StreamFailed,
    StreamReset,
    TunnelData,
    TunnelRequested,
)
from lanthorn.protocol.fielddecoder import BlockDecoder, DecodeFailed, OversizedHeaderListError
from lanthorn.protocol.frameguard import PER_DATA_FRAME, FrameGuard
from lanthorn.protocol.h2wire import ErrorCode
from lanthorn.protocol.incoming import Incoming

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 §3.4
_SERVER = (b"server", b"lanthorn")
_EARLY_HINTS = (b":status", b"103")
_HEAD = wire.HEAD
_HEAD_SIZE = wire.HEAD_SIZE
_MASK = wire.STREAM_MASK
_head = wire.head
# Request bodies are taken in at once (or by a tunnel's pace): the windows we grant are
# topped up once half of them is used, so the client never waits on us for long.
_TOP_UP = wire.DEFAULT_WINDOW // 2
# The flags a HEADERS frame may carry (§6.2), and one of ours: it named itself as the
# stream it depends on.
_HEADERS_FLAGS = wire.END_STREAM | wire.END_HEADERS | wire.PADDED | wire.PRIORITY_FLAG
_SELF_DEPENDENT = 0x100
# Closed streams remembered, to tell a late frame (after our RST_STREAM: ignored, §5.1)
# from a frame on a stream that ended (STREAM_CLOSED) or never was (PROTOCOL_ERROR).
_CLOSED_KEPT = 1024


# The Date field's encoding, redone when the second changes. One tuple, replaced whole,
# so threads sharing it never pair one second's date with another's encoding.
_date_block: tuple[bytes, bytes] = (b"", b"")


def _date_field(date: bytes) -> bytes:
    global _date_block  # noqa: PLW0603 - a per-process cache, like the Date cache itself
    cached, encoded = _date_block
    if date is not cached:
        encoded = fieldblocks.field(b"date", date)
        _date_block = (date, encoded)
    return encoded


# Resets a client may send beyond the streams it let finish before it is cut off.
_RESET_ALLOWANCE = 100


class _Stream:
    """A stream that is open or half-closed (§5.1): `inbound` while the client may send
    on it, `outbound` while we may."""

    __slots__ = ("credit", "expected", "id", "inbound", "outbound", "unacked", "window")

    def __init__(self, stream_id: int, window: int, inbound: bool) -> None:
        self.id = stream_id
        self.window = window  # what we may send (§6.9)
        self.credit = wire.DEFAULT_WINDOW  # what the client may send
        self.unacked = 0  # taken in, not yet granted again
        self.expected = -1  # content-length the request declared (§8.1.1)
        self.inbound = inbound
        self.outbound = True


class Http2:
    """One HTTP/2 connection's frame parser and serialiser (server side)."""

    protocol = "HTTP/2"
    version = "2.0"  # as a request states it (the access log's protocol)
    batched = True  # the engine reports each batch written (`drained`)
    __slots__ = (
        "_block",
        "_block_flags",
        "_block_stream",
        "_closed",
        "_credit",
        "_decoder",
        "_events",
        "_failed",
        "_first_block",
        "_guard",
        "_highest",
        "_incoming",
        "_initial_window",
        "_last_fields",
        "_last_request",
        "_last_stream",
        "_limits",
        "_max_frame",
        "_now",
        "_out",
        "_pending",
        "_preface",
        "_streams",
        "_tunnels",
        "_unacked",
        "_window",
        "abuse",
        "answered",
        "peer_done",
        "resets",
    )

    def __init__(self, limits: Limits, now: float, tunnels: bool = False) -> None:
        self._limits = limits
        header_list = limits.max_head_bytes + limits.max_url_bytes
        settings = {
            wire.MAX_CONCURRENT_STREAMS: limits.max_streams,
            wire.MAX_HEADER_LIST_SIZE: header_list,
        }
        if tunnels:
            settings[wire.ENABLE_CONNECT_PROTOCOL] = 1  # RFC 8441 §3
        # Frames to send; DATA payloads may be views of a body read in one piece.
        self._out: list[bytes] = [wire.settings(settings)]  # §3.4: our preface
        # Lists over the advertised size but under twice it get 431 (requestfields).
        self._decoder = BlockDecoder(2 * header_list)
        # Field blocks are refused past the advertised size as their octets arrive.
        self._guard = FrameGuard(header_list, now, len(PREFACE))
        self._incoming = Incoming()
        # Open tunnels' streams; None when extended CONNECT is not offered.
        self._tunnels: set[int] | None = set() if tunnels else None
        self._events: list[Event] = []
        self._streams: dict[int, _Stream] = {}
        self._closed: dict[int, bool] = {}  # recently closed: True if by our RST_STREAM
        self._highest = 0  # the highest stream the client opened (§5.1.1)
        self._window = wire.DEFAULT_WINDOW  # the connection's, for what we send
        self._credit = wire.DEFAULT_WINDOW  # the connection's, for what the client sends
        self._unacked = 0
        self._initial_window = wire.DEFAULT_WINDOW  # the client's SETTINGS (§6.5.2)
        self._max_frame = wire.DEFAULT_FRAME_SIZE  # the largest frame we may send
        self._pending = b""  # a frame still arriving
        self._block_stream = 0  # the stream whose field block continues (§6.10), or 0
        self._block: list[bytes] = []
        self._block_flags = 0  # its HEADERS frame's flags
        self._first_block = True  # the connection's first block empties the table
        self._last_fields: list[tuple[bytes, bytes]] | None = None
        self._last_request = Request(b"", b"", self.version, {})
        self.answered = 0  # streams the client let us finish
        self.resets = 0  # streams the client reset, or made us reset
        self.peer_done = False  # the client sent GOAWAY: no new streams will come
        self.abuse = ""  # why the client was cut off for abuse (ENHANCE_YOUR_CALM)
        self._last_stream = 2**31  # after our GOAWAY: streams above it are refused
        self._failed = False  # a connection error: nothing more is read or sent
        self._preface = b""  # the client's connection preface so far, until it is whole
        self._now = 0.0

    @property
    def in_message(self) -> bool:
        """Some request has begun (its head arrived) and has not ended."""
        return self._incoming.in_message

    @property
    def buffered(self) -> int:
        """Input bytes held until a frame or field block is whole."""
        return self._guard.buffered

    def flushed(self, now: float) -> bool:
        """What `output` gave is the engine's to write: nothing is held here."""
        return True

    def stalled(self, before: float) -> list[int]:
        """Streams whose request began at or before `before` and has not ended; they
        are forgotten here (the driver answers 408 on them)."""
        return self._incoming.stalled(before)

    def oldest(self) -> float | None:
        """When the oldest unfinished request began, if any."""
        return self._incoming.oldest()

    # --- bytes in -------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[Event]:
        """Frames in `data` → events in order; a connection error comes last."""
        events: list[Event] = []
        if self._failed:
            return events
        self._events = events
        self._now = now
        skip = 0
        if len(self._preface) < len(PREFACE):
            skip = len(PREFACE) - len(self._preface)
            self._preface += data[:skip]
            if not PREFACE.startswith(self._preface):  # §3.4: a connection error
                self._error(ErrorCode.PROTOCOL_ERROR, "no HTTP/2 connection preface")
                return events
        abuse = self._guard.scan(data, now)
        if abuse is not None:  # none of these frames is parsed
            self._calm(abuse)
            return events
        if skip:
            data = data[skip:]
        buffer = self._pending + data if self._pending else data
        size = len(buffer)
        at = 0
        unpack = _HEAD.unpack_from
        while size - at >= _HEAD_SIZE:
            high, low, kind, flags, stream_id = unpack(buffer, at)
            length = high << 16 | low
            if length > wire.DEFAULT_FRAME_SIZE:  # §4.2: past our SETTINGS_MAX_FRAME_SIZE
                self._error(ErrorCode.FRAME_SIZE_ERROR, "frame larger than 16384 octets")
                return events
            end = at + _HEAD_SIZE + length
            if end > size:
                break
            payload = buffer[at + _HEAD_SIZE : end]
            at = end
            stream_id &= _MASK
            if self._block_stream and kind != wire.CONTINUATION:
                self._error(ErrorCode.PROTOCOL_ERROR, "frame inside a field block")  # §6.10
            elif kind == wire.HEADERS:
                self._headers(flags, stream_id, payload)
            elif kind == wire.DATA:
                self._data(flags, stream_id, payload)
            elif kind == wire.WINDOW_UPDATE:
                self._window_update(stream_id, payload)
            else:
                self._control(kind, flags, stream_id, payload)
            if self._failed:
                return events
        self._pending = buffer[at:] if at < size else b""
        return events

    def _control(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if kind == wire.SETTINGS:
            self._settings(flags, stream_id, payload)
        elif kind == wire.PING:
            if len(payload) != 8:
                self._error(ErrorCode.FRAME_SIZE_ERROR, "PING not 8 octets")  # §6.7
            elif stream_id:
                self._error(ErrorCode.PROTOCOL_ERROR, "PING on a stream")
            elif not flags & wire.ACK:
                self._out.append(wire.ping_ack(payload))
        elif kind == wire.RST_STREAM:
            self._rst_stream(stream_id, payload)
        elif kind == wire.PRIORITY:  # §6.3: read, checked and ignored (RFC 9113 §5.3.2)
            if len(payload) != 5:
                self._error(ErrorCode.FRAME_SIZE_ERROR, "PRIORITY not 5 octets")
            elif not stream_id:
                self._error(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0")
            elif wire.u32(payload) == stream_id:  # §5.3.1
                self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR)
        elif kind == wire.CONTINUATION:
            if not self._block_stream or stream_id != self._block_stream:
                self._error(ErrorCode.PROTOCOL_ERROR, "CONTINUATION out of place")  # §6.10
                return
            self._block.append(payload)
            if flags & wire.END_HEADERS:
                block = b"".join(self._block)
                self._block_stream, self._block = 0, []
                self._field_block(stream_id, block, self._block_flags)
        elif kind == wire.GOAWAY:
            self._goaway(stream_id, payload)
        elif kind == wire.PUSH_PROMISE:  # §8.4: a client cannot push
            self._error(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        elif kind == wire.PRIORITY_UPDATE:
            self._priority_update(stream_id, payload)
        # Other types are extensions we do not know: ignored (§5.5).

    def _headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if not stream_id & 1:  # §5.1.1: 0, or a stream only a server may open
            self._error(ErrorCode.PROTOCOL_ERROR, f"HEADERS on stream {stream_id}")
            return
        flags &= _HEADERS_FLAGS
        start, end = 0, len(payload)
        if flags & wire.PADDED:  # §6.2
            start = 1
            end -= payload[0] if payload else 1
        if flags & wire.PRIORITY_FLAG:
            start += 5
        if end < start:
            self._error(ErrorCode.PROTOCOL_ERROR, "HEADERS padding or priority too long")
            return
        if flags & wire.PRIORITY_FLAG and wire.u32(payload, start - 5) == stream_id:
            flags |= _SELF_DEPENDENT  # §5.3.1: a stream error, once the block is decoded
        fragment = payload[start:end]
        if flags & wire.END_HEADERS:
            self._field_block(stream_id, fragment, flags)
        else:
            self._block_stream, self._block, self._block_flags = stream_id, [fragment], flags

    def _field_block(self, stream_id: int, block: bytes, flags: int) -> None:
        """A whole field block: decoded whatever becomes of its stream, since the HPACK
        state is the connection's (§4.3)."""
        try:
            fields = self._decoder.decode(block)
        except OversizedHeaderListError:
            self._calm("header list larger than twice SETTINGS_MAX_HEADER_LIST_SIZE")
            return
        except DecodeFailed as exc:
            self._error(ErrorCode.COMPRESSION_ERROR, f"HPACK: {exc}")
            return
        end_stream = bool(flags & wire.END_STREAM)
        stream = self._streams.get(stream_id)
        if stream_id > self._highest:
            self._open(stream_id, fields, end_stream, bool(flags & _SELF_DEPENDENT))
        elif stream is not None and stream.inbound:
            # Trailers (§8.1): they end the request, carry no pseudo-header fields, and
            # are not part of the head (RFC 9110 §6.5).
            if not end_stream or any(name[:1] == b":" for name, _ in fields):
                self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR, known=True)
                return
            self._ended(stream_id, stream)
        else:
            self._closed_frame(stream_id, stream, "HEADERS")

    def _open(
        self, stream_id: int, fields: list[tuple[bytes, bytes]], end_stream: bool, selfish: bool
    ) -> None:
        self._highest = stream_id
        if stream_id > self._last_stream:
            # Opened after our GOAWAY: refused, so the client may retry it elsewhere.
            self._reset(stream_id, ErrorCode.REFUSED_STREAM)
            return
        if selfish:
            self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR)
            return
        if len(self._streams) >= self._limits.max_streams:
            # §5.1.2: over SETTINGS_MAX_CONCURRENT_STREAMS; the client may retry it.
            self._stream_error(stream_id, ErrorCode.REFUSED_STREAM)
            return
        stream = self._streams[stream_id] = _Stream(stream_id, self._initial_window, not end_stream)
        try:
            request = self._request(fields)
        except requestfields.Malformed:
            self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR)
            return
        except ProtocolError as error:
            if not end_stream:  # answered now; what else comes on it is discarded
                self._incoming.begin(stream_id, None, self._now)
            self._events.append(StreamFailed(stream_id, error))
            return
        length = request.headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():  # §8.1.1: malformed
                self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR)
                return
            stream.expected = int(length)
            if end_stream and stream.expected:
                self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR)
                return
        if request.method == b"CONNECT":  # extended: requestfields refused plain CONNECT
            if self._tunnels is None:  # RFC 8441 §4: not offered, so malformed
                self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR)
                return
            self._tunnels.add(stream_id)
            self._events.append(TunnelRequested(request, stream_id))
            if end_stream:
                self._ended(stream_id, stream)
            return
        if end_stream:
            self._events.append(RequestReceived(request, True, stream_id))
        else:
            self._incoming.begin(stream_id, request, self._now)

    def _request(self, fields: list[tuple[bytes, bytes]]) -> Request:
        """The request the fields make. A block decoded from memory is the very list
        decoded before (fielddecoder), and makes the same request: the last one made is
        copied (its fields are never changed once parsed, so they are shared)."""
        if fields is self._last_fields:
            last = self._last_request
            return Request(last.method, last.target, last.version, last.headers)
        request = requestfields.request(fields, self._limits, self.version)
        self._last_fields, self._last_request = fields, request
        return request

    def _half_close(self, stream_id: int, stream: _Stream) -> None:
        """The client's END_STREAM: the stream closes if our side is done too (§5.1)."""
        stream.inbound = False
        if not stream.outbound:
            self._close(stream_id, by_us=False)

    def _ended(self, stream_id: int, stream: _Stream) -> None:
        """The client's END_STREAM on a stream whose request had begun."""
        self._half_close(stream_id, stream)
        if self._tunnels and stream_id in self._tunnels:
            self._tunnels.discard(stream_id)
            self._events.append(TunnelData(stream_id, b"", True, 0))
            return
        request = self._incoming.end(stream_id)
        if request is not None:
            self._events.append(RequestReceived(request, True, stream_id))

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if not stream_id:
            self._error(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")  # §6.1
            return
        flow = len(payload)  # padding included (§6.9.1)
        if flow > self._credit:
            self._error(ErrorCode.FLOW_CONTROL_ERROR, "DATA past the connection window")
            return
        self._credit -= flow
        start, end = 0, flow
        if flags & wire.PADDED:  # §6.1
            start = 1
            end -= payload[0] if payload else 1
            if end < start:
                self._error(ErrorCode.PROTOCOL_ERROR, "DATA padding too long")
                return
        stream = self._streams.get(stream_id)
        if stream is None or not stream.inbound:
            self._grant(None, flow)  # what the connection took, nobody will read
            self._closed_frame(stream_id, stream, "DATA")
            return
        if flow > stream.credit:  # §6.9.1
            self._grant(None, flow)
            self._stream_error(stream_id, ErrorCode.FLOW_CONTROL_ERROR, known=True)
            return
        stream.credit -= flow
        size = end - start
        end_stream = bool(flags & wire.END_STREAM)
        if stream.expected >= 0:  # §8.1.1: the body must be as long as declared
            stream.expected -= size
            if stream.expected < 0 or (end_stream and stream.expected):
                self._grant(None, flow)
                self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR, known=True)
                return
        if self._tunnels and stream_id in self._tunnels:
            if end_stream:
                self._tunnels.discard(stream_id)
                self._half_close(stream_id, stream)
            data = payload[start:end] if start or end < flow else payload
            self._events.append(TunnelData(stream_id, data, end_stream, flow))
            return
        self._grant(None if end_stream else stream, flow)
        if not self._incoming.body(stream_id, size, self._limits.max_body_bytes):
            # Answered now; what the client still sends on the stream is discarded.
            self._incoming.refuse(stream_id)
            error = ProtocolError(413, "request body too large")
            self._events.append(StreamFailed(stream_id, error))
        if end_stream:
            self._ended(stream_id, stream)

    def _grant(self, stream: _Stream | None, flow: int) -> None:
        """`flow` octets were taken in: the windows they used are granted again, in
        WINDOW_UPDATEs once half of a window is used (§6.9)."""
        unacked = self._unacked + flow
        if unacked >= _TOP_UP:
            self._out.append(wire.window_update(0, unacked))
            self._credit += unacked
            unacked = 0
        self._unacked = unacked
        if stream is not None and stream.inbound:
            stream.unacked += flow
            if stream.unacked >= _TOP_UP:
                self._out.append(wire.window_update(stream.id, stream.unacked))
                stream.credit += stream.unacked
                stream.unacked = 0

    def _closed_frame(self, stream_id: int, stream: _Stream | None, kind: str) -> None:
        """HEADERS or DATA on a stream that cannot take it (§5.1)."""
        if stream is not None:  # half-closed (remote): the client ended it already
            self._stream_error(stream_id, ErrorCode.STREAM_CLOSED, known=True)
        elif stream_id > self._highest:
            self._error(ErrorCode.PROTOCOL_ERROR, f"{kind} on idle stream {stream_id}")
        elif self._closed.get(stream_id):
            pass  # we reset it: frames already in flight are ignored
        elif stream_id in self._closed:
            self._error(ErrorCode.STREAM_CLOSED, f"{kind} on closed stream {stream_id}")
        else:  # never opened (a lower identifier than one opened, §5.1.1), or long gone
            self._error(ErrorCode.PROTOCOL_ERROR, f"{kind} on closed stream {stream_id}")

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            self._error(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 octets")  # §6.9
            return
        increment = wire.u32(payload)
        if not stream_id:
            self._window += increment
            if not increment:
                self._error(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            elif self._window > wire.MAX_WINDOW:  # §6.9.1
                self._error(ErrorCode.FLOW_CONTROL_ERROR, "connection window past 2^31-1")
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id > self._highest:  # §5.1: idle
                self._error(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            return  # closed: allowed for a while, and meaningless
        if not increment:
            self._stream_error(stream_id, ErrorCode.PROTOCOL_ERROR, known=True)
            return
        stream.window += increment
        if stream.window > wire.MAX_WINDOW:
            self._stream_error(stream_id, ErrorCode.FLOW_CONTROL_ERROR, known=True)

    def _rst_stream(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            self._error(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM not 4 octets")  # §6.4
        elif not stream_id or stream_id > self._highest:
            self._error(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0 or idle")
        elif stream_id in self._streams:
            # Reset by the client: a stream it made us give up, counted against it
            # with the ones it makes us reset ("MadeYouReset", CVE-2025-8671).
            self._close(stream_id, by_us=False)
            self._incoming.drop(stream_id)
            if self._tunnels:
                self._tunnels.discard(stream_id)
            self._events.append(StreamReset(stream_id))
            self._count_reset()

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            self._error(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream")  # §6.5
            return
        if flags & wire.ACK:
            if payload:
                self._error(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            self._error(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS not a multiple of 6 octets")
            return
        for key, value in wire.setting_pairs(payload):
            if key == wire.INITIAL_WINDOW_SIZE:
                if value > wire.MAX_WINDOW:
                    self._error(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too large")
                    return
                change = value - self._initial_window  # §6.9.2: applies to open streams
                self._initial_window = value
                for stream in self._streams.values():
                    stream.window += change
                    if stream.window > wire.MAX_WINDOW:
                        self._error(ErrorCode.FLOW_CONTROL_ERROR, "a stream window past 2^31-1")
                        return
            elif key == wire.MAX_FRAME_SIZE:
                if not wire.DEFAULT_FRAME_SIZE <= value <= wire.LARGEST_FRAME_SIZE:
                    self._error(ErrorCode.PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range")
                    return
                self._max_frame = value
            elif key in (wire.ENABLE_PUSH, wire.ENABLE_CONNECT_PROTOCOL) and value > 1:
                self._error(ErrorCode.PROTOCOL_ERROR, f"setting {key} is {value}, not 0 or 1")
                return
            # HEADER_TABLE_SIZE bounds a dynamic table our blocks never use
            # (fieldblocks); the others ask nothing of a server.
        self._out.append(wire.SETTINGS_ACK)

    def _goaway(self, stream_id: int, payload: bytes) -> None:
        if stream_id:
            self._error(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream")  # §6.8
            return
        if len(payload) < 8:
            self._error(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY shorter than 8 octets")
            return
        # The client opens no more streams, but those it opened are still answered
        # (§6.8) — unless it reports an error: then nothing more is sent.
        self.peer_done = True
        code = int.from_bytes(payload[4:8], "big")
        if code != ErrorCode.NO_ERROR:
            name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else code
            self._fail(ProtocolError(400, f"client GOAWAY {name}"))

    def _priority_update(self, stream_id: int, payload: bytes) -> None:
        """RFC 9218 §7.1: on stream 0, naming another stream (else a connection error)."""
        target = wire.u32(payload) if len(payload) >= 4 else 0
        if stream_id or not target:
            self._error(ErrorCode.PROTOCOL_ERROR, "PRIORITY_UPDATE not on stream 0 or for 0")
        elif target > self._highest or target in self._streams:
            # A closed stream's update is dropped (§7.1 lets the server ignore it), so
            # the driver keeps only those for streams that may still be answered.
            self._events.append(PriorityChanged(target, payload[4:]))

    # --- errors -----------------------------------------------------------------------

    def _error(self, code: ErrorCode, reason: str) -> None:
        """A connection error (§5.4.1): GOAWAY with the code, and nothing more."""
        self._out.append(wire.goaway(self._highest, code))
        self._fail(ProtocolError(400, reason))

    def _fail(self, error: ProtocolError) -> None:
        self._failed = True
        self._events.append(ProtocolFailed(error))

    def _stream_error(self, stream_id: int, code: ErrorCode, known: bool = False) -> None:
        """A stream error (§5.4.2) the client caused, counted against it; `known`: the
        driver may have heard of the stream, and is told it is gone."""
        self._incoming.drop(stream_id)
        if self._tunnels:
            self._tunnels.discard(stream_id)
        self._reset(stream_id, code)
        if known:
            self._events.append(StreamReset(stream_id))
        self._count_reset()

    def _reset(self, stream_id: int, code: ErrorCode) -> None:
        self._out.append(wire.rst_stream(stream_id, code))
        self._close(stream_id, by_us=True)

    def _close(self, stream_id: int, by_us: bool) -> None:
        self._streams.pop(stream_id, None)
        closed = self._closed
        closed[stream_id] = by_us
        if len(closed) > _CLOSED_KEPT:
            del closed[next(iter(closed))]

    def _count_reset(self) -> None:
        self.resets += 1
        if self.resets > self.answered + _RESET_ALLOWANCE and not self._failed:
            self._calm("too many stream resets")

    def _calm(self, abuse: str) -> None:
        """End the connection for abuse: GOAWAY(ENHANCE_YOUR_CALM)."""
        self.abuse = abuse
        self._error(ErrorCode.ENHANCE_YOUR_CALM, abuse)

    # --- plans out ------------------------------------------------------------------------

    def respond(self, stream_id: int, plan: ResponsePlan, end_stream: bool, date: bytes) -> bool:
        """HEADERS for `plan`; False if the stream can no longer take them. Hop-by-hop
        fields never appear in plans (RFC 9113 §8.2.2)."""
        block = plan.memo.get(Http2)
        if block is None:
            status = (b":status", b"%d" % plan.status)
            block = plan.memo[Http2] = fieldblocks.block([status, _SERVER, *plan.headers])
        return self._send_block(stream_id, block + _date_field(date), end_stream)

    def inform(self, stream_id: int, fields: tuple[tuple[bytes, bytes], ...]) -> bool:
        """HEADERS of a 103 Early Hints (RFC 8297) with `fields`, before the stream's
        final response: without END_STREAM (RFC 9113 §8.1: informational responses come
        first, each one field block); False if the stream can no longer take it."""
        return self._send_block(stream_id, fieldblocks.block([_EARLY_HINTS, *fields]), False)

    def accept(self, stream_id: int, fields: list[tuple[bytes, bytes]], date: bytes) -> bool:
        """A 2xx for an extended CONNECT: the tunnel is open (RFC 8441 §5); False if the
        stream is gone."""
        status = (b":status", b"200")
        block = fieldblocks.block([status, _SERVER, *fields]) + _date_field(date)
        return self._send_block(stream_id, block, False)

    def _send_block(self, stream_id: int, block: bytes, end_stream: bool) -> bool:
        """HEADERS (and CONTINUATIONs past the client's frame size, §6.10)."""
        stream = self._streams.get(stream_id)
        if stream is None or not stream.outbound or self._failed:
            return False
        if self._first_block:
            self._first_block = False
            block = fieldblocks.TABLE_SIZE_ZERO + block
        flags = wire.END_STREAM if end_stream else 0
        out = self._out
        size = self._max_frame
        if len(block) <= size:
            out.append(_head(len(block), wire.HEADERS, flags | wire.END_HEADERS, stream_id))
            out.append(block)
        else:
            out.append(_head(size, wire.HEADERS, flags, stream_id))
            out.append(block[:size])
            for at in range(size, len(block), size):
                part = block[at : at + size]
                last = wire.END_HEADERS if at + size >= len(block) else 0
                out.append(_head(len(part), wire.CONTINUATION, last, stream_id))
                out.append(part)
        if end_stream:
            self._finished(stream_id, stream)
        return True

    def _finished(self, stream_id: int, stream: _Stream) -> None:
        self.answered += 1
        stream.outbound = False
        if not stream.inbound:
            self._close(stream_id, by_us=False)

    def acknowledge(self, stream_id: int, flow: int) -> None:
        """A tunnel's input has been taken in: reopen the windows it closed."""
        if flow and not self._failed:
            self._grant(self._streams.get(stream_id), flow)

    def window(self, stream_id: int) -> int:
        """How many body bytes may go out on the stream now; -1 when the stream is
        closed. A window can be negative after the client lowers
        SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 §6.9.2): that is 0, wait for updates."""
        stream = self._streams.get(stream_id)
        if stream is None or not stream.outbound or self._failed:
            return -1
        window = stream.window
        return max(0, window if window < self._window else self._window)

    def connection_window(self) -> int:
        return self._window

    def send(self, stream_id: int, data: bytes, end_stream: bool) -> bool:
        """Body bytes that fit `window(stream_id)`, as DATA frames of the client's
        frame size (the last one ending the stream if `end_stream`); False if the
        stream is gone."""
        stream = self._streams.get(stream_id)
        size = len(data)
        if (
            stream is None
            or not stream.outbound
            or self._failed
            or size > stream.window
            or size > self._window
        ):
            return False
        stream.window -= size
        self._window -= size
        out = self._out
        frame = self._max_frame
        flags = wire.END_STREAM if end_stream else 0
        if size <= frame:
            out.append(_head(size, wire.DATA, flags, stream_id))
            if size:
                out.append(data)
            frames = 1
        else:
            view = memoryview(data)
            last = size - (size - 1) % frame - 1  # where the last frame starts
            for at in range(0, last, frame):
                out.append(_head(frame, wire.DATA, 0, stream_id))
                out.append(view[at : at + frame])  # type: ignore[arg-type]
            out.append(_head(size - last, wire.DATA, flags, stream_id))
            out.append(view[last:])  # type: ignore[arg-type]
            frames = last // frame + 1
        self._guard.credit(PER_DATA_FRAME * frames)
        if end_stream:
            self._finished(stream_id, stream)
        return True

    def reset(self, stream_id: int, answered: bool = False) -> None:
        """Abandon a stream we cannot finish (INTERNAL_ERROR) or, `answered`, one whose
        request we answered before it ended (NO_ERROR: RFC 9113 §8.1)."""
        self._incoming.drop(stream_id)
        # Unless the client got there first, or the connection is over:
        if stream_id in self._streams and not self._failed:
            self._reset(stream_id, ErrorCode.NO_ERROR if answered else ErrorCode.INTERNAL_ERROR)

    def goaway(self) -> bytes:
        """Graceful GOAWAY (RFC 9113 §6.8): no new streams; those begun are finished.
        Write it after `output()`."""
        self._last_stream = self._highest
        return wire.goaway(self._highest, ErrorCode.NO_ERROR)

    def output(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = b"".join(out)
        out.clear()
        return data
