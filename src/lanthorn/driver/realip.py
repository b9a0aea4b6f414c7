"""Who the client is behind a trusted proxy (nginx's realip module with
`real_ip_recursive on`): when the connection comes from a configured network, the
client is the last address in `Forwarded` (RFC 7239) or, without it, `X-Forwarded-For`
that is not itself one of those networks."""

from __future__ import annotations

import ipaddress

from lanthorn.core.request import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MEMO = 4096  # peers remembered as trusted or not (cleared whole when full)


class RealClient:
    def __init__(self, trusted: tuple[Network, ...]) -> None:
        self._trusted = trusted
        self._memo: dict[str, bool] = {}

    def of(self, peer: str, request: Request) -> str:
        """The client `request` came from; `peer` unless a trusted proxy names another."""
        if not self._trusted or not self._trusts(peer):
            return peer
        headers = request.headers
        forwarded = headers.get(b"forwarded")
        hops = _forwarded_for(forwarded) if forwarded else _x_forwarded_for(headers)
        client = peer
        for hop in reversed(hops):
            client = hop
            if not self._trusts(hop):
                break
        return client

    def _trusts(self, address: str) -> bool:
        known = self._memo.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                known = False
            else:
                known = any(ip in net for net in self._trusted)
            if len(self._memo) >= _MEMO:
                self._memo.clear()
            self._memo[address] = known
        return known


def _address(text: str) -> str | None:
    """An IP address in canonical form, or None (`unknown`, `_obfuscated`, garbage)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _x_forwarded_for(headers: dict[bytes, bytes]) -> list[str]:
    hops = []
    for part in headers.get(b"x-forwarded-for", b"").decode("latin-1").split(","):
        hop = _address(part.strip())
        if hop is None:
            return []
        hops.append(hop)
    return hops


def _forwarded_for(value: bytes) -> list[str]:
    """The `for=` nodes of a Forwarded field (RFC 7239 §4, §6): `for=192.0.2.60`,
    `for="[2001:db8::17]:4711"`; one that is not an address ends the usable chain."""
    hops = []
    for element in value.decode("latin-1").split(","):
        node = None
        for pair in element.split(";"):
            name, _, raw = pair.strip().partition("=")
            if name.lower() == "for":
                node = raw.strip().strip('"')
        if node is None:
            return []
        if node.startswith("["):
            node = node[1:].partition("]")[0]
        elif node.count(":") == 1:
            node = node.partition(":")[0]
        hop = _address(node)
        if hop is None:
            return []
        hops.append(hop)
    return hops
