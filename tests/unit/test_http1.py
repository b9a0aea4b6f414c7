"""The HTTP/1.1 adapter in memory (RFC 9112): parsing, limits, serialisation."""

from __future__ import annotations

import pytest

from lanthorn.config import Limits
from lanthorn.core.response import FileBody, ResponsePlan
from lanthorn.protocol.events import Event, ProtocolFailed, RequestReceived, UpgradeRequested
from lanthorn.protocol.http1 import Http1

LIMITS = Limits(max_url_bytes=100, max_head_bytes=300, max_headers=5, max_body_bytes=50)


def feed(*chunks: bytes, limits: Limits = LIMITS) -> tuple[Http1, list[Event]]:
    adapter = Http1(limits)
    events: list[Event] = []
    for chunk in chunks:
        events += adapter.receive(chunk)
    return adapter, events


def requests(events: list[Event]) -> list[RequestReceived]:
    return [e for e in events if isinstance(e, RequestReceived)]


def failure(events: list[Event]) -> int:
    assert isinstance(events[-1], ProtocolFailed)
    return events[-1].error.status


def test_simple_request_and_headers_lowercased() -> None:
    _, events = feed(b"GET /a?b HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n")
    (event,) = requests(events)
    request = event.request
    assert (request.method, request.target, request.version) == (b"GET", b"/a?b", "1.1")
    assert request.headers == {b"host": b"x", b"user-agent": b"t"}
    assert event.keep_alive


def test_byte_at_a_time() -> None:
    data = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
    adapter, events = feed(*(data[i : i + 1] for i in range(len(data))))
    assert [e.request.target for e in requests(events)] == [b"/x"]
    assert not adapter.in_message


def test_in_message_tracks_partial_requests() -> None:
    adapter, events = feed(b"GET /x HTTP/1.1\r\nHo")
    assert not events and adapter.in_message


def test_repeated_fields_joined() -> None:
    """RFC 9110 §5.3: a list-valued field may be combined with commas."""
    _, events = feed(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n\r\n")
    assert requests(events)[0].request.headers[b"accept"] == b"a, b"


@pytest.mark.parametrize(
    ("data", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    ],
)
def test_keep_alive_rules(data: bytes, keep_alive: bool) -> None:
    """RFC 9112 §9.3: persistence by version and Connection."""
    _, events = feed(data)
    assert requests(events)[0].keep_alive is keep_alive


def test_pipelined_in_order_with_bodies_skipped() -> None:
    _, events = feed(
        b"GET /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
        b"Host: trailer-ignored\r\n\r\n"
        b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert [e.request.target for e in requests(events)] == [b"/1", b"/2", b"/3"]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /" + b"a" * 101 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nA: " + b"v" * 300 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"A: v\r\n" * 6 + b"\r\n", 431),  # same name counts too
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 51\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + b"x" * 64, 413),
        (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br\r\n\r\n", 501),
        (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        # RFC 9112 §3.2: an invalid Host is a 400 (issue 9, defect 7)
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a@b/../c\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: user@example\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: example/x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: ex%zzample\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: example:80:80\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n", 400),
        (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / HTTP/1.2\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"FOO / HTTP/1.1\r\n\r\n", 501),
        (b"G@T / HTTP/1.1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n", 405),
    ],
)
def test_failures_have_precise_statuses(data: bytes, status: int) -> None:
    adapter, events = feed(data)
    assert failure(events) == status
    assert adapter.closed
    assert adapter.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == []


