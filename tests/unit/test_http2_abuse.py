"""HTTP/2 abuse in memory (issue 9, defects 1-4): control-frame floods, streams the server
is made to reset, header blocks hoarded in CONTINUATION frames, and PINGs that used to
keep an idle connection alive. Frames are built by hand where h2's client would refuse
to send them."""

from __future__ import annotations

from pathlib import Path

import h2.errors
import h2.events
import h2.settings
import hpack
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from lanthorn.driver import CLOSE, Service
from lanthorn.protocol import frameguard
from lanthorn.protocol.events import Event, ProtocolFailed, RequestReceived
from lanthorn.protocol.frameguard import FrameGuard
from lanthorn.protocol.http2 import PREFACE, Http2
from tests.h2client import frames as parsed
from tests.unit.test_http2 import LIMITS, Client, _connect, _open, _responses, service, wire

__all__ = ["service"]  # the stream-driver fixture, shared


def frames(*items: Frame) -> bytes:
    return b"".join(bytes(item.serialize()) for item in items)


def _goaway_code(adapter: Http2, client: Client) -> int | None:
    """The error code of the GOAWAY the adapter has queued, read frame by frame (h2's
    client would refuse frames for streams it never opened)."""
    goaways = [f for f in parsed(adapter.output()) if isinstance(f, GoAwayFrame)]
    return int(goaways[0].error_code) if goaways else None


def _failed(events: list[Event]) -> bool:
    return any(isinstance(e, ProtocolFailed) for e in events)


CALM = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


# --- control-frame floods (defect 1) --------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        PingFrame(0, b"12345678"),
        SettingsFrame(0),
        WindowUpdateFrame(0, 1),
        DataFrame(1),  # empty DATA, no END_STREAM
    ],
    ids=["ping", "settings", "window-update", "empty-data"],
)
def test_a_control_frame_flood_ends_the_connection_with_enhance_your_calm(frame: Frame) -> None:
    adapter, client = _open()
    if isinstance(frame, DataFrame):
        client.request(end=False)
        adapter.receive(client.send(), 0.0)
    flood = frames(frame) * (frameguard.BURST + 10)
    events = adapter.receive(flood, 0.1)
    assert _failed(events)
    assert _goaway_code(adapter, client) == CALM
    assert adapter.receive(frames(PingFrame(0, b"again...")), 0.2) == []  # nothing more read


def test_pings_at_a_modest_rate_are_fine_for_ever() -> None:
    adapter, client = _open()
    now = 0.0
    for _ in range(200):  # 200 s of 50 PINGs a second: half the refill rate
        now += 1.0
        assert not _failed(adapter.receive(frames(PingFrame(0, b"12345678")) * 50, now))
    acks = [e for e in client.receive(adapter.output()) if isinstance(e, h2.events.PingAckReceived)]
    assert len(acks) == 200 * 50


def test_the_budget_refills_with_time_and_what_the_server_sent_is_free() -> None:
    guard = FrameGuard(block_limit=1000, now=0.0, preface_bytes=0)
    ping = frames(PingFrame(0, b"12345678"))
    assert guard.scan(ping * frameguard.BURST, 0.0) is None
    assert guard.scan(ping, 0.0) == "control frame flood"
    guard = FrameGuard(block_limit=1000, now=0.0, preface_bytes=0)
    assert guard.scan(ping * frameguard.BURST, 0.0) is None
    refill = int(min(frameguard.BURST, frameguard.RATE_PER_S))  # a second's worth
    assert guard.scan(ping * refill, 1.0) is None
    guard.credit(10)  # DATA frames sent: the answers they call for are free
    assert guard.scan(ping * 10, 1.0) is None
    headers = frames(HeadersFrame(1, b"\x82", flags=["END_HEADERS"]))
    assert guard.scan(headers + ping * frameguard.PER_STREAM, 1.0) is None  # a stream's worth
    assert guard.scan(ping, 1.0) == "control frame flood"
    guard = FrameGuard(block_limit=1000, now=0.0, preface_bytes=0)
    guard.credit(10**9)  # what is owed is capped
    assert guard.scan(ping * (frameguard.MAX_OWED + frameguard.BURST), 0.0) is None
    assert guard.scan(ping, 0.0) == "control frame flood"


