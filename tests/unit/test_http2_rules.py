"""The HTTP/2 adapter against RFC 9113's rules, frame by frame, the way h2spec checks a
server: each hostile or malformed frame gets the connection error (GOAWAY with its code)
or the stream error (RST_STREAM on that stream, the connection going on) the RFC names,
or is ignored where the RFC says so."""

from __future__ import annotations

import hpack
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from lanthorn.config import Limits
from lanthorn.core.response import ResponsePlan
from lanthorn.protocol import h2wire
from lanthorn.protocol.events import Event, ProtocolFailed, RequestReceived, StreamReset
from lanthorn.protocol.h2wire import ErrorCode, frame
from lanthorn.protocol.http2 import PREFACE, Http2
from tests.h2client import frames

LIMITS = Limits(max_streams=4)
GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"t"), (b":path", b"/")]
# HPACK of GET without the dynamic table: static indexes and literals without indexing.
BLOCK = b"\x82\x86\x84\x01\x01t"
END_BOTH = h2wire.END_STREAM | h2wire.END_HEADERS


def headers(stream_id: int, flags: int = END_BOTH, block: bytes = BLOCK) -> bytes:
    return frame(h2wire.HEADERS, flags, stream_id, block)


class Peer:
    """The adapter after both prefaces."""

    def __init__(self, limits: Limits = LIMITS, tunnels: bool = False) -> None:
        self.adapter = Http2(limits, 0.0, tunnels)
        assert self.adapter.receive(PREFACE + frame(h2wire.SETTINGS, 0, 0, b""), 0.0) == []
        sent = frames(self.adapter.output())
        assert isinstance(sent[0], SettingsFrame) and "ACK" in sent[1].flags

    def send(self, data: bytes) -> tuple[list[Event], list[Frame]]:
        events = self.adapter.receive(data, 1.0)
        return events, frames(self.adapter.output())


def _goaway(data: bytes) -> int | None:
    """The connection error's code (and that it ended the connection), or None."""
    events, sent = Peer().send(data)
    goaways = [f for f in sent if isinstance(f, GoAwayFrame)]
    if not goaways:
        assert not any(isinstance(e, ProtocolFailed) for e in events)
        return None
    assert isinstance(events[-1], ProtocolFailed)
    return int(goaways[0].error_code)


SETTING = h2wire.SETTINGS


