"""The HTTP/2 adapter and stream driver in memory, against h2's client side (DESIGN §5.3):
frames in, events out; plans in, frames out; windows, resets and GOAWAY exactly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import hpack
import pytest
from hyperframe.frame import GoAwayFrame

from lanthorn.config import Config, Limits, ServerConfig, SiteConfig
from lanthorn.core.response import ResponsePlan
from lanthorn.driver import BATCH_BYTES, CLOSE, Action, Connection, Service, connect
from lanthorn.protocol import fieldblocks, priority
from lanthorn.protocol.events import (
    ProtocolFailed,
    RequestReceived,
    StreamFailed,
    StreamReset,
    TunnelData,
    TunnelRequested,
)
from lanthorn.protocol.http2 import _RESET_ALLOWANCE, PREFACE, Http2

LIMITS = Limits(max_body_bytes=1000, max_headers=10, max_url_bytes=100, max_streams=8)


class Client:
    """h2's client side, wired to a byte sink of our choosing."""

    def __init__(
        self, settings: dict[h2.settings.SettingCodes, int] | None = None, raw: bool = False
    ) -> None:
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=not raw,  # raw: send fields exactly as given
            normalize_outbound_headers=not raw,
        )
        self.conn = h2.connection.H2Connection(config)
        if settings:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.conn.initiate_connection()

    def request(
        self, path: bytes = b"/a.txt", method: bytes = b"GET", end: bool = True, extra: int = 0,
        priority: bytes = b"",
    ) -> int:  # fmt: skip
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(b":method", method), (b":scheme", b"http"), (b":authority", b"example"),
                  (b":path", path)]  # fmt: skip
        fields += [(b"x-extra-%d" % i, b"v") for i in range(extra)]
        fields += [(b"priority", priority)] if priority else []
        self.conn.send_headers(stream_id, fields, end_stream=end)
        return stream_id

    def send(self) -> bytes:
        return self.conn.data_to_send()

    def receive(self, data: bytes) -> list[h2.events.Event]:
        return self.conn.receive_data(data)


def _responses(events: list[h2.events.Event]) -> dict[int, tuple[dict[bytes, bytes], bytes]]:
    out: dict[int, tuple[dict[bytes, bytes], bytes]] = {}
    for event in events:
        if isinstance(event, h2.events.ResponseReceived):
            out[event.stream_id] = (dict(event.headers), b"")
        elif isinstance(event, h2.events.DataReceived):
            headers, body = out[event.stream_id]
            out[event.stream_id] = (headers, body + event.data)
    return out


# --- field blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        [(b":status", b"200")],  # whole static entry
        [(b":status", b"206"), (b"content-length", b"5")],  # static name
        [(b"x-content-type-options", b"nosniff")],  # new name
        [(b"etag", b'"' + b"e" * 126 + b'"'), (b"x-long", b"v" * 5000)],  # multi-byte lengths
        [(b"x-" + b"n" * 200, b"")],
    ],
)
def test_field_blocks_decode_with_hpack(fields: list[tuple[bytes, bytes]]) -> None:
    encoded = fieldblocks.TABLE_SIZE_ZERO + fieldblocks.block(fields)
    decoder = hpack.Decoder()
    assert decoder.decode(encoded, raw=True) == fields
    assert len(decoder.header_table.dynamic_entries) == 0  # nothing was indexed


# --- adapter ---------------------------------------------------------------------------------


def _open() -> tuple[Http2, Client]:
    adapter = Http2(LIMITS, 0.0)
    client = Client()
    assert adapter.receive(client.send(), 0.0) == []  # the preface and SETTINGS
    client.receive(adapter.output())
    return adapter, client