def test_a_cancelled_download_answered_frame_by_frame_is_not_a_flood(service: Service) -> None:
    """h2's client answers each DATA frame that arrives on a stream it reset with a
    RST_STREAM: hundreds of them after a cancel, all called for by the server."""
    client = Client({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    client.conn.increment_flow_control_window(2**31 - 1 - 65535)
    conn = _connect(service, client)
    (Path(service.config.site.root) / "8m.bin").write_bytes(b"\0" * (8 << 20))
    stream_id = client.request(b"/8m.bin")  # 512 DATA frames
    out = conn.feed(client.send(), now=1.0)
    in_flight = b""
    while out:  # the whole file is "in flight": sent, not yet read by the client
        in_flight += wire(out)
        out = conn.drained(1.0)
    client.conn.reset_stream(stream_id)
    client.send()
    events = client.receive(in_flight)  # each DATA frame on the reset stream → RST_STREAM
    assert not any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    answers = client.send()
    assert answers.count(b"\x00\x00\x04\x03\x00") > frameguard.BURST  # RST_STREAM frames
    assert CLOSE not in conn.feed(answers, now=1.0)
    conn.abort()


def test_frame_headers_are_followed_across_any_split() -> None:
    """The guard reads frame headers wherever reads split them; payloads that look like
    frame headers are skipped, not counted."""
    pings = frames(PingFrame(0, b"\x00\x00\x00\x04\x00\x00\x00\x00")) * (frameguard.BURST + 1)
    for size in (1, 5, 9, 17, 4096):
        guard = FrameGuard(block_limit=1000, now=0.0, preface_bytes=len(PREFACE))
        data = PREFACE + pings
        verdicts = [guard.scan(data[i : i + size], 0.0) for i in range(0, len(data), size)]
        last_header_end = len(PREFACE) + frameguard.BURST * 17 + 9  # the first PING too many
        first = verdicts.index("control frame flood")
        assert first == (last_header_end - 1) // size
        assert verdicts[:first] == [None] * first


def test_a_long_download_earns_its_window_updates(service: Service) -> None:
    """A client that acknowledges every DATA frame of a large download (stream and
    connection WINDOW_UPDATE each) is never taken for a flood."""
    client = Client()
    conn = _connect(service, client)
    client.request(b"/huge.bin")  # 2 MiB: 128 DATA frames, 256 WINDOW_UPDATEs
    received = 0
    out = conn.feed(client.send(), now=1.0)
    for _ in range(20):  # 20 downloads on one connection: 5,000+ control frames
        while out:
            events = client.receive(wire(out))
            assert not any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
            for event in events:
                if isinstance(event, h2.events.DataReceived):
                    received += len(event.data)
                    client.conn.acknowledge_received_data(len(event.data), event.stream_id)
                    client.conn.increment_flow_control_window(1, None)  # a chattier client
            out = conn.drained(1.0, client.send())
        client.request(b"/huge.bin")
        out = conn.feed(client.send(), now=1.0)
    conn.abort()
    assert received >= 20 * 2 * 1024 * 1024


# --- streams the server is made to reset (defect 2, "MadeYouReset") --------------------------


def test_made_you_reset_counts_against_the_client() -> None:
    """HEADERS with END_STREAM, then DATA on the half-closed stream: h2 resets each
    stream itself (STREAM_CLOSED). Those resets count like the client's own."""
    adapter, client = _open()
    encoder = hpack.Encoder()
    block = encoder.encode(
        [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"h"), (b":path", b"/")]
    )
    data = b""
    for stream_id in range(1, 2 * 300, 2):
        data += frames(
            HeadersFrame(stream_id, block, flags=["END_STREAM", "END_HEADERS"]),
            DataFrame(stream_id, b"x"),
        )
    events = adapter.receive(data, 0.0)
    assert _failed(events)
    assert sum(isinstance(e, RequestReceived) for e in events) <= 110
    assert _goaway_code(adapter, client) == CALM


# --- CONTINUATION hoarding (defect 3) --------------------------------------------------------


def _header_list_size() -> int:
    return LIMITS.max_head_bytes + LIMITS.max_url_bytes


def test_a_header_block_past_the_advertised_size_is_refused_as_it_arrives() -> None:
    adapter, client = _open()
    chunk = b"\x00" * 16384  # not even valid HPACK: refused before anything decodes it
    events = adapter.receive(frames(HeadersFrame(1, chunk)), 0.0)
    assert events == []
    events = adapter.receive(frames(ContinuationFrame(1, chunk)), 0.0)
    assert _failed(events)  # 32 KiB > SETTINGS_MAX_HEADER_LIST_SIZE
    assert _goaway_code(adapter, client) == CALM


def test_a_large_header_block_in_continuations_under_the_limit_is_served() -> None:
    adapter, client = _open()
    encoder = hpack.Encoder()
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"h"),
              (b":path", b"/"), (b"x-big", b"v" * 6000)]  # fmt: skip
    block = encoder.encode(fields, huffman=False)
    assert 6000 < len(block) < _header_list_size()
    parts = [block[i : i + 1000] for i in range(0, len(block), 1000)]
    data = frames(HeadersFrame(1, parts[0], flags=["END_STREAM"]))
    for index, part in enumerate(parts[1:], 1):
        last = index == len(parts) - 1
        data += frames(ContinuationFrame(1, part, flags=["END_HEADERS"] if last else []))
    events = adapter.receive(data, 0.0)
    assert [type(e) for e in events] == [RequestReceived]
    assert _goaway_code(adapter, client) is None


def test_empty_continuations_are_control_frames() -> None:
    adapter, client = _open()
    empty = frames(ContinuationFrame(1, b""))
    data = frames(HeadersFrame(1, b"\x82")) + empty * (frameguard.BURST + frameguard.PER_STREAM + 1)
    assert _failed(adapter.receive(data, 0.0))
    assert _goaway_code(adapter, client) == CALM


# --- PINGs do not keep an idle connection (defect 4) -----------------------------------------


def test_pings_do_not_extend_the_first_request_clock(service: Service) -> None:
    client = Client()
    conn = _connect(service, client)
    for now in (2.0, 4.0, 6.0, 8.0):
        client.conn.ping(b"12345678")
        assert CLOSE not in conn.feed(client.send(), now=now)
        conn.drained(now)
        assert conn.deadline == 10.0  # the header timeout from accept, untouched
    out = conn.expired(10.0)
    assert out[-1] is CLOSE
    terminated = [
        e for e in client.receive(wire(out)) if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert terminated[0].error_code == h2.errors.ErrorCodes.NO_ERROR


def test_pings_do_not_extend_keep_alive(service: Service) -> None:
    client = Client()
    conn = _connect(service, client)
    stream_id = client.request()
    replies = _responses(client.receive(wire(conn.feed(client.send(), now=1.0))))
    assert replies[stream_id][1] == b"hello"
    conn.drained(2.0)
    assert conn.deadline == 22.0  # keep-alive from when the answer was written
    for now in (5.0, 10.0, 15.0, 20.0):
        client.conn.ping(b"12345678")
        conn.feed(client.send(), now=now)
        conn.drained(now)
        assert conn.deadline == 22.0
    assert conn.expired(22.0)[-1] is CLOSE
