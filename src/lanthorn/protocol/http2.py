"""HTTP/2 adapter (RFC 9113) over h2: bytes → per-stream events, plans → frames.

h2 does the framing, flow-control accounting, stream states and HPACK decoding. The
adapter checks request field sections itself (requestfields: a malformed one resets
only its stream, RFC 9113 §8.1.1, where h2's own validation would end the connection)
and enforces the limits: field count and size (431), target length (414), body size
(413), concurrent streams (h2 refuses streams beyond SETTINGS_MAX_CONCURRENT_STREAMS
with a connection error), a hard cap on decoded header lists, and clients that reset
streams — or make the server reset them, "MadeYouReset" — faster than they let them
finish (the "rapid reset" attack, CVE-2023-44487: GOAWAY with ENHANCE_YOUR_CALM). Before
h2 sees a byte, frameguard bounds control-frame floods and header blocks that grow past
the advertised SETTINGS_MAX_HEADER_LIST_SIZE (GOAWAY ENHANCE_YOUR_CALM as well). It
never decides a response and never touches a file: the driver hands it bytes that fit
`window(stream_id)`. `now` comes with the bytes, so a
request that takes too long to arrive can be found per stream (`stalled`).

Tunnels (RFC 8441): when built with `tunnels`, the adapter advertises
SETTINGS_ENABLE_CONNECT_PROTOCOL; an extended CONNECT is reported with its head
(`TunnelRequested`) and what the client sends on its stream as `TunnelData`, whose
receive window reopens only when the driver `acknowledge`s it.
"""

from __future__ import annotations

import contextlib

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from lanthorn.config import Limits
from lanthorn.core.response import ResponsePlan
from lanthorn.errors import ProtocolError
from lanthorn.protocol import fieldblocks, requestfields
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
from lanthorn.protocol.frameguard import PER_DATA_FRAME, FrameGuard
from lanthorn.protocol.incoming import Incoming

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 §3.4
PRIORITY_UPDATE = 0x10  # RFC 9218 §7.1
_SERVER_OPEN = h2.connection.ConnectionState.SERVER_OPEN
_CLOSED = h2.connection.ConnectionState.CLOSED
_SERVER = (b"server", b"lanthorn")
# What h2 is shown of a response head: it only looks for 1xx (informational) statuses.
_STATUS_ONLY = {status: [(b":status", b"%d" % status)] for status in range(200, 600)}


class _Encoded:
    """Stands in for h2's HPACK encoder (`H2Connection.encoder`): `respond` has encoded
    the block already (see fieldblocks); h2 frames what this returns. h2 sets
    `header_table_size` when the client's SETTINGS change it; our blocks never use the
    dynamic table, so the value needs no action."""

    __slots__ = ("_first", "block", "header_table_size")

    def __init__(self) -> None:
        self.block = b""
        self.header_table_size = 4096
        self._first = True

    def encode(self, headers: object, huffman: bool = True) -> bytes:
        if self._first:  # the connection's first block empties the dynamic table
            self._first = False
            return fieldblocks.TABLE_SIZE_ZERO + self.block
        return self.block


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