@pytest.mark.parametrize(
    ("data", "code"),
    [
        # §4.2: larger than SETTINGS_MAX_FRAME_SIZE
        (frame(h2wire.DATA, 0, 1, b"x" * 16385), ErrorCode.FRAME_SIZE_ERROR),
        # §6.1: DATA on stream 0, on an idle stream, with padding past its end
        (frame(h2wire.DATA, 0, 0, b"x"), ErrorCode.PROTOCOL_ERROR),
        (frame(h2wire.DATA, 0, 1, b"x"), ErrorCode.PROTOCOL_ERROR),
        (headers(1, h2wire.END_HEADERS) + frame(h2wire.DATA, h2wire.PADDED, 1, b"\x05ab"),
         ErrorCode.PROTOCOL_ERROR),
        # §6.2, §5.1.1: HEADERS on stream 0, on a server's (even) stream, padded too far
        (headers(0), ErrorCode.PROTOCOL_ERROR),
        (headers(2), ErrorCode.PROTOCOL_ERROR),
        (frame(h2wire.HEADERS, END_BOTH | h2wire.PADDED, 1, b"\x20" + BLOCK),
         ErrorCode.PROTOCOL_ERROR),
        # §5.1.1: a stream identifier lower than one already opened
        (headers(5) + headers(3), ErrorCode.PROTOCOL_ERROR),
        # §5.1: HEADERS on a stream both sides ended (closed, not by our RST_STREAM)
        (headers(1) + headers(1), None),  # half-closed: a stream error, below
        # §6.10: CONTINUATION out of place; anything but it inside a field block
        (frame(h2wire.CONTINUATION, h2wire.END_HEADERS, 1, BLOCK), ErrorCode.PROTOCOL_ERROR),
        (headers(1, h2wire.END_STREAM) + frame(h2wire.PRIORITY, 0, 3, b"\0\0\0\0\x10"),
         ErrorCode.PROTOCOL_ERROR),
        (headers(1, h2wire.END_STREAM) + frame(h2wire.CONTINUATION, 4, 3, b""),
         ErrorCode.PROTOCOL_ERROR),
        (headers(1, h2wire.END_STREAM) + frame(0x20, 0, 0, b"x"), ErrorCode.PROTOCOL_ERROR),
        # §4.3: a block HPACK cannot decode (index 100 is in neither table)
        (headers(1, block=b"\xe4"), ErrorCode.COMPRESSION_ERROR),
        # §6.5: SETTINGS ACK with a payload, on a stream, not 6n octets, bad values
        (frame(SETTING, h2wire.ACK, 0, b"\0" * 6), ErrorCode.FRAME_SIZE_ERROR),
        (frame(SETTING, 0, 1, b""), ErrorCode.PROTOCOL_ERROR),
        (frame(SETTING, 0, 0, b"\0\0\0"), ErrorCode.FRAME_SIZE_ERROR),
        (frame(SETTING, 0, 0, b"\0\x02\0\0\0\x02"), ErrorCode.PROTOCOL_ERROR),
        (frame(SETTING, 0, 0, b"\0\x04\x80\0\0\0"), ErrorCode.FLOW_CONTROL_ERROR),
        (frame(SETTING, 0, 0, b"\0\x05\0\0\x3f\xff"), ErrorCode.PROTOCOL_ERROR),
        (frame(SETTING, 0, 0, b"\0\x05\x01\0\0\0"), ErrorCode.PROTOCOL_ERROR),
        # §6.7: PING of 6 octets, on a stream
        (frame(h2wire.PING, 0, 0, b"\0" * 6), ErrorCode.FRAME_SIZE_ERROR),
        (frame(h2wire.PING, 0, 1, b"\0" * 8), ErrorCode.PROTOCOL_ERROR),
        # §6.8: GOAWAY on a stream
        (frame(h2wire.GOAWAY, 0, 1, b"\0" * 8), ErrorCode.PROTOCOL_ERROR),
        # §6.9: WINDOW_UPDATE of 3 octets, of 0 on the connection, past 2^31-1
        (frame(h2wire.WINDOW_UPDATE, 0, 0, b"\0\0\1"), ErrorCode.FRAME_SIZE_ERROR),
        (frame(h2wire.WINDOW_UPDATE, 0, 0, b"\0\0\0\0"), ErrorCode.PROTOCOL_ERROR),
        (frame(h2wire.WINDOW_UPDATE, 0, 0, b"\x7f\xff\xff\xff"), ErrorCode.FLOW_CONTROL_ERROR),
        (frame(h2wire.WINDOW_UPDATE, 0, 1, b"\0\0\0\1"), ErrorCode.PROTOCOL_ERROR),  # idle
        # §6.4: RST_STREAM on stream 0, on an idle stream, of 3 octets
        (frame(h2wire.RST_STREAM, 0, 0, b"\0\0\0\x08"), ErrorCode.PROTOCOL_ERROR),
        (frame(h2wire.RST_STREAM, 0, 1, b"\0\0\0\x08"), ErrorCode.PROTOCOL_ERROR),
        (headers(1) + frame(h2wire.RST_STREAM, 0, 1, b"\0\0\x08"), ErrorCode.FRAME_SIZE_ERROR),
        # §6.3: PRIORITY on stream 0, of 4 octets
        (frame(h2wire.PRIORITY, 0, 0, b"\0\0\0\1\x10"), ErrorCode.PROTOCOL_ERROR),
        (frame(h2wire.PRIORITY, 0, 1, b"\0\0\0\0"), ErrorCode.FRAME_SIZE_ERROR),
        # §8.4: a client cannot push
        (frame(h2wire.PUSH_PROMISE, 4, 1, b"\0\0\0\2" + BLOCK), ErrorCode.PROTOCOL_ERROR),
        # Ignored: an unknown frame type (§5.5), PRIORITY on an idle stream (which stays
        # idle: a lower stream may still open), a PING ACK, a SETTINGS ACK.
        (frame(0x20, 0xFF, 7, b"anything"), None),
        (frame(h2wire.PRIORITY, 0, 9, b"\0\0\0\0\x10") + headers(1), None),
        (frame(h2wire.PING, h2wire.ACK, 0, b"\0" * 8), None),
        (frame(SETTING, h2wire.ACK, 0, b""), None),
    ],
)  # fmt: skip
def test_connection_errors(data: bytes, code: ErrorCode | None) -> None:
    assert _goaway(data) == code