def test_request_fields_and_response_frames() -> None:
    adapter, client = _open()
    stream_id = client.request()
    events = adapter.receive(client.send(), 0.0)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    request = events[0].request
    assert (request.method, request.target, request.version) == (b"GET", b"/a.txt", "2.0")
    assert request.headers[b"host"] == b"example"  # from :authority (RFC 9113 §8.3.1)
    plan = ResponsePlan(200, [(b"content-type", b"text/plain"), (b"content-length", b"2")], b"hi")
    adapter.respond(stream_id, plan, False, b"Tue, 24 Nov 2026 00:00:00 GMT")
    assert adapter.window(stream_id) == 65535  # the stream's window (send cuts frames)
    adapter.send(stream_id, b"hi", True)
    headers, body = _responses(client.receive(adapter.output()))[stream_id]
    assert headers == {
        b":status": b"200",
        b"server": b"lanthorn",
        b"content-type": b"text/plain",
        b"content-length": b"2",
        b"date": b"Tue, 24 Nov 2026 00:00:00 GMT",
    }
    assert body == b"hi"


HINTS = (
    (b"link", b"</a.css>; rel=preload; as=style"),
    (b"link", b"</b.js>; rel=preload; as=script"),
)


def test_early_hints_go_before_the_final_response() -> None:
    """A 103 (RFC 8297) is a HEADERS frame without END_STREAM before the final one, in
    the connection's first field block here (which empties the dynamic table); h2's
    client decodes both."""
    adapter, client = _open()
    stream_id = client.request()
    adapter.receive(client.send(), 0.0)
    assert adapter.inform(stream_id, HINTS)
    plan = ResponsePlan(200, [(b"content-length", b"0")], b"")
    assert adapter.respond(stream_id, plan, True, b"Tue, 24 Nov 2026 00:00:00 GMT")
    events = client.receive(adapter.output())
    informed, answered, ended = events
    assert isinstance(informed, h2.events.InformationalResponseReceived)
    assert informed.headers == [(b":status", b"103"), *HINTS]
    assert isinstance(answered, h2.events.ResponseReceived)
    assert dict(answered.headers)[b":status"] == b"200"
    assert isinstance(ended, h2.events.StreamEnded)
    assert adapter.answered == 1  # the 103 did not finish anything


def test_early_hints_on_a_stream_gone_are_refused() -> None:
    adapter, client = _open()
    stream_id = client.request()
    adapter.receive(client.send(), 0.0)
    client.conn.reset_stream(stream_id)
    assert isinstance(adapter.receive(client.send(), 0.0)[0], StreamReset)
    assert not adapter.inform(stream_id, HINTS)
    assert not adapter.inform(99, HINTS)


def test_repeated_fields_are_joined_cookies_with_semicolons() -> None:
    adapter, client = _open()
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        stream_id,
        [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"h"), (b":path", b"/"),
         (b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"accept", b"x"), (b"accept", b"y")],
        end_stream=True,
    )  # fmt: skip
    (event,) = adapter.receive(client.send(), 0.0)
    assert isinstance(event, RequestReceived)
    assert event.request.headers[b"cookie"] == b"a=1; b=2"  # RFC 9113 §8.2.3
    assert event.request.headers[b"accept"] == b"x, y"


def test_request_ends_with_its_stream() -> None:
    """A request with a body is answered when its stream ends, not at its head."""
    adapter, client = _open()
    stream_id = client.request(method=b"POST", end=False)
    assert adapter.receive(client.send(), 0.0) == []
    assert adapter.in_message
    client.conn.send_data(stream_id, b"x" * 10, end_stream=True)
    (event,) = adapter.receive(client.send(), 0.0)
    assert isinstance(event, RequestReceived) and event.stream_id == stream_id
    assert not adapter.in_message