class Http2:
    """One HTTP/2 connection's frame parser and serialiser (server side)."""

    protocol = "HTTP/2"
    version = "2.0"  # as a request states it (the access log's protocol)
    batched = True  # the engine reports each batch written (`drained`)
    __slots__ = (
        "_conn",
        "_encoded",
        "_events",
        "_failed",
        "_guard",
        "_incoming",
        "_last_stream",
        "_limits",
        "_now",
        "_preface",
        "_tunnels",
        "abuse",
        "answered",
        "peer_done",
        "resets",
    )

    def __init__(self, limits: Limits, now: float, tunnels: bool = False) -> None:
        self._limits = limits
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            # Our fields come from the core: lowercase names, checked values. Request
            # fields are checked by requestfields, per stream.
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
        )
        conn = self._conn = h2.connection.H2Connection(config)
        header_list = limits.max_head_bytes + limits.max_url_bytes
        codes = h2.settings.SettingCodes
        settings = {
            codes.MAX_CONCURRENT_STREAMS: limits.max_streams,
            codes.MAX_HEADER_LIST_SIZE: header_list,
        }
        if tunnels:
            settings[codes.ENABLE_CONNECT_PROTOCOL] = 1  # RFC 8441 §3
        conn.local_settings = h2.settings.Settings(client=False, initial_values=settings)
        conn.initiate_connection()
        # Set directly: h2 only applies local settings to its decoder when changed later.
        # Lists over the advertised size but under twice it get 431 (requestfields).
        conn.decoder.max_header_list_size = 2 * header_list
        # Field blocks are refused past the advertised size as their octets arrive.
        self._guard = FrameGuard(header_list, now, len(PREFACE))
        self._encoded = conn.encoder = _Encoded()  # type: ignore[assignment]
        self._incoming = Incoming()
        # Open tunnels' streams; None when extended CONNECT is not offered.
        self._tunnels: set[int] | None = set() if tunnels else None
        self._events: list[Event] = []
        self.answered = 0  # streams the client let us finish
        self.resets = 0  # streams the client reset, or made us reset
        self.peer_done = False  # the client sent GOAWAY: no new streams will come
        self.abuse = ""  # why the client was cut off for abuse (ENHANCE_YOUR_CALM)
        self._last_stream = 2**31  # after our GOAWAY: streams above it are refused
        self._failed = False  # a connection error was reported: nothing more is read
        self._preface = b""  # the client's connection preface so far, until it is whole
        self._now = 0.0

    @property
    def in_message(self) -> bool:
        """Some request has begun (its head arrived) and has not ended."""
        return self._incoming.in_message

    @property
    def buffered(self) -> int:
        """Input bytes held until a frame or header block is whole."""
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
        conn = self._conn
        if len(self._preface) < len(PREFACE) and not self._preface_so_far(data):
            # RFC 9113 §3.4: anything but the preface is a connection error.
            conn.close_connection(ErrorCodes.PROTOCOL_ERROR)
            self._fail(ProtocolError(400, "no HTTP/2 connection preface"))
            return events
        abuse = self._guard.scan(data, now)
        if abuse is not None:  # h2 never sees these bytes
            self._calm(abuse)
            return events
        state = conn.state_machine.state
        try:
            received = conn.receive_data(data)
            if any(_graceful_goaway(event) for event in received):
                # The client opens no more streams, but those it opened are still
                # answered (RFC 9113 §6.8), and malformed ones among them reset; h2
                # would refuse to send anything after a GOAWAY. (A server that has
                # received a request is SERVER_OPEN; one that has not, as it was.)
                opened = conn.highest_inbound_stream_id
                conn.state_machine.state = _SERVER_OPEN if opened else state
            for event in received:
                if self._failed:
                    break
                self._translate(event)
        except h2.exceptions.ProtocolError as exc:
            # h2 has queued GOAWAY with the error's code (RFC 9113 §5.4.1).
            self._fail(ProtocolError(400, str(exc) or type(exc).__name__))
        return events

    def _preface_so_far(self, data: bytes) -> bool:
        """Whether what came so far can still be the client's connection preface (which
        h2 checks too, but without sending the GOAWAY RFC 9113 §5.4.1 asks for)."""
        self._preface += data[: len(PREFACE) - len(self._preface)]
        return PREFACE.startswith(self._preface)

    def _fail(self, error: ProtocolError) -> None:
        self._failed = True
        self._events.append(ProtocolFailed(error))

    def _translate(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._begin(event.stream_id, event.headers)
            if event.stream_ended is not None:
                self._end(event.stream_id)
        elif isinstance(event, h2.events.DataReceived):
            if self._tunnels and event.stream_id in self._tunnels:
                ended = event.stream_ended is not None
                if ended:
                    self._tunnels.discard(event.stream_id)
                self._events.append(
                    TunnelData(event.stream_id, event.data, ended, event.flow_controlled_length)
                )
                return
            self._conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if not self._incoming.body(
                event.stream_id, len(event.data), self._limits.max_body_bytes
            ):
                self._refuse(event.stream_id, ProtocolError(413, "request body too large"))
            if event.stream_ended is not None:
                self._end(event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self._end(event.stream_id)  # trailers are not part of the head (RFC 9110 §6.5)
        elif isinstance(event, h2.events.StreamReset):
            # Reset by the client, or by h2 for a frame the stream could not take (DATA
            # on a half-closed stream, say): both are streams the client made us give
            # up, and both count against it ("MadeYouReset", CVE-2025-8671).
            self._incoming.drop(event.stream_id)
            if self._tunnels:
                self._tunnels.discard(event.stream_id)
            self._events.append(StreamReset(event.stream_id))
            self._count_reset()
        elif isinstance(event, h2.events.UnknownFrameReceived):
            if isinstance(event.frame, hyperframe.frame.ExtensionFrame):
                self._extension(event.frame)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.peer_done = True
            if event.error_code != ErrorCodes.NO_ERROR:
                self._fail(ProtocolError(400, f"client GOAWAY {event.error_code!r}"))

    def _extension(self, frame: hyperframe.frame.ExtensionFrame) -> None:
        """A frame type h2 does not know: PRIORITY_UPDATE (RFC 9218 §7.1) is read, on
        stream 0 naming another stream (else a connection error); others are ignored
        (RFC 9113 §5.5)."""
        if frame.type != PRIORITY_UPDATE:
            return
        body = frame.body
        target = int.from_bytes(body[:4], "big") & 0x7FFF_FFFF if len(body) >= 4 else 0
        if frame.stream_id != 0 or target == 0:
            self._conn.close_connection(ErrorCodes.PROTOCOL_ERROR)
            self._fail(ProtocolError(400, "PRIORITY_UPDATE not on stream 0 or for stream 0"))
            return
        conn = self._conn
        stream = conn.streams.get(target)
        if target > conn.highest_inbound_stream_id or (stream is not None and not stream.closed):
            # A closed stream's update is dropped (§7.1 lets the server ignore it), so
            # the driver keeps only those for streams that may still be answered.
            self._events.append(PriorityChanged(target, bytes(body[4:])))

    def _begin(self, stream_id: int, fields: list[tuple[bytes, bytes]]) -> None:
        if stream_id > self._last_stream:
            # Opened after our GOAWAY: refused, so the client may retry it elsewhere.
            self._reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        try:
            request = requestfields.request(fields, self._limits, self.version)
        except requestfields.Malformed:
            self._reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
            self._count_reset()
            return
        except ProtocolError as error:
            self._incoming.begin(stream_id, None, self._now)
            self._events.append(StreamFailed(stream_id, error))
            return
        if request.method == b"CONNECT":  # extended: requestfields refused plain CONNECT
            if self._tunnels is None:  # RFC 8441 §4: not offered, so malformed
                self._reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
                self._count_reset()
                return
            self._tunnels.add(stream_id)
            self._events.append(TunnelRequested(request, stream_id))
            return
        self._incoming.begin(stream_id, request, self._now)

    def _reset_stream(self, stream_id: int, code: ErrorCodes) -> None:
        """RST_STREAM for a stream whose request h2 has already taken — unless a later
        frame of the same read closed it (a second HEADERS on it, say) or the connection
        (the client's GOAWAY with an error: nothing more is sent)."""
        if self._conn.state_machine.state is _CLOSED:
            return
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self._conn.reset_stream(stream_id, code)

    def _end(self, stream_id: int) -> None:
        if self._tunnels and stream_id in self._tunnels:  # END_STREAM on its HEADERS
            self._tunnels.discard(stream_id)
            self._events.append(TunnelData(stream_id, b"", True, 0))
            return
        request = self._incoming.end(stream_id)
        if request is not None:
            self._events.append(RequestReceived(request, True, stream_id))

    def _refuse(self, stream_id: int, error: ProtocolError) -> None:
        """Answer `error` now; what the client still sends on the stream is discarded."""
        self._incoming.refuse(stream_id)
        self._events.append(StreamFailed(stream_id, error))

    def _count_reset(self) -> None:
        self.resets += 1
        if self.resets > self.answered + _RESET_ALLOWANCE and not self._failed:
            self._calm("too many stream resets")

    def _calm(self, abuse: str) -> None:
        """End the connection for abuse: GOAWAY(ENHANCE_YOUR_CALM)."""
        self.abuse = abuse
        self._conn.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
        self._fail(ProtocolError(400, abuse))

    # --- plans out ------------------------------------------------------------------------

    def respond(self, stream_id: int, plan: ResponsePlan, end_stream: bool, date: bytes) -> bool:
        """HEADERS for `plan`; False if the stream can no longer take them. Hop-by-hop
        fields never appear in plans (RFC 9113 §8.2.2)."""
        block = plan.memo.get(Http2)
        if block is None:
            status = (b":status", b"%d" % plan.status)
            block = plan.memo[Http2] = fieldblocks.block([status, _SERVER, *plan.headers])
        self._encoded.block = block + _date_field(date)
        try:
            self._conn.send_headers(stream_id, _STATUS_ONLY[plan.status], end_stream=end_stream)
        except h2.exceptions.ProtocolError:  # StreamClosedError among them
            return False
        if end_stream:
            self.answered += 1
        return True

    def inform(self, stream_id: int, fields: tuple[tuple[bytes, bytes], ...]) -> bool:
        """HEADERS of a 103 Early Hints (RFC 8297) with `fields`, before the stream's
        final response: without END_STREAM (RFC 9113 §8.1: informational responses come
        first, each one field block); False if the stream can no longer take it. h2 is
        shown the 1xx status so that it keeps the stream waiting for the final one."""
        self._encoded.block = fieldblocks.block([(b":status", b"103"), *fields])
        try:
            self._conn.send_headers(stream_id, [(b":status", b"103")])
        except h2.exceptions.ProtocolError:
            return False
        return True

    def accept(self, stream_id: int, fields: list[tuple[bytes, bytes]], date: bytes) -> bool:
        """A 2xx for an extended CONNECT: the tunnel is open (RFC 8441 §5); False if the
        stream is gone."""
        status = (b":status", b"200")
        self._encoded.block = fieldblocks.block([status, _SERVER, *fields]) + _date_field(date)
        try:
            self._conn.send_headers(stream_id, _STATUS_ONLY[200])
        except h2.exceptions.ProtocolError:
            return False
        return True

    def acknowledge(self, stream_id: int, flow: int) -> None:
        """A tunnel's input has been taken in: reopen the windows it closed."""
        if flow and self._conn.state_machine.state is not _CLOSED:
            self._conn.acknowledge_received_data(flow, stream_id)

    def window(self, stream_id: int) -> int:
        """How many body bytes may go out on the stream now, in one DATA frame; -1 when
        the stream is closed. A window can be negative after the client lowers
        SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 §6.9.2): that is 0, wait for updates."""
        conn = self._conn
        stream = conn.streams.get(stream_id)
        if stream is None or stream.closed:
            return -1
        window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
        return max(0, window)

    def connection_window(self) -> int:
        return self._conn.outbound_flow_control_window

    def send(self, stream_id: int, data: bytes, end_stream: bool) -> bool:
        """A DATA frame that fits `window(stream_id)`; False if the stream is gone."""
        try:
            self._conn.send_data(stream_id, data, end_stream=end_stream)
        except h2.exceptions.ProtocolError:
            return False
        self._guard.credit(PER_DATA_FRAME)
        if end_stream:
            self.answered += 1
        return True

    def reset(self, stream_id: int, answered: bool = False) -> None:
        """Abandon a stream we cannot finish (INTERNAL_ERROR) or, `answered`, one whose
        request we answered before it ended (NO_ERROR: RFC 9113 §8.1)."""
        self._incoming.drop(stream_id)
        # Unless the client got there first:
        self._reset_stream(
            stream_id, ErrorCodes.NO_ERROR if answered else ErrorCodes.INTERNAL_ERROR
        )

    def goaway(self) -> bytes:
        """Graceful GOAWAY (RFC 9113 §6.8): no new streams; those begun are finished.
        Write it after `output()`.

        h2 would refuse to send on open streams after its own GOAWAY, so the frame is
        built here and the connection's state machine never learns of it."""
        frame = GoAwayFrame(0)
        frame.last_stream_id = self._last_stream = self._conn.highest_inbound_stream_id
        frame.error_code = ErrorCodes.NO_ERROR
        return bytes(frame.serialize())

    def output(self) -> bytes:
        return self._conn.data_to_send()


def _graceful_goaway(event: h2.events.Event) -> bool:
    return (
        isinstance(event, h2.events.ConnectionTerminated)
        and event.error_code == ErrorCodes.NO_ERROR
    )