def test_frames_on_a_closed_stream_are_a_connection_error_unless_we_reset_it() -> None:
    peer = Peer()
    peer.send(headers(1))
    assert peer.adapter.respond(1, ResponsePlan(204, [], b""), True, b"d")
    events, sent = peer.send(headers(1))
    assert isinstance(events[-1], ProtocolFailed)
    assert [int(f.error_code) for f in sent if isinstance(f, GoAwayFrame)] == [
        ErrorCode.STREAM_CLOSED
    ]
    # Reset by us: what the client had in flight is ignored (§5.1).
    peer = Peer()
    peer.send(headers(3, h2wire.END_HEADERS))
    peer.adapter.reset(3)
    assert isinstance(frames(peer.adapter.output())[0], RstStreamFrame)
    events, sent = peer.send(frame(h2wire.DATA, h2wire.END_STREAM, 3, b"late"))
    assert events == [] and not any(isinstance(f, (GoAwayFrame, RstStreamFrame)) for f in sent)


def _stream_error(first: bytes, then: bytes) -> tuple[int, list[Event]]:
    """The RST_STREAM code for stream 1 after `first` + `then`, having checked that the
    connection still serves stream 3."""
    peer = Peer()
    peer.send(first)
    events, sent = peer.send(then)
    resets = [f for f in sent if isinstance(f, RstStreamFrame)]
    assert not any(isinstance(f, GoAwayFrame) for f in sent)
    assert [f.stream_id for f in resets] == [1]
    later, _ = peer.send(headers(3))
    assert [type(e) for e in later] == [RequestReceived]
    return int(resets[0].error_code), events


@pytest.mark.parametrize(
    ("first", "then", "code"),
    [
        # §5.3.1: a stream that depends on itself, by PRIORITY or in HEADERS
        (b"", frame(h2wire.PRIORITY, 0, 1, b"\0\0\0\1\x10"), ErrorCode.PROTOCOL_ERROR),
        (b"", frame(h2wire.HEADERS, END_BOTH | h2wire.PRIORITY_FLAG, 1,
                    b"\0\0\0\1\x10" + BLOCK), ErrorCode.PROTOCOL_ERROR),
        # §8.1: a second HEADERS that does not end the stream; trailers with a pseudo-field
        (headers(1, h2wire.END_HEADERS), headers(1, h2wire.END_HEADERS),
         ErrorCode.PROTOCOL_ERROR),
        (headers(1, h2wire.END_HEADERS), headers(1, block=b"\x84"), ErrorCode.PROTOCOL_ERROR),
        # §5.1: DATA or HEADERS on a stream the client ended (half-closed, remote)
        (headers(1), frame(h2wire.DATA, 0, 1, b"x"), ErrorCode.STREAM_CLOSED),
        (headers(1), headers(1), ErrorCode.STREAM_CLOSED),
        # §6.9: WINDOW_UPDATE of 0 on a stream; a stream window past 2^31-1
        (headers(1), frame(h2wire.WINDOW_UPDATE, 0, 1, b"\0\0\0\0"), ErrorCode.PROTOCOL_ERROR),
        (headers(1), frame(h2wire.WINDOW_UPDATE, 0, 1, b"\x7f\xff\xff\xff"),
         ErrorCode.FLOW_CONTROL_ERROR),
        # §8.1.1: a body longer or shorter than its content-length
        (frame(h2wire.HEADERS, h2wire.END_HEADERS, 1, BLOCK + b"\x5c\x01\x32"),
         frame(h2wire.DATA, h2wire.END_STREAM, 1, b"abc"), ErrorCode.PROTOCOL_ERROR),
        (frame(h2wire.HEADERS, h2wire.END_HEADERS, 1, BLOCK + b"\x5c\x01\x32"),
         frame(h2wire.DATA, h2wire.END_STREAM, 1, b"a"), ErrorCode.PROTOCOL_ERROR),
        (b"", frame(h2wire.HEADERS, END_BOTH, 1, BLOCK + b"\x5c\x01\x32"),
         ErrorCode.PROTOCOL_ERROR),
        # §8.2.1: an uppercase field name
        (b"", headers(1, block=BLOCK + b"\x00\x01X\x01v"), ErrorCode.PROTOCOL_ERROR),
    ],
)  # fmt: skip
def test_stream_errors(first: bytes, then: bytes, code: ErrorCode) -> None:
    assert _stream_error(first, then)[0] == code


