"""HTTP/3 adapter (RFC 9114) over qh3: datagrams → per-stream events, plans → frames on
QUIC streams. The same shape as the HTTP/2 adapter (`multiplexed.StreamAdapter`), so the
stream driver, its pump, timers and limits serve both.

qh3 (aioquic's fork with a compiled QUIC core) does QUIC (RFC 9000/9001/9002) and QPACK
(RFC 9204); it was chosen over aioquic by `python -m lanthorn.bench.quiclib`: the same
server code costs about a third of the CPU per request. Request field sections are
checked by `requestfields` as HTTP/2's are (a malformed one resets its stream with
H3_MESSAGE_ERROR, RFC 9114 §4.1.2), and the limits are the same (414, 431, 413, 408).
At most `h3_max_streams` requests are in progress at once: QUIC's stream credit (MAX_STREAMS,
RFC 9000 §4.6) is raised only as requests finish (`StreamCredit`; qh3 would double it
whenever half of it had been opened, finished or not, and a client could keep thousands
in flight), and qh3 closes the connection of a client that opens more
(STREAM_LIMIT_ERROR).

A request that arrives before the handshake is confirmed came in 0-RTT early data,
which an attacker can replay (RFC 9114 §10.9, RFC 9001 §9.2): only safe methods are
served from it; any other gets 425 Too Early (RFC 8470 §5.2), and the client sends it
again once the handshake is done.

Tunnels (RFC 9220): when built with `tunnels`, the adapter offers
SETTINGS_ENABLE_CONNECT_PROTOCOL, reports an extended CONNECT as `TunnelRequested` and
what the client sends on its stream as `TunnelData`, as HTTP/2's does. QUIC's stream
credit is qh3's and grows as data arrives, so a tunnel cannot hold its client back by
flow control: a client more than TUNNEL_AHEAD bytes ahead of what the driver has
acknowledged (its echoes unread, say) loses the connection with H3_EXCESSIVE_LOAD
(RFC 9114 §8.1) instead of being buffered for. (Not the stream alone: after a
RESET_STREAM, qh3 1.9.4 may still send the stream's unsent bytes when a packet is lost,
past the final size it announced, and the client closes the connection anyway.)

Datagrams do not go out through `output()` (always empty): the QUIC driver takes them
from the connection after each call (`datagrams`). A body is queued onto a QUIC stream
only while little of that stream is still waiting for its first transmission
(`window`): QUIC's flow control and congestion control decide when it leaves, and the
pump comes back when the client's ACKs arrive.
"""

from __future__ import annotations

from qh3._hazmat import Buffer, BufferReadError, DecoderStreamError, EncoderStreamError
from qh3.h3.connection import (
    ErrorCode,
    FrameType,
    FrameUnexpected,
    H3Connection,
    Setting,
    encode_frame,
    encode_settings,
    parse_settings,
)
from qh3.h3.connection import ProtocolError as H3ProtocolError
from qh3.h3.events import DataReceived, H3Event, HeadersReceived
from qh3.h3.events import StreamReset as H3StreamReset
from qh3.quic import events as quic_events
from qh3.quic.connection import Limit, NetworkAddress, QuicConnection, QuicConnectionError
from qh3.quic.packet import QuicFrameType

from lanthorn.config import Limits
from lanthorn.core.request import Request
from lanthorn.core.response import Fields, ResponsePlan
from lanthorn.errors import ProtocolError
from lanthorn.protocol import requestfields
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
from lanthorn.protocol.incoming import Incoming

ALPN = ["h3"]
# What qh3 raises when a stream can no longer take HEADERS or DATA (reset, stopped, ended,
# or the connection closing): the stream is gone for the driver.
_GONE = (QuicConnectionError, FrameUnexpected, ValueError, AssertionError)
# Methods served from 0-RTT early data: safe ones (RFC 9110 §9.2.1), which a replay
# cannot make do anything twice.
EARLY_METHODS = frozenset((b"GET", b"HEAD", b"OPTIONS"))
# How much of one stream's body may wait in QUIC's send buffer, and of all streams'.
STREAM_BUFFER = 64 * 1024
CONNECTION_BUFFER = 256 * 1024
_SERVER = (b"server", b"lanthorn")
TUNNEL_AHEAD = 1024 * 1024  # a tunnel's unacknowledged input past which the client is cut


def _varint(value: int) -> bytes:
    """A QUIC variable-length integer (RFC 9000 §16)."""
    if value < 0x40:
        return bytes((value,))
    if value < 0x4000:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 0x40000000:
        return (value | 0x80000000).to_bytes(4, "big")
    return (value | 0xC000000000000000).to_bytes(8, "big")


