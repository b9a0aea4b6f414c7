"""The PROXY protocol header a load balancer sends before the client's bytes (HAProxy's
PROXY protocol specification, versions 1 and 2), read sans-IO: it names the client
the balancer accepted, so logs and per-client limits see that client, not the balancer.

Version 1 is one text line of at most 107 bytes; version 2 a 16-byte binary head and
its addresses. A LOCAL (v2) or UNKNOWN (v1) header — a balancer's own health check —
names no client: the connection's own peer stands.
"""

from __future__ import annotations

import ipaddress
import struct

V1_MAX = 107  # "PROXY TCP6 " + two full IPv6 addresses + two ports + CRLF
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
# Addresses and TLVs past the 16-byte head; HAProxy's own TLVs stay far below this.
V2_MAX_BODY = 4096
_V2_HEAD = struct.Struct("!12sBBH")


class ProxyHeaderError(ValueError):
    """Not a PROXY protocol header: the connection is closed unheard."""


def parse(data: bytes) -> tuple[str | None, int] | None:
    """(the client's address or None, the header's length in bytes) once `data` holds a
    whole header; None while it may still be one; ProxyHeaderError when it is not."""
    if data[:1] == b"\r":
        return _v2(data)
    if data[:1] == b"P":
        return _v1(data)
    raise ProxyHeaderError("no PROXY protocol header")


def _v1(data: bytes) -> tuple[str | None, int] | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX or not b"PROXY ".startswith(data[:6]):
            raise ProxyHeaderError("PROXY v1 line too long or not PROXY")
        return None
    fields = data[:end].split(b" ")
    if fields[0] != b"PROXY" or len(fields) < 2:
        raise ProxyHeaderError("not a PROXY v1 line")
    if fields[1] == b"UNKNOWN":
        return None, end + 2
    if fields[1] not in (b"TCP4", b"TCP6") or len(fields) != 6:
        raise ProxyHeaderError("PROXY v1 line is not TCP4/TCP6 with four fields")
    version = 4 if fields[1] == b"TCP4" else 6
    try:
        source = ipaddress.ip_address(fields[2].decode("ascii"))
        ipaddress.ip_address(fields[3].decode("ascii"))
        ports = [int(p) for p in fields[4:]]
    except (UnicodeDecodeError, ValueError):
        raise ProxyHeaderError("PROXY v1 addresses or ports malformed") from None
    if source.version != version or not all(0 <= p <= 65535 for p in ports):
        raise ProxyHeaderError("PROXY v1 address family or port out of range")
    return str(source), end + 2


def _v2(data: bytes) -> tuple[str | None, int] | None:
    if len(data) < _V2_HEAD.size:
        if not V2_SIGNATURE.startswith(data[:12]):
            raise ProxyHeaderError("not a PROXY v2 signature")
        return None
    signature, version_command, family, length = _V2_HEAD.unpack_from(data)
    if signature != V2_SIGNATURE or version_command >> 4 != 2:
        raise ProxyHeaderError("not a PROXY v2 header")
    if length > V2_MAX_BODY:
        raise ProxyHeaderError("PROXY v2 header too long")
    total = _V2_HEAD.size + length
    if len(data) < total:
        return None
    command = version_command & 0x0F
    if command == 0:  # LOCAL: the balancer's own connection
        return None, total
    if command != 1:
        raise ProxyHeaderError("PROXY v2 command is neither LOCAL nor PROXY")
    body = data[_V2_HEAD.size : total]
    if family >> 4 == 1 and length >= 12:  # AF_INET: source, destination, two ports
        return str(ipaddress.IPv4Address(body[:4])), total
    if family >> 4 == 2 and length >= 36:  # AF_INET6
        return str(ipaddress.IPv6Address(body[:16])), total
    if family >> 4 in (0, 3):  # AF_UNSPEC, AF_UNIX: no address to give
        return None, total
    raise ProxyHeaderError("PROXY v2 address block too short for its family")