def test_a_stream_past_the_concurrency_limit_is_refused() -> None:
    """§5.1.2: REFUSED_STREAM, so the client may retry it; the others go on."""
    peer = Peer()
    events, sent = peer.send(b"".join(headers(i, h2wire.END_HEADERS) for i in (1, 3, 5, 7, 9)))
    assert [(f.stream_id, int(f.error_code)) for f in sent if isinstance(f, RstStreamFrame)] == [
        (9, ErrorCode.REFUSED_STREAM)
    ]
    events, _ = peer.send(frame(h2wire.DATA, h2wire.END_STREAM, 7, b""))
    assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [7]


def test_pings_and_settings_are_acknowledged() -> None:
    _, sent = Peer().send(frame(h2wire.PING, 0, 0, b"12345678") + frame(SETTING, 0, 0, b""))
    assert isinstance(sent[0], PingFrame) and sent[0].opaque_data == b"12345678"
    assert "ACK" in sent[0].flags
    assert isinstance(sent[1], SettingsFrame) and "ACK" in sent[1].flags


def test_the_initial_window_applies_to_open_streams_and_the_frame_size_to_blocks() -> None:
    """§6.9.2: a new SETTINGS_INITIAL_WINDOW_SIZE moves open streams' windows (below
    zero too); §4.2, §6.10: a block larger than the client's frame size is cut into
    CONTINUATION frames."""
    peer = Peer()
    adapter = peer.adapter
    peer.send(headers(1))
    assert adapter.window(1) == 65535
    assert adapter.respond(1, ResponsePlan(200, [], b"x" * 100), False, b"d")
    assert adapter.send(1, b"x" * 100, False)
    peer.send(frame(SETTING, 0, 0, b"\0\x04\0\0\0\x10"))  # 16: the stream is at 16 - 100
    assert adapter.window(1) == 0
    assert not adapter.send(1, b"y", True)
    peer.send(frame(h2wire.WINDOW_UPDATE, 0, 1, b"\0\0\0\x55"))  # +85: 1 octet
    assert adapter.window(1) == 1
    assert adapter.send(1, b"y", True)
    peer.send(headers(3))
    long = ResponsePlan(200, [(b"x-long", b"v" * 40_000)], b"")
    assert adapter.respond(3, long, True, b"Wed, 02 Dec 2026 00:00:00 GMT")
    sent = frames(adapter.output())
    kinds = [type(f) for f in sent if f.stream_id == 3]
    assert kinds == [HeadersFrame, ContinuationFrame, ContinuationFrame]
    assert "END_HEADERS" in sent[-1].flags and "END_STREAM" in sent[-3].flags
    block = b"".join(f.data for f in sent[-3:] if isinstance(f, (HeadersFrame, ContinuationFrame)))
    decoded = hpack.Decoder(max_header_list_size=1 << 20).decode(block, raw=True)
    assert (b"x-long", b"v" * 40_000) in list(decoded)


def test_request_bodies_reopen_the_windows_in_batches() -> None:
    """§6.9: what the client sends is granted again once half a window is used."""
    peer = Peer(Limits(max_body_bytes=1 << 20))
    peer.send(frame(h2wire.HEADERS, h2wire.END_HEADERS, 1, BLOCK))
    _, sent = peer.send(frame(h2wire.DATA, 0, 1, b"x" * 16384))
    assert not any(isinstance(f, WindowUpdateFrame) for f in sent)
    _, sent = peer.send(frame(h2wire.DATA, 0, 1, b"x" * 16384))
    updates = sorted(
        (f.stream_id, f.window_increment) for f in sent if isinstance(f, WindowUpdateFrame)
    )
    assert updates == [(0, 32768), (1, 32768)]
    events, sent = peer.send(frame(h2wire.DATA, h2wire.END_STREAM, 1, b"x" * 16384))
    assert [type(e) for e in events] == [RequestReceived]