class StreamCredit(Limit):
    """The client's request-stream credit: the stream count it may reach. qh3 raises
    its limits by doubling whenever more than half is used; those writes to `value` are
    ignored, and `allow` is the only way up."""

    def __init__(self, concurrent: int) -> None:
        self._value = concurrent
        super().__init__(QuicFrameType.MAX_STREAMS_BIDI, "max_streams_bidi", concurrent)

    @property
    def value(self) -> int:
        return self._value

    @value.setter
    def value(self, value: int) -> None:
        """qh3's doubling: ignored."""

    def allow(self, count: int) -> None:
        """Let the client open streams up to `count` in all (a MAX_STREAMS frame goes
        out when that is more than it had)."""
        self._value = max(self._value, count)


# What qh3's QPACK encoder can be told of the client's decoder (a 32-bit integer). The
# client may announce more (RFC 9204 §5: any varint); it only bounds what our encoder
# may use, so larger values are lowered to this.
_QPACK_SETTINGS = (Setting.QPACK_MAX_TABLE_CAPACITY, Setting.QPACK_BLOCKED_STREAMS)
_QPACK_LARGEST = 2**32 - 1
# RFC 9218 §7.2: PRIORITY_UPDATE for a request stream, on the control stream.
PRIORITY_UPDATE = 0xF0700


class _IdError(H3ProtocolError):
    error_code = ErrorCode.H3_ID_ERROR


class _PriorityUpdate(H3Event):
    """A PRIORITY_UPDATE frame read from the client's control stream."""

    def __init__(self, stream_id: int, value: bytes) -> None:
        self.stream_id = stream_id
        self.value = value


class _H3(H3Connection):
    """qh3's HTTP/3, offering extended CONNECT when `connect` (it has no setting for it),
    and reading PRIORITY_UPDATE frames (it ignores them as unknown types)."""

    def __init__(self, quic: QuicConnection, connect: bool) -> None:
        self._connect = connect  # (read by __init__, which sends the SETTINGS)
        super().__init__(quic)

    def _get_local_settings(self) -> dict[int, int]:
        settings = super()._get_local_settings()
        if self._connect:
            settings[Setting.ENABLE_CONNECT_PROTOCOL] = 1  # RFC 9220 §3
        return settings

    def _handle_control_frame(self, frame_type: int, frame_data: bytes) -> list[H3Event]:
        if frame_type == FrameType.SETTINGS and not self._settings_received:
            settings = parse_settings(frame_data)  # (qh3 reports what is wrong with it)
            if any(settings.get(key, 0) > _QPACK_LARGEST for key in _QPACK_SETTINGS):
                for key in _QPACK_SETTINGS:
                    if key in settings:
                        settings[key] = min(settings[key], _QPACK_LARGEST)
                frame_data = encode_settings(settings)
        if frame_type != PRIORITY_UPDATE or not self._settings_received:
            return super()._handle_control_frame(frame_type, frame_data)
        buf = Buffer(data=frame_data)
        stream_id = buf.pull_uint_var()  # cut short: BufferReadError, H3_FRAME_ERROR
        if stream_id % 4:  # §7.2: not a client-initiated bidirectional stream
            raise _IdError("PRIORITY_UPDATE for a stream that is not a request stream")
        return [_PriorityUpdate(stream_id, frame_data[buf.tell() :])]


