"""A cleartext listener that sends every client to HTTPS (`--redirect-https`), as an
nginx `server { listen 80; return 308 https://$host$request_uri; }` does."""

from __future__ import annotations

from lanthorn.core.request import Request
from lanthorn.core.response import ResponsePlan

Headers = list[tuple[bytes, bytes]]
# Served where they are, never redirected: an ACME CA fetches its HTTP-01 challenge over
# cleartext (RFC 8555 §8.3) before there is a certificate to redirect to.
ACME = b"/.well-known/acme-challenge/"


def to_https(request: Request, port: int, common: Headers) -> ResponsePlan | None:
    """308 Permanent Redirect (RFC 9110 §15.4.9: the method and body are kept) to the
    same host, path and query on HTTPS at `port`; None for an ACME challenge or a
    request without a Host to send it to (the site answers those). The Host was
    validated as uri-host [":" port] by the protocol adapter, so it cannot split a
    header."""
    target = request.target
    if not target.startswith(b"/"):  # absolute-form (RFC 9112 §3.2.2): keep its path
        rest = target.partition(b"://")[2]
        target = b"/" + rest.partition(b"/")[2] if b"/" in rest else b"/"
    host = request.headers.get(b"host")
    if target.startswith(ACME) or not host:
        return None
    name, colon, number = host.rpartition(b":")
    name = name if colon and number.isdigit() else host
    authority = name if port == 443 else name + b":%d" % port
    location = b"https://" + authority + target
    headers = [(b"location", location), (b"content-length", b"0"), *common]
    return ResponsePlan(308, headers, b"")
