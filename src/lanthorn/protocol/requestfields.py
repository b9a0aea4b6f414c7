"""Request field sections as HTTP/2 (RFC 9113 §8.2-8.3) and HTTP/3 (RFC 9114 §4.2-4.3)
carry them: pseudo-header fields first, lowercase names, no connection-specific fields.

`request()` turns a decoded field list into the core's `Request`, or says why it cannot:
a malformed section (the stream is reset with PROTOCOL_ERROR, RFC 9113 §8.1.1) or a limit
the request breaks (answered with its status, like HTTP/1.1: 414, 431; CONNECT → 405,
since we are no proxy). An extended CONNECT (RFC 8441 §4, RFC 9220 §3) is a request like
any other, for its :path, with its `:protocol` kept among the headers; whether the
connection offered extended CONNECT is the adapter's to check.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lanthorn.config import Limits
from lanthorn.core.request import Request
from lanthorn.errors import ProtocolError

# RFC 9113 §8.2.1: a field name is a lowercase token; values have no NUL, CR or LF and
# no leading or trailing whitespace.
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_BAD_VALUE = re.compile(rb"[\0\r\n]|\A[ \t]|[ \t]\Z")
# RFC 9113 §8.2.2: fields that only mean something to HTTP/1.1 connections.
_CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
_PSEUDO = frozenset((b":method", b":scheme", b":authority", b":path", b":protocol"))
# RFC 9113 §6.5.2: each field counts its name, its value and 32 octets.
_FIELD_OVERHEAD = 32
# RFC 9110 §7.2, RFC 3986 §3.2.2-3.2.3: uri-host [ ":" port ], where uri-host is an
# IP-literal in brackets, or a reg-name (IPv4 addresses are reg-names too) of
# unreserved, pct-encoded and sub-delims characters. No userinfo ("@"), no path, no
# spaces. Empty is allowed: a target without an authority (RFC 9112 §3.2).
_AUTHORITY = re.compile(
    rb"(?:\[[0-9A-Za-z:.!$&'()*+,;=_~-]+\]|(?:[0-9A-Za-z._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*)"
    rb"(?::[0-9]*)?"
)


@lru_cache(maxsize=256)
def valid_host(host: bytes) -> bool:
    """Whether a Host (or :authority) value is well-formed; remembered per value."""
    return _AUTHORITY.fullmatch(host) is not None


class Malformed(Exception):
    """The section breaks the protocol's rules (a stream error, not an HTTP status)."""


def request(fields: list[tuple[bytes, bytes]], limits: Limits, version: str) -> Request:
    """Raises Malformed, or ProtocolError with the status to answer."""
    pseudo: dict[bytes, bytes] = {}
    headers: dict[bytes, bytes] = {}
    size = 0
    for name, value in fields:
        if _BAD_VALUE.search(value):
            raise Malformed(f"bad value in {name[:64]!r}")
        if name[:1] == b":":
            if headers or name not in _PSEUDO or name in pseudo:
                raise Malformed(f"pseudo-header field {name[:64]!r} misplaced or unknown")
            pseudo[name] = value
            continue
        if not _NAME.fullmatch(name) or name in _CONNECTION_SPECIFIC:
            raise Malformed(f"field name {name[:64]!r} not allowed")
        if name == b"te" and value.lower() != b"trailers":
            raise Malformed("TE other than trailers")
        size += len(name) + len(value) + _FIELD_OVERHEAD
        if name in headers:
            # RFC 9113 §8.2.3: split cookie fields are joined with "; ".
            headers[name] += (b"; " if name == b"cookie" else b", ") + value
        else:
            headers[name] = value
    method = pseudo.get(b":method")
    if method is None:
        raise Malformed("no :method")
    authority = pseudo.get(b":authority")
    if authority is not None:
        host = headers.setdefault(b"host", authority)  # RFC 9113 §8.3.1
        if host != authority:
            raise Malformed("Host differs from :authority")
    given = headers.get(b"host")
    if given is not None and not valid_host(given):
        raise ProtocolError(400, "invalid Host")  # as HTTP/1.1 answers it
    protocol = pseudo.get(b":protocol")
    if protocol is not None:
        # RFC 8441 §4: only with CONNECT, and then with :scheme, :path and :authority.
        if method != b"CONNECT" or authority is None:
            raise Malformed(":protocol without an extended CONNECT")
        headers[b":protocol"] = protocol
    elif method == b"CONNECT":
        if authority is None or b":path" in pseudo or b":scheme" in pseudo:
            raise Malformed("CONNECT needs :authority only")  # RFC 9113 §8.5
        raise ProtocolError(405, "CONNECT: not a proxy")
    target = pseudo.get(b":path", b"")
    if not target or b":scheme" not in pseudo:
        raise Malformed("no :scheme or :path")
    if len(fields) - len(pseudo) > limits.max_headers or size > limits.max_head_bytes:
        raise ProtocolError(431, "request header fields too large")
    if len(target) > limits.max_url_bytes:
        raise ProtocolError(414, "request-target too long")
    return Request(method, target, version, headers)
