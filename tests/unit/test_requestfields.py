"""Request field sections of HTTP/2 and HTTP/3 (RFC 9113 §8.2-8.3): table tests."""

from __future__ import annotations

import pytest

from lanthorn.config import Limits
from lanthorn.errors import ProtocolError
from lanthorn.protocol.requestfields import Malformed, request

LIMITS = Limits(max_headers=5, max_head_bytes=300, max_url_bytes=50)
BASE = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"h"), (b":path", b"/")]


def test_a_well_formed_request() -> None:
    fields = [*BASE, (b"accept", b"a"), (b"cookie", b"x=1"), (b"cookie", b"y=2")]
    got = request(fields, LIMITS, "2.0")
    assert (got.method, got.target, got.version) == (b"GET", b"/", "2.0")
    assert got.headers == {b"accept": b"a", b"cookie": b"x=1; y=2", b"host": b"h"}


@pytest.mark.parametrize(
    "fields",
    [
        [*BASE, (b"Accept", b"a")],  # §8.2.1: uppercase name
        [*BASE, (b"connection", b"close")],  # §8.2.2: connection-specific
        [*BASE, (b"transfer-encoding", b"chunked")],
        [*BASE, (b"te", b"gzip")],  # only "trailers"
        [*BASE, (b"x", b"a\r\nb")],  # §8.2.1: CR/LF in a value
        [*BASE, (b"x", b" padded")],
        [*BASE, (b"", b"v")],
        [(b"accept", b"a"), *BASE],  # §8.3: pseudo-header fields first
        [*BASE, (b":path", b"/again")],  # duplicated
        [*BASE, (b":status", b"200")],  # a response's
        [*BASE, (b":protocol", b"websocket")],  # RFC 8441 §4: :protocol only on CONNECT
        [(b":method", b"CONNECT"), (b":protocol", b"websocket"), *BASE[1:2], BASE[3]],
        BASE[1:],  # no :method
        [f for f in BASE if f[0] != b":path"],
        [*BASE[:3], (b":path", b"")],
        [f for f in BASE if f[0] != b":scheme"],
        [*BASE, (b"host", b"other")],  # §8.3.1: Host differs from :authority
        [(b":method", b"CONNECT"), (b":authority", b"h"), (b":path", b"/")],  # §8.5
    ],
)
def test_malformed_sections(fields: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(Malformed):
        request(fields, LIMITS, "2.0")


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ([(b":method", b"CONNECT"), (b":authority", b"example:443")], 405),
        ([*BASE, *[(b"x-%d" % i, b"v") for i in range(6)]], 431),
        ([*BASE, (b"x", b"v" * 300)], 431),
        ([*BASE[:3], (b":path", b"/" + b"a" * 50)], 414),
        ([*BASE[:2], (b":authority", b"a@b/../c"), BASE[3]], 400),  # as HTTP/1.1 answers
        ([*[f for f in BASE if f[0] != b":authority"], (b"host", b"a b")], 400),
    ],
)
def test_limits_and_connect_get_a_status(fields: list[tuple[bytes, bytes]], status: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        request(fields, LIMITS, "2.0")
    assert caught.value.status == status


def test_an_extended_connect_keeps_its_protocol() -> None:
    """RFC 8441 §4: CONNECT with :protocol, :scheme, :path and :authority is a request
    for its path; whether extended CONNECT was offered is the adapter's to check."""
    fields = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), *BASE[1:]]
    got = request(fields, LIMITS, "2.0")
    assert (got.method, got.target) == (b"CONNECT", b"/")
    assert got.headers[b":protocol"] == b"websocket"


def test_host_equal_to_authority_and_host_alone() -> None:
    assert request([*BASE, (b"host", b"h")], LIMITS, "3").headers[b"host"] == b"h"
    no_authority = [f for f in BASE if f[0] != b":authority"] + [(b"host", b"z")]
    assert request(no_authority, LIMITS, "3").headers[b"host"] == b"z"