@pytest.mark.parametrize(("kind", "status"), [("body", 413), ("fields", 431), ("path", 414)])
def test_limits_fail_the_stream_not_the_connection(kind: str, status: int) -> None:
    adapter, client = _open()
    if kind == "body":
        stream_id = client.request(method=b"POST", end=False)
        client.conn.send_data(stream_id, b"x" * 1001)
    elif kind == "fields":
        stream_id = client.request(extra=11)
    else:
        stream_id = client.request(path=b"/" + b"a" * 100)
    events = adapter.receive(client.send(), 0.0)
    assert [(type(e), e.stream_id) for e in events] == [(StreamFailed, stream_id)]  # type: ignore[union-attr]
    assert isinstance(events[0], StreamFailed) and events[0].error.status == status
    if kind == "body":  # what follows on the failed stream is discarded, not an event
        client.conn.send_data(stream_id, b"x" * 10, end_stream=True)
        assert adapter.receive(client.send(), 0.0) == []
    next_id = client.request()
    assert [type(e) for e in adapter.receive(client.send(), 0.0)] == [RequestReceived]
    assert next_id > stream_id


def test_client_reset_is_an_event_and_closes_the_window() -> None:
    adapter, client = _open()
    stream_id = client.request()
    adapter.receive(client.send(), 0.0)
    client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    events = adapter.receive(client.send(), 0.0)
    assert [type(e) for e in events] == [StreamReset]
    assert adapter.window(stream_id) == -1