class Http3:
    """One QUIC connection's HTTP/3 (server side)."""

    __slots__ = (
        "_active",
        "_credit",
        "_events",
        "_h3",
        "_highest",
        "_incoming",
        "_limits",
        "_now",
        "_pending",
        "_quic",
        "_resetting",
        "_sending",
        "_tunnels",
        "_unsent_total",
        "address",
        "confirmed",
        "issued",
        "peer_done",
        "retired",
        "terminated",
    )

    protocol = "HTTP/3"
    version = "3.0"  # as a request states it (the access log's protocol)
    batched = (
        False  # datagrams leave in the engine turn that made them; no batch is reported written
    )
    abuse = ""  # QUIC's own limits end abusive connections (qh3 closes them itself)
    buffered = 0  # qh3 holds partial frames and field sections, within its bounds

    def __init__(
        self, limits: Limits, quic: QuicConnection, address: NetworkAddress, tunnels: bool = False
    ) -> None:
        self._limits = limits
        self._quic = quic
        # (Installed before the first datagram: the transport parameters carry it.)
        self._credit = quic._local_max_streams_bidi = StreamCredit(limits.h3_max_streams)
        self._h3 = _H3(quic, tunnels)
        # Open tunnels' streams → input not yet acknowledged; None: not offered.
        self._tunnels: dict[int, int] | None = {} if tunnels else None
        self._incoming = Incoming()
        self._events: list[Event] = []
        self._pending: list[Event] = []  # from timers, for the next `receive`
        self._now = 0.0
        self._sending: set[int] = set()  # streams whose bodies may wait in QUIC's buffers
        self._unsent_total = 0  # their bytes not yet sent, as of the last `datagrams`
        self._active: set[int] = set()  # requests begun and not yet answered in full
        self._resetting: set[int] = set()  # streams reset or stopped, until that is sent
        self.confirmed = False  # the handshake is complete: no more early data
        # Connection IDs the connection issued and retired since last asked: the QUIC
        # driver routes datagrams by them.
        self.issued: list[bytes] = []
        self.retired: list[bytes] = []
        self._highest = -4  # the highest request stream taken (for GOAWAY)
        self.address = address  # where the latest datagram came from (paths may change)
        self.peer_done = False  # the client sent GOAWAY or closed: no new streams
        self.terminated = False  # the QUIC connection is over

    @property
    def in_message(self) -> bool:
        return self._incoming.in_message

    def flushed(self, now: float) -> bool:
        """Nothing waits to be sent, and nothing sent waits for the client's ACK."""
        if self.terminated:
            return True
        quic = self._quic
        return quic._loss.bytes_in_flight == 0 and not any(map(self._unsent, quic._streams))

    def stalled(self, before: float) -> list[int]:
        return self._incoming.stalled(before)

    def oldest(self) -> float | None:
        return self._incoming.oldest()

    # --- datagrams in ---------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[Event]:
        """One datagram from `address` → events (with any that QUIC's timers caused)."""
        events, self._pending = self._pending, []
        try:
            self._quic.receive_datagram(data, self.address, now)
        except QuicConnectionError:
            self.terminated = self.peer_done = True
            return events
        self._drain(events, now)
        return events

    def tick(self, now: float) -> None:
        """QUIC's timers are due (`timer`): loss detection, ACK delay, the idle timeout."""
        try:
            self._quic.handle_timer(now)
        except QuicConnectionError:
            self.terminated = self.peer_done = True
            return
        self._drain(self._pending, now)

    def _drain(self, events: list[Event], now: float) -> None:
        self._events = events
        self._now = now
        quic = self._quic
        while (event := quic.next_event()) is not None:
            if isinstance(event, quic_events.ConnectionIdIssued):
                self.issued.append(event.connection_id)
            elif isinstance(event, quic_events.ConnectionIdRetired):
                self.retired.append(event.connection_id)
            elif isinstance(event, quic_events.HandshakeCompleted):
                self.confirmed = True
            elif isinstance(event, quic_events.ConnectionTerminated):
                self.terminated = self.peer_done = True
                if event.error_code:
                    events.append(ProtocolFailed(ProtocolError(400, event.reason_phrase)))
                continue
            try:
                h3_events = self._h3.handle_event(event)
            except (DecoderStreamError, EncoderStreamError):  # errors qh3 lets through
                self._close_with(ErrorCode.QPACK_DECOMPRESSION_FAILED, "QPACK decoding failed")
                return
            except BufferReadError:
                self._close_with(ErrorCode.H3_FRAME_ERROR, "a frame cut short")
                return
            for h3_event in h3_events:
                self._translate(h3_event)

    def _close_with(self, code: int, why: str) -> None:
        """What qh3 could not parse and did not report as an HTTP/3 error (a QPACK field
        section it cannot decode, a frame cut short): the connection is closed with the
        error RFC 9114 §8.1 / RFC 9204 §6 name, as qh3 does for the errors it catches."""
        self.peer_done = True
        self._events.append(ProtocolFailed(ProtocolError(400, why)))
        try:
            self._quic.close(error_code=code, reason_phrase=why)
        except QuicConnectionError:
            self.terminated = True

    def _translate(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            self._begin(event.stream_id, event.headers)
            if event.stream_ended:
                self._end(event.stream_id)
        elif isinstance(event, DataReceived):
            if self._tunnels is not None and event.stream_id in self._tunnels:
                self._tunnel_data(event.stream_id, event.data, event.stream_ended)
                return
            limit = self._limits.max_body_bytes
            if not self._incoming.body(event.stream_id, len(event.data), limit):
                self._incoming.refuse(event.stream_id)
                self._events.append(
                    StreamFailed(event.stream_id, ProtocolError(413, "request body too large"))
                )
            if event.stream_ended:
                self._end(event.stream_id)
        elif isinstance(event, _PriorityUpdate):
            # RFC 9218 §7.2; one for a stream already done is dropped (§7 lets it be).
            stream_id = event.stream_id
            if stream_id > self._highest or stream_id in self._active:
                self._events.append(PriorityChanged(stream_id, event.value))
        elif isinstance(event, H3StreamReset):
            self._incoming.drop(event.stream_id)
            self._active.discard(event.stream_id)
            if self._tunnels is not None:
                self._tunnels.pop(event.stream_id, None)
            self._events.append(StreamReset(event.stream_id))

    def _begin(self, stream_id: int, fields: list[tuple[bytes, bytes]]) -> None:
        if stream_id <= self._highest:
            return  # trailers of a request already begun (RFC 9114 §4.1)
        self._highest = stream_id
        try:
            request = requestfields.request(fields, self._limits, self.version)
        except requestfields.Malformed:
            self._refuse(stream_id, ErrorCode.H3_MESSAGE_ERROR)
            return
        except ProtocolError as error:
            self._fail(stream_id, error)
            return
        if not self.confirmed and request.method not in EARLY_METHODS:
            self._fail(stream_id, ProtocolError(425, "not in early data"), request)
            return
        tunnels = self._tunnels
        if request.method == b"CONNECT":  # extended: requestfields refused plain CONNECT
            if tunnels is None:  # RFC 9220 §3: not offered, so malformed
                self._refuse(stream_id, ErrorCode.H3_MESSAGE_ERROR)
                return
            self._active.add(stream_id)
            tunnels[stream_id] = 0
            self._events.append(TunnelRequested(request, stream_id))
            return
        self._active.add(stream_id)
        self._incoming.begin(stream_id, request, self._now)

    def _tunnel_data(self, stream_id: int, data: bytes, ended: bool) -> None:
        assert self._tunnels is not None
        owed = self._tunnels[stream_id] + len(data)
        if owed > TUNNEL_AHEAD:
            self._close_with(ErrorCode.H3_EXCESSIVE_LOAD, "a tunnel's client is too far ahead")
            return
        if ended:
            del self._tunnels[stream_id]
        else:
            self._tunnels[stream_id] = owed
        self._events.append(TunnelData(stream_id, data, ended, len(data)))

    def _fail(self, stream_id: int, error: ProtocolError, request: Request | None = None) -> None:
        """Answer `error.status` on the stream (`request`, if whole, is not served)."""
        self._active.add(stream_id)
        self._incoming.begin(stream_id, None, self._now)
        self._events.append(StreamFailed(stream_id, error, request))

    def _refuse(self, stream_id: int, code: int) -> None:
        """Reset the stream both ways: no answer, and nothing more read."""
        self._resetting.add(stream_id)
        try:
            self._quic.reset_stream(stream_id, code)
            self._quic.stop_stream(stream_id, code)
        except (QuicConnectionError, ValueError):  # already gone
            return

    def _end(self, stream_id: int) -> None:
        if self._tunnels is not None and stream_id in self._tunnels:  # FIN on its HEADERS
            del self._tunnels[stream_id]
            self._events.append(TunnelData(stream_id, b"", True, 0))
            return
        request = self._incoming.end(stream_id)
        if request is not None:
            self._events.append(RequestReceived(request, True, stream_id))

    # --- plans out ------------------------------------------------------------------------

    def respond(self, stream_id: int, plan: ResponsePlan, end_stream: bool, date: bytes) -> bool:
        """HEADERS for `plan`; False if the stream can no longer take them."""
        if end_stream:
            self._active.discard(stream_id)
        status = (b":status", b"%d" % plan.status)
        return self._head(stream_id, [status, _SERVER, *plan.headers, (b"date", date)], end_stream)

    def inform(self, stream_id: int, fields: Fields) -> bool:
        """A HEADERS frame of a 103 Early Hints (RFC 8297) with `fields`, before the
        stream's final response (RFC 9114 §4.1: informational responses come first);
        False if the stream is gone. qh3 lets a server send it: a 1xx :status without
        the end of the stream leaves it waiting for the final HEADERS."""
        return self._head(stream_id, [(b":status", b"103"), *fields])

    def accept(self, stream_id: int, fields: list[tuple[bytes, bytes]], date: bytes) -> bool:
        """A 2xx for an extended CONNECT: the tunnel is open (RFC 9220 §3); False if the
        stream is gone."""
        return self._head(stream_id, [(b":status", b"200"), _SERVER, *fields, (b"date", date)])

    def _head(self, stream_id: int, fields: list[tuple[bytes, bytes]], end: bool = False) -> bool:
        try:
            self._h3.send_headers(stream_id, fields, end_stream=end)
        except _GONE:  # stream or connection gone
            return False
        return True

    def acknowledge(self, stream_id: int, flow: int) -> None:
        """A tunnel's input has been taken in (QUIC's credit is qh3's: only counted)."""
        if self._tunnels is not None and stream_id in self._tunnels:
            self._tunnels[stream_id] -= flow

    def window(self, stream_id: int) -> int:
        """How much more of the stream's body may be queued now."""
        return max(0, STREAM_BUFFER - self._unsent(stream_id))

    def connection_window(self) -> int:
        return max(0, CONNECTION_BUFFER - self._unsent_total)

    def _unsent(self, stream_id: int) -> int:
        """Bytes of the stream waiting to be sent (first sends and retransmissions).
        qh3 1.9 has no call for it: its stream's send ranges are read directly."""
        stream = self._quic._streams.get(stream_id)
        if stream is None:
            return 0
        return sum(stop - start for start, stop in stream.sender._pending)

    def send(self, stream_id: int, data: bytes, end_stream: bool) -> bool:
        self._sending.add(stream_id)
        self._unsent_total += len(data)
        if end_stream:
            self._active.discard(stream_id)
        try:
            self._h3.send_data(stream_id, data, end_stream=end_stream)
        except _GONE:  # stream or connection gone
            return False
        return True

    def reset(self, stream_id: int, answered: bool = False) -> None:
        """Abandon a stream we cannot finish (H3_INTERNAL_ERROR) or, `answered`, stop
        reading one whose request we answered before it ended (H3_NO_ERROR, §4.1)."""
        self._incoming.drop(stream_id)
        self._active.discard(stream_id)
        self._resetting.add(stream_id)
        try:
            if answered:
                self._quic.stop_stream(stream_id, ErrorCode.H3_NO_ERROR)
            else:
                self._quic.reset_stream(stream_id, ErrorCode.H3_INTERNAL_ERROR)
        except (QuicConnectionError, ValueError):  # already gone
            return

    def goaway(self) -> bytes:
        """GOAWAY on the control stream (RFC 9114 §5.2): requests above the last one
        taken are not processed. It leaves with the connection's datagrams."""
        control = self._h3._local_control_stream_id  # qh3 opens it; it has no GOAWAY call
        if control is not None and not self.terminated:
            frame = encode_frame(FrameType.GOAWAY, _varint(self._highest + 4))
            try:
                self._quic.send_stream_data(control, frame)
            except QuicConnectionError:  # closed meanwhile: nothing to say
                self.terminated = self.peer_done = True
        return b""

    def output(self) -> bytes:
        return b""  # datagrams leave through the QUIC driver

    def datagrams(self, now: float) -> list[tuple[bytes, NetworkAddress]]:
        # Requests that finished make room for as many new ones (MAX_STREAMS).
        opened = (self._highest >> 2) + 1
        self._credit.allow(opened - len(self._active) + self._limits.h3_max_streams)
        try:
            out = self._quic.datagrams_to_send(now)
            if self._resetting and self._requeue():
                out += self._quic.datagrams_to_send(now)
        except QuicConnectionError:  # closed (by the peer, or a qh3 limit): it is over
            self.terminated = self.peer_done = True
            return []
        self._count_unsent()
        return out

    def _count_unsent(self) -> None:
        """What the bodies queued still have to send, once per round of datagrams (the
        pump asks `connection_window` far more often)."""
        unsent = 0
        for stream_id in list(self._sending):
            if waiting := self._unsent(stream_id):
                unsent += waiting
            else:
                self._sending.discard(stream_id)
        self._unsent_total = unsent

    def _requeue(self) -> bool:
        """qh3 1.9.4 drops a stream from its send queue, for good, when a packet fills
        up as that stream's RESET_STREAM or STOP_SENDING is written: the frame would
        never leave and the client would wait on the stream. Such streams are put back
        (True if any was)."""
        quic = self._quic
        queue = quic._streams_queue
        again = False
        for stream_id in list(self._resetting):
            stream = quic._streams.get(stream_id)
            if stream is None or not (stream.sender.reset_pending or stream.receiver.stop_pending):
                self._resetting.discard(stream_id)
            elif stream not in queue:
                queue.append(stream)
                again = True
        return again

    def timer(self) -> float | None:
        """When QUIC's own timers (loss detection, idle, ACK delay) are due."""
        return self._quic.get_timer()

    def close(self) -> None:
        """End the connection (CONNECTION_CLOSE, H3_NO_ERROR)."""
        try:
            self._quic.close(error_code=ErrorCode.H3_NO_ERROR)
        except QuicConnectionError:
            self.terminated = True
