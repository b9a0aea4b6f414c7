"""Live reload's parts in memory: the page the core serves, what a socket is told."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from lanthorn.config import SiteConfig
from lanthorn.core.livereload import SCRIPT, inject
from lanthorn.core.request import Request
from lanthorn.core.respond import Site
from lanthorn.driver.websocket import reload_message

PAGE = b"<html><body><p>hi</p></BODY></html>"


def _get(site: Site, target: bytes, **headers: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    fields = {name.replace("_", "-").encode(): value for name, value in headers.items()}
    plan = site.respond(Request(b"GET", target, "1.1", fields), 0.0)
    assert isinstance(plan.body, bytes)
    return plan.status, dict(plan.headers), plan.body


def test_the_script_goes_before_the_last_body_end_tag() -> None:
    assert inject(PAGE) == b"<html><body><p>hi</p>" + SCRIPT + b"</BODY></html>"
    assert inject(b"no body") == b"no body" + SCRIPT


def test_html_is_served_with_the_script_and_its_own_etag(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_bytes(PAGE)
    (tmp_path / "index.html.gz").write_bytes(gzip.compress(PAGE))  # a sidecar: not used
    (tmp_path / "a.css").write_bytes(b"p{}")
    live = Site(SiteConfig(root=str(tmp_path), live_reload=True))
    plain = Site(SiteConfig(root=str(tmp_path)))
    status, headers, body = _get(live, b"/index.html", accept_encoding=b"gzip")
    assert status == 200 and body == inject(PAGE) and b"content-encoding" not in headers
    _, plain_headers, _ = _get(plain, b"/index.html")
    assert headers[b"etag"] != plain_headers[b"etag"]
    assert headers[b"etag"].endswith(b'-live"')
    assert _get(live, b"/a.css")[2] == b"p{}"  # only pages get the script
    (tmp_path / "index.html").write_bytes(PAGE.replace(b"hi", b"changed"))
    assert b"changed" in _get(live, b"/index.html")[2]  # re-checked at once, not in 1 s


def test_css_only_changes_swap_stylesheets_anything_else_reloads() -> None:
    assert json.loads(reload_message(("/b.css", "/a.css"))) == {"css": ["/a.css", "/b.css"]}
    assert json.loads(reload_message(("/a.css", "/index.html"))) == {"reload": True}
    assert json.loads(reload_message(())) == {"reload": True}