@pytest.mark.parametrize(
    "host",
    [b"", b"example", b"example:8080", b"127.0.0.1:80", b"[::1]:8080", b"[v1.x]",
     b"xn--bcher-kva.example", b"a_b.example", b"ex%41mple", b"example:"],
)  # fmt: skip
def test_valid_hosts_are_served(host: bytes) -> None:
    _, events = feed(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert [type(e) for e in events] == [RequestReceived]


def test_header_growing_inside_the_parser_is_bounded() -> None:
    """A value that never ends is buffered inside httptools; it is bounded anyway."""
    adapter = Http1(LIMITS)
    events = adapter.receive(b"GET / HTTP/1.1\r\nHost: x\r\nX: ")
    for _ in range(20):
        events += adapter.receive(b"v" * 64)
        if events:
            break
    assert failure(events) == 431


@pytest.mark.parametrize(
    "start",
    [
        b"0\r\nX-Trailer: ",  # a trailer field that never ends
        b"3\r\nabc\r\n0\r\n" + b"X: y\r\n" * 10,  # many trailer fields, then one
    ],
)
def test_chunked_trailers_and_extensions_are_bounded(start: bytes) -> None:
    """Trailer fields are buffered inside httptools too (128 MiB of a trailer value was
    held, copied again on every read, with no status at all); bounded like a head."""
    adapter = Http1(LIMITS)
    events = adapter.receive(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    events += adapter.receive(start)
    for _ in range(20):
        events += adapter.receive(b"v" * 64)
        if events:
            break
    assert failure(events) == 431 and adapter.closed


def test_trailer_section_in_one_read_is_bounded_too() -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    _, events = feed(head + b"X: y\r\n" * 60 + b"\r\n")  # 60 * 6 > 300 bytes
    assert failure(events) == 431
    _, events = feed(head + b"X: y\r\n" * 40 + b"\r\n")  # 40 * 6 < 300 bytes
    assert [e.request.target for e in requests(events)] == [b"/"]


def test_chunked_body_with_trailers_within_bounds_passes() -> None:
    """Many small chunks (data arriving bit by bit) and a modest trailer are fine."""
    adapter = Http1(LIMITS)
    events = adapter.receive(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(40):  # 40 one-byte chunks, each in its own read, well over the head limit
        for piece in (b"1\r\n", b"x", b"\r\n"):
            events += adapter.receive(piece)
    for piece in (b"0\r\n", b"X-T: " + b"t" * 100, b"\r\n\r\n"):
        events += adapter.receive(piece)
    assert [e.request.target for e in requests(events)] == [b"/"]


def test_an_upgrade_is_reported_with_what_followed_it_and_ends_http1() -> None:
    adapter, events = feed(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nxx"
    )
    first, upgrade = events
    assert type(first) is RequestReceived and first.keep_alive
    assert isinstance(upgrade, UpgradeRequested) and upgrade.rest == b"xx"
    assert upgrade.request.headers[b"upgrade"] == b"websocket" and not upgrade.keep_alive
    assert adapter.closed and adapter.receive(b"GET / HTTP/1.1\r\n\r\n") == []


def test_connect_is_reported_as_an_upgrade_too() -> None:
    _, events = feed(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\ntunnel")
    (event,) = events
    assert isinstance(event, UpgradeRequested) and event.rest == b"tunnel"


def test_serialisation_and_memo() -> None:
    plan = ResponsePlan(200, [(b"content-type", b"text/plain"), (b"etag", b'"1"')], b"hi")
    adapter = Http1(LIMITS)
    (wire,) = adapter.response(plan, True, True, b"DATE")
    assert isinstance(wire, bytes)
    assert wire == (
        b"HTTP/1.1 200 OK\r\nServer: lanthorn\r\nContent-Type: text/plain\r\n"
        b'ETag: "1"\r\nDate: DATE\r\nConnection: keep-alive\r\n\r\nhi'
    )
    (head,) = adapter.response(plan, False, False, b"DATE")
    assert isinstance(head, bytes) and head.endswith(b"Connection: close\r\n\r\n")
    assert plan.memo  # the head prefix is kept for the next request


def test_file_bodies_follow_the_head(tmp_path: object) -> None:
    import io

    body = FileBody(io.BytesIO(b"abc"), 0, 3)
    plan = ResponsePlan(200, [(b"content-length", b"3")], body)
    head, file_body = Http1(LIMITS).response(plan, True, True, b"D")
    assert isinstance(head, bytes) and head.endswith(b"\r\n\r\n")
    assert file_body is body


@pytest.mark.parametrize("length", [b"0" * 4999 + b"1", b"9" * 5000])
def test_content_length_with_thousands_of_digits(length: bytes) -> None:
    """Never an exception out of the adapter: a number or a precise failure."""
    data = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\nx"
    _, events = feed(data, limits=Limits())
    if length.startswith(b"9"):
        assert failure(events) in (400, 413)
    else:
        assert requests(events)[0].request.target == b"/"