def test_a_client_reset_is_an_event_and_later_frames_on_it_are_errors() -> None:
    peer = Peer()
    peer.send(headers(1, h2wire.END_HEADERS))
    events, _ = peer.send(frame(h2wire.RST_STREAM, 0, 1, b"\0\0\0\x08"))
    assert [(e.stream_id) for e in events if isinstance(e, StreamReset)] == [1]
    assert len(events) == 1
    assert peer.adapter.window(1) == -1
    # WINDOW_UPDATE and PRIORITY may still come (§5.1, closed); DATA may not.
    events, sent = peer.send(
        frame(h2wire.WINDOW_UPDATE, 0, 1, b"\0\0\0\1") + frame(h2wire.PRIORITY, 0, 1, b"\0" * 5)
    )
    assert events == [] and sent == []
    events, sent = peer.send(frame(h2wire.DATA, 0, 1, b"x"))
    assert [int(f.error_code) for f in sent if isinstance(f, GoAwayFrame)] == [
        ErrorCode.STREAM_CLOSED
    ]


def test_repeated_blocks_decode_from_memory_and_the_table_is_honoured() -> None:
    """A block made of indexes only is decoded once while the dynamic table stands;
    a block that changes the table forgets what was remembered (fielddecoder)."""
    peer = Peer(Limits())
    first = BLOCK + b"\x40\x03x-a\x011"  # x-a: 1, entered in the table (62)
    again = BLOCK + b"\xbe"  # index 62
    events, _ = peer.send(headers(1, block=first) + headers(3, block=again))
    requests = [e.request for e in events if isinstance(e, RequestReceived)]
    events, _ = peer.send(headers(5, block=again))
    requests += [e.request for e in events if isinstance(e, RequestReceived)]
    assert [r.headers[b"x-a"] for r in requests] == [b"1", b"1", b"1"]
    assert requests[1] is not requests[2] and requests[1].headers is requests[2].headers
    changed = BLOCK + b"\x40\x03x-a\x012"  # x-a: 2 becomes 62, x-a: 1 moves to 63
    events, _ = peer.send(headers(7, block=changed) + headers(9, block=again))
    got = [e.request.headers for e in events if isinstance(e, RequestReceived)]
    # `again` now names the entry at its index, which is x-a: 2.
    assert [h[b"x-a"] for h in got] == [b"2", b"2"]


def test_data_frames_carry_end_stream_and_respect_the_connection_window() -> None:
    peer = Peer()
    adapter = peer.adapter
    peer.send(headers(1))
    assert adapter.respond(1, ResponsePlan(200, [], b""), False, b"d")
    sent = 0
    while adapter.connection_window():
        sent += adapter.window(1)
        assert adapter.send(1, b"z" * adapter.window(1), False)
    data = [f for f in frames(adapter.output()) if isinstance(f, DataFrame)]
    assert sent == 65535 and [len(f.data) for f in data] == [16384] * 3 + [16383]
    assert adapter.window(1) == 0 and not adapter.send(1, b"z", True)
    peer.send(frame(h2wire.WINDOW_UPDATE, 0, 0, b"\0\0\0\1"))
    assert adapter.window(1) == 0  # the stream's window is spent too
    peer.send(frame(h2wire.WINDOW_UPDATE, 0, 1, b"\0\0\0\1"))
    assert adapter.window(1) == 1
    assert adapter.send(1, b"z", True)
    last = frames(adapter.output())[-1]
    assert isinstance(last, DataFrame) and "END_STREAM" in last.flags and last.data == b"z"


@pytest.mark.parametrize(
    ("frame_size", "sizes"), [(None, [16384, 16384, 7232]), (32768, [32768, 7232])]
)
def test_a_body_is_cut_into_frames_of_the_clients_size(
    frame_size: int | None, sizes: list[int]
) -> None:
    """§4.2: DATA frames no larger than SETTINGS_MAX_FRAME_SIZE; END_STREAM on the last."""
    peer = Peer()
    if frame_size:
        peer.send(frame(SETTING, 0, 0, b"\0\x05" + frame_size.to_bytes(4, "big")))
    peer.send(headers(1))
    adapter = peer.adapter
    assert adapter.respond(1, ResponsePlan(200, [], b""), False, b"d")
    body = bytes(range(256)) * 160  # 40960 octets
    assert adapter.window(1) == 65535 and adapter.send(1, body[:40000], True)
    data = [f for f in frames(adapter.output()) if isinstance(f, DataFrame)]
    assert [len(f.data) for f in data] == sizes
    assert [("END_STREAM" in f.flags) for f in data] == [False] * (len(sizes) - 1) + [True]
    assert b"".join(f.data for f in data) == body[:40000]
    assert adapter.window(1) == -1  # ended