def test_rapid_reset_ends_the_connection() -> None:
    """CVE-2023-44487: more resets than finished streams, beyond the allowance."""
    adapter, client = _open()
    events = []
    for _ in range(102):
        stream_id = client.request(end=False)
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        events += adapter.receive(client.send(), 0.0)
    assert isinstance(events[-1], ProtocolFailed)
    goaway = [
        e for e in client.receive(adapter.output()) if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert goaway[0].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


@pytest.mark.parametrize("finish", ["headers", "data"])
def test_finished_streams_earn_resets(finish: str) -> None:
    """The rapid-reset cap counts resets against the streams the client let finish: after
    50 answered streams, 50 + _RESET_ALLOWANCE resets are tolerated, one more is not.
    A stream counts as finished whether its last frame is HEADERS or DATA."""
    adapter, client = _open()
    date = b"Tue, 24 Nov 2026 00:00:00 GMT"
    for _ in range(50):
        stream_id = client.request()
        assert [type(e) for e in adapter.receive(client.send(), 0.0)] == [RequestReceived]
        if finish == "headers":
            assert adapter.respond(stream_id, ResponsePlan(204, [], b""), True, date)
        else:
            assert adapter.respond(stream_id, ResponsePlan(200, [], b"ok"), False, date)
            assert adapter.send(stream_id, b"ok", True)
        client.receive(adapter.output())

    def reset_one() -> list[object]:
        stream_id = client.request(end=False)
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        return list(adapter.receive(client.send(), 0.0))

    for _ in range(50 + _RESET_ALLOWANCE):
        assert [type(e) for e in reset_one()] == [StreamReset]
    assert [type(e) for e in reset_one()] == [StreamReset, ProtocolFailed]
    goaway = [
        e for e in client.receive(adapter.output()) if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert goaway[0].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


def test_garbage_is_a_connection_error_with_goaway() -> None:
    adapter, client = _open()
    events = adapter.receive(b"\x00\x00\x04\x00\x00\x00\x00\x00\x00junk", 0.0)  # DATA on stream 0
    assert [type(e) for e in events] == [ProtocolFailed]
    terminated = [
        e for e in client.receive(adapter.output()) if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert terminated[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR


def test_streams_after_goaway_are_refused() -> None:
    adapter, client = _open()
    first = client.request()
    adapter.receive(client.send(), 0.0)
    goaway = adapter.goaway()
    client.receive(adapter.output() + goaway)
    # A client that sends a new stream anyway (raced the GOAWAY) gets REFUSED_STREAM.
    late = Client()
    late.conn = client.conn
    late.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN  # ignore our GOAWAY
    later = late.request()
    assert adapter.receive(late.send(), 0.0) == []
    resets = [e for e in client.receive(adapter.output()) if isinstance(e, h2.events.StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [
        (later, h2.errors.ErrorCodes.REFUSED_STREAM)
    ]
    assert later > first


# --- the stream driver -------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    (tmp_path / "a.txt").write_bytes(b"hello")
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 1000)
    (tmp_path / "huge.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB: several batches
    config = Config(
        server=ServerConfig(access_log="off"),
        site=SiteConfig(root=str(tmp_path), small_file_bytes=1024),
        limits=Limits(header_timeout_s=10, keepalive_timeout_s=20, send_timeout_s=30),
    )
    service = Service(config)
    yield service
    service.close()


def wire(actions: list[Action]) -> bytes:
    return b"".join(a for a in actions if isinstance(a, bytes))


def _connect(service: Service, client: Client) -> Connection:
    conn = connect(service, "peer", 0.0)
    data = client.send()
    assert data.startswith(PREFACE)
    # The preface may arrive in pieces; the connection waits until it can tell.
    assert conn.feed(data[:5], now=0.0) == []
    out = conn.feed(data[5:], now=0.0)
    client.receive(wire(out))
    conn.drained(0.0)
    return conn


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_driver_answers_streams_and_goes_idle(service: Service) -> None:
    client = Client()
    conn = _connect(service, client)
    ids = [client.request(), client.request(b"/missing"), client.request(method=b"HEAD")]
    out = conn.feed(client.send(), now=1.0)
    assert conn.deadline == 31.0  # writing: send timeout
    replies = _responses(client.receive(wire(out)))
    assert replies[ids[0]][0][b":status"] == b"200" and replies[ids[0]][1] == b"hello"
    assert replies[ids[1]][0][b":status"] == b"404"
    assert replies[ids[2]][0][b"content-length"] == b"5" and replies[ids[2]][1] == b""
    assert conn.drained(now=2.0) == []
    assert conn.idle and conn.deadline == 22.0  # keep-alive timeout
    out = conn.expired(now=22.0)
    assert out[-1] is CLOSE
    terminated = [
        e for e in client.receive(wire(out)) if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert terminated[0].error_code == h2.errors.ErrorCodes.NO_ERROR


def test_driver_respects_windows_and_bounds_open_files(service: Service) -> None:
    """Stream windows of 0: headers go out, no DATA; at most 16 files are held however
    many streams wait; opening the windows lets everything finish."""
    client = Client({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn = _connect(service, client)
    before = _open_fds()
    ids = [client.request(b"/big.bin") for _ in range(30)]
    out = conn.feed(client.send(), now=1.0)
    events = client.receive(wire(out))
    assert not any(isinstance(e, h2.events.DataReceived) for e in events)
    assert _open_fds() - before == 16
    assert conn.drained(now=2.0) == []
    assert conn.deadline == 31.0  # blocked on the client's window: the send clock runs on
    bodies: dict[int, bytes] = {}
    client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    client.conn.increment_flow_control_window(1 << 24)
    actions = conn.feed(client.send(), now=3.0)
    now = 3.0
    while actions:
        for event in client.receive(wire(actions)):
            if isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
                client.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        now += 0.01
        actions = conn.drained(now)
        pending = client.send()  # acknowledgements: WINDOW_UPDATE frames
        if pending:
            actions += conn.feed(pending, now)
    assert all(bodies[i] == bytes(range(256)) * 1000 for i in ids)
    assert _open_fds() == before and conn.idle


def test_driver_releases_files_of_reset_streams(service: Service) -> None:
    client = Client({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn = _connect(service, client)
    before = _open_fds()
    ids = [client.request(b"/big.bin") for _ in range(5)]
    client.receive(wire(conn.feed(client.send(), now=1.0)))
    assert _open_fds() - before == 5
    assert conn.drained(now=1.5) == []
    for stream_id in ids:
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    assert conn.feed(client.send(), now=2.0) == []
    assert _open_fds() == before and conn.idle


def test_driver_graceful_shutdown(service: Service) -> None:
    client = Client({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn = _connect(service, client)
    stream_id = client.request(b"/big.bin")
    client.receive(wire(conn.feed(client.send(), now=1.0)))
    service.drain(now=2.0)
    out = conn.shutdown()
    assert CLOSE not in out  # a stream is in flight
    terminated = [
        e for e in client.receive(wire(out)) if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert terminated[0].error_code == h2.errors.ErrorCodes.NO_ERROR
    assert terminated[0].last_stream_id == stream_id
    assert conn.feed(b"", now=3.0) == [CLOSE]  # the client went away: files released


def test_h2c_off_leaves_the_preface_to_http1(tmp_path: Path) -> None:
    config = Config(
        server=ServerConfig(access_log="off", h2c=False), site=SiteConfig(root=str(tmp_path))
    )
    conn = connect(Service(config), "peer", 0.0)
    out = conn.feed(PREFACE, now=0.0)
    assert wire(out).startswith(b"HTTP/1.1 505 ")


# --- review regressions ------------------------------------------------------------------


def _data(events: list[h2.events.Event]) -> dict[int, int]:
    got: dict[int, int] = {}
    for event in events:
        if isinstance(event, h2.events.DataReceived):
            got[event.stream_id] = got.get(event.stream_id, 0) + len(event.data)
    return got


def test_malformed_request_resets_only_its_stream() -> None:
    adapter = Http2(LIMITS, 0.0)
    client = Client(raw=True)
    adapter.receive(client.send(), 0.0)
    client.receive(adapter.output())
    bad = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        bad,
        [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"h"), (b":path", b"/"),
         (b"connection", b"close")],
        end_stream=True,
    )  # fmt: skip
    good = client.request()
    events = adapter.receive(client.send(), 0.0)
    assert [(type(e), e.stream_id) for e in events] == [(RequestReceived, good)]  # type: ignore[union-attr]
    resets = [e for e in client.receive(adapter.output()) if isinstance(e, h2.events.StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [
        (bad, h2.errors.ErrorCodes.PROTOCOL_ERROR)
    ]


def test_one_goaway_for_a_rapid_reset_flood() -> None:
    adapter, client = _open()
    for _ in range(300):
        stream_id = client.request(end=False)
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    events = adapter.receive(client.send(), 0.0)
    assert sum(isinstance(e, ProtocolFailed) for e in events) == 1
    assert adapter.receive(b"\x00" * 9, 0.0) == []  # nothing is read after the failure
    goaways = [
        e for e in client.receive(adapter.output()) if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert len(goaways) == 1


def test_a_lowered_initial_window_goes_negative_then_recovers(service: Service) -> None:
    """RFC 9113 §6.9.2: SETTINGS can make a stream window negative; the stream waits."""
    client = Client()
    conn = _connect(service, client)
    stream_id = client.request(b"/big.bin")
    events = client.receive(wire(conn.feed(client.send(), now=1.0)))
    assert _data(events)[stream_id] == 65535  # the default window, all used
    conn.drained(1.0)
    client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    assert not _data(client.receive(wire(conn.feed(client.send(), now=2.0))))
    conn.drained(2.0)
    client.conn.increment_flow_control_window(1 << 20)
    client.conn.increment_flow_control_window(1 << 20, stream_id)
    received = 65535 + sum(_data(client.receive(wire(conn.feed(client.send(), now=3.0)))).values())
    while out := conn.drained(3.0):
        received += sum(_data(client.receive(wire(out))).values())
    assert received == 256 * 1000


def test_the_file_cap_defers_only_requests_that_need_a_file(service: Service) -> None:
    client = Client({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn = _connect(service, client)
    big = [client.request(b"/big.bin") for _ in range(20)]
    small = client.request(b"/a.txt")
    missing = client.request(b"/missing")
    replies = _responses(client.receive(wire(conn.feed(client.send(), now=1.0))))
    assert set(replies) == {*big[:16], small, missing}  # 4 large downloads wait for a slot
    conn.drained(1.0)
    for stream_id in big[:4]:
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    replies = _responses(client.receive(wire(conn.feed(client.send(), now=2.0))))
    assert set(replies) == set(big[16:])  # slots freed: the rest start
    assert conn.feed(b"", now=3.0) == [CLOSE]


PAGE = b'<!doctype html><link rel=stylesheet href="/a.css"><script src="/b.js"></script>'


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_the_driver_sends_early_hints_for_a_get_of_a_page(tmp_path: Path, on: bool) -> None:
    """A 103 before the 200 of a page's GET, with the links the page names; none for a
    HEAD, a 304, a file that is not HTML, or with early hints off."""
    (tmp_path / "page.html").write_bytes(PAGE)
    (tmp_path / "a.css").write_bytes(b"p{}")
    site = SiteConfig(root=str(tmp_path), early_hints=on)
    service = Service(Config(server=ServerConfig(access_log="off"), site=site))
    client = Client()
    conn = _connect(service, client)
    get, head, css = (client.request(b"/page.html"), client.request(b"/page.html", b"HEAD"),
                      client.request(b"/a.css"))  # fmt: skip
    stream_id = client.conn.get_next_available_stream_id()
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"example"),
              (b":path", b"/page.html"), (b"if-none-match", b"*")]  # fmt: skip
    client.conn.send_headers(stream_id, fields, end_stream=True)
    events = client.receive(wire(conn.feed(client.send(), now=1.0)))
    informed = [e for e in events if isinstance(e, h2.events.InformationalResponseReceived)]
    final = {e.stream_id: e for e in events if isinstance(e, h2.events.ResponseReceived)}
    statuses = {i: dict(e.headers)[b":status"] for i, e in final.items()}
    assert statuses == {get: b"200", head: b"200", css: b"200", stream_id: b"304"}
    if not on:
        assert informed == []
    else:
        assert [(e.stream_id, e.headers) for e in informed] == [
            (get, [(b":status", b"103"), *HINTS])
        ]
        assert events.index(informed[0]) < events.index(final[get])
    service.close()


def _unbounded(service: Service) -> tuple[Client, Connection]:
    """A connection whose flow-control windows never hold anything back."""
    client = Client({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: (1 << 31) - 1})
    conn = _connect(service, client)
    client.conn.increment_flow_control_window((1 << 31) - 1 - 65535)
    return client, conn


def test_incremental_streams_share_the_connection_in_turn(service: Service) -> None:
    """RFC 9218 §4.2: responses that may be sent incrementally interleave, a frame each."""
    client, conn = _unbounded(service)
    ids = [client.request(b"/big.bin", priority=b"u=3, i") for _ in range(3)]
    got = _data(client.receive(wire(conn.feed(client.send(), now=1.0))))
    assert set(got) == set(ids) and max(got.values()) - min(got.values()) <= 16384
    conn.feed(b"", now=2.0)


def test_priorities_order_the_streams(service: Service) -> None:
    """RFC 9218 §10: the most urgent first; within an urgency, a response that is not
    incremental (the default) is sent whole before the next, in stream order."""
    client, conn = _unbounded(service)
    first, second = client.request(b"/big.bin"), client.request(b"/big.bin")
    urgent = client.request(b"/big.bin", priority=b"u=0")
    got = _data(client.receive(wire(conn.feed(client.send(), now=1.0))))
    size = 256000  # big.bin: the whole of it, then what is left of the batch
    assert got == {urgent: size, first: BATCH_BYTES - size}
    got = _data(client.receive(wire(conn.drained(1.0))))
    assert got == {first: size - (BATCH_BYTES - size), second: 2 * BATCH_BYTES - 2 * size}
    conn.feed(b"", now=2.0)  # the client goes: the files still open are closed


def _priority_update(stream_id: int, value: bytes, on: int = 0) -> bytes:
    """A PRIORITY_UPDATE frame (RFC 9218 §7.1), built by hand: h2 has no sender for it
    (RFC 9113 §4.1: length, type, flags, stream; then the prioritized stream, the value)."""
    body = stream_id.to_bytes(4, "big") + value
    return len(body).to_bytes(3, "big") + b"\x10\x00" + on.to_bytes(4, "big") + body


def test_priority_update_frames_reprioritize(service: Service) -> None:
    """RFC 9218 §7: a PRIORITY_UPDATE before or after the request's HEADERS moves the
    response; it wins over the Priority field."""
    client, conn = _unbounded(service)
    first = client.request(b"/big.bin", priority=b"u=1")
    later = client.request(b"/big.bin", priority=b"u=1")
    early = _priority_update(later, b"u=0")  # before anything was answered
    got = _data(client.receive(wire(conn.feed(client.send() + early, now=1.0))))
    assert got == {later: 256000, first: BATCH_BYTES - 256000}
    third = client.request(b"/big.bin")
    # While `first` is being sent: the third goes ahead of it.
    out = conn.drained(1.0, client.send() + _priority_update(third, b"u=0"))
    assert list(_data(client.receive(wire(out)))) == [third, first]
    conn.feed(b"", now=2.0)


@pytest.mark.parametrize(("target", "on"), [(1, 1), (0, 0)])
def test_priority_update_in_the_wrong_place_is_a_connection_error(
    service: Service, target: int, on: int
) -> None:
    client = Client()
    conn = _connect(service, client)
    stream_id = client.request()
    out = conn.feed(client.send() + _priority_update(target, b"u=0", on=on), now=1.0)
    events = client.receive(wire(out))
    ended = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert ended and ended[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert stream_id  # (its request may or may not have been answered first)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (b"", (3, False)),
        (b"u=0", (0, False)),
        (b"u=7, i", (7, True)),
        (b"i, u=1", (1, True)),
        (b"i=?0, u=5", (5, False)),
        (b"u=8", (3, False)),  # out of range: the default
        (b"u=1;x=y, i;z", (1, True)),  # parameters are ignored
        (b"u=x, i=1, zz=3", (3, False)),  # invalid or unknown members
    ],
)
def test_priority_field(value: bytes, parsed: tuple[int, bool]) -> None:
    assert priority.parse(value) == parsed


def test_input_between_batches_is_seen(service: Service) -> None:
    """drained(now, data): a reset arriving while a batch was written stops the stream."""
    client = Client({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: (1 << 31) - 1})
    conn = _connect(service, client)
    client.conn.increment_flow_control_window((1 << 31) - 1 - 65535)
    stream_id = client.request(b"/huge.bin")
    assert conn.multiplexed
    assert _data(client.receive(wire(conn.feed(client.send(), now=1.0))))[stream_id] < 1 << 21
    client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    client.conn.ping(b"12345678")
    events = client.receive(wire(conn.drained(1.0, client.send())))
    assert not _data(events)
    assert any(isinstance(e, h2.events.PingAckReceived) for e in events)


def test_client_goaway_lets_open_streams_finish(service: Service) -> None:
    client = Client()
    conn = _connect(service, client)
    stream_id = client.request()
    goaway = GoAwayFrame(0)  # built by hand: h2's client would stop reading after its own
    goaway.last_stream_id = 0
    out = conn.feed(client.send() + goaway.serialize(), now=1.0)
    replies = _responses(client.receive(wire(out)))
    assert replies[stream_id][1] == b"hello"
    assert conn.drained(1.0) == [CLOSE]  # once written, the connection ends


def test_each_request_has_its_own_header_clock(service: Service) -> None:
    """A request whose body never ends gets 408 on its stream; others carry on."""
    client = Client()
    conn = _connect(service, client)
    slow = client.request(b"/a.txt", method=b"POST", end=False)
    conn.feed(client.send(), now=1.0)
    conn.drained(1.0)
    assert conn.deadline == 11.0  # the slow request's header timeout
    fast = client.request()
    replies = _responses(client.receive(wire(conn.feed(client.send(), now=5.0))))
    assert replies[fast][1] == b"hello"
    conn.drained(5.0)
    out = conn.expired(11.0)
    assert CLOSE not in out
    assert conn.deadline > 11.0  # the connection's clock follows its streams at once
    events = client.receive(wire(out))
    assert _responses(events)[slow][0][b":status"] == b"408"
    assert any(isinstance(e, h2.events.StreamReset) and e.stream_id == slow for e in events)


def test_pings_do_not_keep_a_stalled_stream_alive(service: Service) -> None:
    client = Client({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn = _connect(service, client)
    client.request(b"/big.bin")
    client.receive(wire(conn.feed(client.send(), now=1.0)))
    conn.drained(1.0)
    for now in (10.0, 20.0, 30.0):
        client.conn.ping(b"12345678")
        client.receive(wire(conn.feed(client.send(), now=now)))
        conn.drained(now)
    assert conn.deadline == 31.0  # 30 s of send timeout from when the stream stalled
    assert conn.expired(31.0)[-1] is CLOSE


def test_preface_alone_has_the_header_timeout(service: Service) -> None:
    client = Client()
    conn = _connect(service, client)
    assert conn.deadline == 10.0  # not the keep-alive timeout: no request yet
    assert conn.expired(10.0)[-1] is CLOSE


# --- extended CONNECT (RFC 8441) ------------------------------------------------------------


def _tunnel_request(client: Client) -> int:
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        stream_id,
        [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
         (b":authority", b"example"), (b":path", b"/ws")],
    )  # fmt: skip
    return stream_id


def test_tunnels_are_offered_and_reported_with_their_head() -> None:
    server = Http2(LIMITS, 0.0, tunnels=True)
    client = Client(raw=True)
    client.receive(server.output())
    assert client.conn.remote_settings.enable_connect_protocol == 1  # RFC 8441 §3
    stream_id = _tunnel_request(client)
    (event,) = server.receive(client.send(), 0.0)
    assert isinstance(event, TunnelRequested) and event.stream_id == stream_id
    assert event.request.headers[b":protocol"] == b"websocket"
    assert not server.in_message  # a tunnel is no request under way: no 408 clock
    assert server.accept(stream_id, [(b"sec-websocket-extensions", b"x")], b"date")
    (response,) = [e for e in client.receive(server.output()) if hasattr(e, "headers")]
    assert dict(response.headers)[b":status"] == b"200"


def test_tunnel_input_reopens_the_window_only_when_acknowledged() -> None:
    server = Http2(LIMITS, 0.0, tunnels=True)
    client = Client(raw=True)
    client.receive(server.output())
    stream_id = _tunnel_request(client)
    server.receive(client.send(), 0.0)
    server.accept(stream_id, [], b"date")
    client.receive(server.output())
    for _ in range(3):  # past half the window: h2 sends WINDOW_UPDATE for that much
        client.conn.send_data(stream_id, b"x" * 16000)
    received = server.receive(client.send(), 0.0)
    assert all(isinstance(e, TunnelData) and e.flow == 16000 for e in received)
    client.receive(server.output())
    before = client.conn.local_flow_control_window(stream_id)
    assert before == 65535 - 48000  # nothing reopened yet
    for event in received:
        assert isinstance(event, TunnelData)
        server.acknowledge(stream_id, event.flow)
    client.receive(server.output())
    assert client.conn.local_flow_control_window(stream_id) > before
    client.conn.end_stream(stream_id)
    (end,) = server.receive(client.send(), 0.0)
    assert isinstance(end, TunnelData) and end.ended and end.data == b""


def test_an_extended_connect_not_offered_is_malformed() -> None:
    """RFC 8441 §4: :protocol before the server sent the setting: the stream is reset."""
    server = Http2(LIMITS, 0.0)
    client = Client(raw=True)
    client.receive(server.output())
    stream_id = _tunnel_request(client)
    assert server.receive(client.send(), 0.0) == []
    (reset,) = [e for e in client.receive(server.output()) if isinstance(e, h2.events.StreamReset)]
    assert reset.stream_id == stream_id and reset.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
