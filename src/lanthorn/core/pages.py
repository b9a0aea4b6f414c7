"""Error and status pages: small HTML bodies, as nginx sends them."""

from __future__ import annotations

from lanthorn.core.response import REASONS, ResponsePlan

Headers = list[tuple[bytes, bytes]]


def page(status: int) -> bytes:
    title = f"{status} {REASONS[status].decode()}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>lanthorn</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def page_plan(status: int, extra: Headers) -> ResponsePlan:
    body = page(status)
    headers = [(b"content-type", b"text/html"), (b"content-length", b"%d" % len(body)), *extra]
    return ResponsePlan(status, headers, body)
