"""Site-level HTTP semantics over a real temporary root: validators, preconditions,
ranges, codings, caching policy, listings and fallback pages (RFC 9110/9111)."""

from __future__ import annotations

import gzip
import json
import os
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import brotli
import pytest
import zstandard

from lanthorn.config import SiteConfig
from lanthorn.core.request import Request
from lanthorn.core.respond import Site
from lanthorn.core.response import FileBody, ResponsePlan
from tests.plans import body_bytes as body

TEXT = b"".join(b"line %04d of a stylesheet with some repetition\n" % i for i in range(200))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_bytes(b"<p>home</p>")
    (tmp_path / "style.css").write_bytes(TEXT)
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 400)  # 102400 B: a FileBody
    (tmp_path / "img.png").write_bytes(b"\x89PNG" + b"\0" * 500)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_bytes(b"a")
    return tmp_path


def site(root: Path, **options: object) -> Site:
    return Site(SiteConfig(root=str(root), **options))  # type: ignore[arg-type]


def ask(s: Site, target: str, method: bytes = b"GET", **headers: str) -> ResponsePlan:
    fields = {k.replace("_", "-").encode(): v.encode() for k, v in headers.items()}
    return s.respond(Request(method, target.encode(), "1.1", fields), 0.0)


def status(plan: ResponsePlan) -> int:
    plan.close()
    return plan.status


def h(plan: ResponsePlan, name: str) -> str | None:
    value = dict(plan.headers).get(name.encode())
    return None if value is None else value.decode("latin-1")


# --- validators and preconditions (§8.8, §13) ------------------------------------------


def test_304_carries_validators_and_caching_fields(root: Path) -> None:
    """§15.4.5: a 304 has ETag, Last-Modified, Cache-Control and Vary, and no content."""
    s = site(root)
    first = ask(s, "/index.html")
    tag = h(first, "etag")
    assert tag is not None and tag.startswith('"')
    again = ask(s, "/index.html", if_none_match=tag)
    assert again.status == 304 and again.body == b""
    assert h(again, "etag") == tag and h(again, "last-modified") == h(first, "last-modified")
    assert h(again, "cache-control") == "no-cache"
    assert h(again, "content-length") is None and h(again, "content-type") is None
    ims = ask(s, "/index.html", if_modified_since=h(first, "last-modified") or "")
    assert ims.status == 304


def test_412_on_if_match_mismatch(root: Path) -> None:
    assert ask(site(root), "/style.css", if_match='"nope"').status == 412
    s = site(root)
    tag = h(ask(s, "/style.css"), "etag") or ""
    assert ask(s, "/style.css", if_match=tag).status == 200


def test_etag_changes_with_content(root: Path) -> None:
    s = site(root)
    before = h(ask(s, "/docs/a.txt", range="bytes=0-0"), "etag")
    (root / "docs" / "a.txt").write_bytes(b"changed")
    after = h(ask(s, "/docs/a.txt", range="bytes=0-0"), "etag")
    assert before != after


# --- ranges (§14) -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["style.css", "big.bin"])  # in memory and by descriptor
def test_single_range(root: Path, name: str) -> None:
    data = (root / name).read_bytes()
    plan = ask(site(root), f"/{name}", range="bytes=100-199")
    assert plan.status == 206
    assert h(plan, "content-range") == f"bytes 100-199/{len(data)}"
    assert h(plan, "content-length") == "100"
    assert body(plan) == data[100:200]


@pytest.mark.parametrize("name", ["style.css", "big.bin"])
def test_multipart_byteranges(root: Path, name: str) -> None:
    """§14.6: multipart/byteranges with a Content-Range per part and exact length."""
    data = (root / name).read_bytes()
    plan = ask(site(root), f"/{name}", range="bytes=0-9,-10,5000-5099")
    assert plan.status == 206
    ctype = h(plan, "content-type") or ""
    assert ctype.startswith("multipart/byteranges; boundary=")
    raw = body(plan)
    assert int(h(plan, "content-length") or 0) == len(raw)
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
    )
    parts = list(message.iter_parts())
    assert [p["Content-Range"] for p in parts] == [
        f"bytes 0-9/{len(data)}",
        f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}",
        f"bytes 5000-5099/{len(data)}",
    ]
    assert [p.get_payload(decode=True) for p in parts] == [
        data[:10],
        data[-10:],
        data[5000:5100],
    ]


def test_unsatisfiable_416(root: Path) -> None:
    plan = ask(site(root), "/style.css", range=f"bytes={len(TEXT)}-")
    assert plan.status == 416
    assert h(plan, "content-range") == f"bytes */{len(TEXT)}"


def test_other_unit_or_bad_syntax_gives_200(root: Path) -> None:
    assert ask(site(root), "/style.css", range="items=0-5").status == 200
    assert ask(site(root), "/style.css", range="bytes=9-1").status == 200


def test_if_range(root: Path) -> None:
    """§13.1.5: a matching strong ETag or exact date gets the range; otherwise 200."""
    s = site(root)
    full = ask(s, "/big.bin")
    body(full)
    tag, date = h(full, "etag") or "", h(full, "last-modified") or ""
    assert status(ask(s, "/big.bin", range="bytes=0-0", if_range=tag)) == 206
    assert status(ask(s, "/big.bin", range="bytes=0-0", if_range=date)) == 206
    stale = ask(s, "/big.bin", range="bytes=0-0", if_range='"old"')
    assert stale.status == 200 and len(body(stale)) == 102400
    assert status(ask(s, "/big.bin", range="bytes=0-0", if_range="W/" + tag)) == 200


def test_if_range_date_of_a_file_changed_this_second_is_weak(root: Path) -> None:
    """§13.1.5 with §8.8.2.2: the date is honoured only once its second has passed."""
    s = site(root)
    os.utime(root / "big.bin", (1_700_000_000.2, 1_700_000_000.2))
    head = ask(s, "/big.bin", method=b"HEAD")
    head.close()
    headers = {b"range": b"bytes=0-0", b"if-range": (h(head, "last-modified") or "").encode()}
    fresh = Request(b"GET", b"/big.bin", "1.1", dict(headers))
    fresh.wall = 1_700_000_000.7  # the same second: it could change again unseen
    settled = Request(b"GET", b"/big.bin", "1.1", dict(headers))
    settled.wall = 1_700_000_001.0
    for request, expected in ((fresh, 200), (settled, 206)):
        plan = s.respond(request, 0.0)
        plan.close()
        assert plan.status == expected


def test_head_with_range_is_get_without_body(root: Path) -> None:
    plan = ask(site(root), "/big.bin", b"HEAD", range="bytes=0-9")
    assert plan.status == 206 and h(plan, "content-length") == "10"
    plan.close()


# --- content codings (§8.4, §12.5.3) ------------------------------------------------------


def _sidecars(root: Path) -> None:
    (root / "style.css.gz").write_bytes(gzip.compress(TEXT))
    (root / "style.css.br").write_bytes(brotli.compress(TEXT))


def test_precompressed_sidecar_served_when_accepted(root: Path) -> None:
    _sidecars(root)
    s = site(root)
    plain = ask(s, "/style.css")
    br = ask(s, "/style.css", accept_encoding="gzip, br")
    gz = ask(s, "/style.css", accept_encoding="gzip")
    assert h(plain, "content-encoding") is None and body(plain) == TEXT
    assert h(br, "content-encoding") == "br" and brotli.decompress(body(br)) == TEXT
    assert h(gz, "content-encoding") == "gzip" and gzip.decompress(body(gz)) == TEXT
    assert h(br, "content-type") == "text/css"
    for plan in (plain, br, gz):
        assert h(plan, "vary") == "Accept-Encoding"
    assert len({h(plain, "etag"), h(br, "etag"), h(gz, "etag")}) == 3  # one per coding


def test_ranges_apply_to_the_chosen_representation(root: Path) -> None:
    _sidecars(root)
    compressed = (root / "style.css.gz").read_bytes()
    plan = ask(site(root), "/style.css", accept_encoding="gzip", range="bytes=0-9")
    assert plan.status == 206 and body(plan) == compressed[:10]
    assert h(plan, "content-range") == f"bytes 0-9/{len(compressed)}"


def test_stale_sidecar_ignored(root: Path) -> None:
    _sidecars(root)
    os.utime(root / "style.css.br", (1, 1))  # older than the original
    plan = ask(site(root), "/style.css", accept_encoding="br")
    assert h(plan, "content-encoding") is None and body(plan) == TEXT


def test_sidecar_symlink_outside_root_ignored(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("out") / "evil.gz"
    outside.write_bytes(gzip.compress(b"SECRET OUTSIDE"))
    os.symlink(outside, root / "style.css.gz")
    plan = ask(site(root), "/style.css", accept_encoding="gzip")
    assert h(plan, "content-encoding") is None and body(plan) == TEXT


def test_no_precompressed_option(root: Path) -> None:
    _sidecars(root)
    plan = ask(site(root, precompressed=False), "/style.css", accept_encoding="br")
    assert h(plan, "content-encoding") is None and h(plan, "vary") is None


def test_nothing_acceptable_406(root: Path) -> None:
    assert ask(site(root), "/style.css", accept_encoding="identity;q=0").status == 406


@pytest.mark.parametrize(
    ("coding", "decode"),
    [
        ("gzip", gzip.decompress),
        ("br", brotli.decompress),
        ("zstd", lambda d: zstandard.ZstdDecompressor().decompress(d, max_output_size=1 << 20)),
    ],
)
def test_on_the_fly_compression(root: Path, coding: str, decode: object) -> None:
    s = site(root, compress=True)
    plan = ask(s, "/style.css", accept_encoding=coding)
    assert h(plan, "content-encoding") == coding and h(plan, "vary") == "Accept-Encoding"
    assert decode(body(plan)) == TEXT  # type: ignore[operator]
    assert int(h(plan, "content-length") or 0) < len(TEXT)


def test_on_the_fly_codings_have_their_own_etags(root: Path) -> None:
    """§8.8.3: each content coding is a different representation, so a validator for one
    must not match another (a cache would otherwise mix gzip and plain bytes)."""
    s = site(root, compress=True, precompressed=False)
    tags = {
        coding: h(ask(s, "/style.css", accept_encoding=coding), "etag")
        for coding in ("identity", "gzip", "br", "zstd")
    }
    assert None not in tags.values() and len(set(tags.values())) == 4, tags
    gz = tags["gzip"] or ""
    assert ask(s, "/style.css", accept_encoding="gzip", if_none_match=gz).status == 304
    assert status(ask(s, "/style.css", accept_encoding="identity", if_none_match=gz)) == 200
    assert status(ask(s, "/style.css", accept_encoding="br", if_none_match=gz)) == 200


def test_compression_skips_binary_and_tiny(root: Path) -> None:
    (root / "tiny.css").write_bytes(b"a{}")
    s = site(root, compress=True)
    assert h(ask(s, "/img.png", accept_encoding="gzip"), "content-encoding") is None
    assert h(ask(s, "/tiny.css", accept_encoding="gzip"), "content-encoding") is None


# --- caching policy and headers -------------------------------------------------------------


def test_cache_control_rules(root: Path) -> None:
    s = site(root, cache_control=("*.css=max-age=31536000, immutable", "*.html=no-cache"))
    assert h(ask(s, "/style.css"), "cache-control") == "max-age=31536000, immutable"
    assert h(ask(s, "/"), "cache-control") == "no-cache"
    assert h(ask(s, "/img.png"), "cache-control") is None
    shorthand = site(root, cache_control=(".png=max-age=60",))
    assert h(ask(shorthand, "/img.png"), "cache-control") == "max-age=60"


def test_nosniff_and_extra_headers_on_every_response(root: Path) -> None:
    s = site(root, headers=("X-Frame-Options: DENY", "Referrer-Policy: no-referrer"))
    for plan in (ask(s, "/"), ask(s, "/missing"), ask(s, "/", b"POST"), ask(s, "*", b"OPTIONS")):
        assert h(plan, "x-content-type-options") == "nosniff"
        assert h(plan, "x-frame-options") == "DENY"
        assert h(plan, "referrer-policy") == "no-referrer"
    assert h(ask(site(root, nosniff=False), "/"), "x-content-type-options") is None


# --- listings, error pages, SPA ---------------------------------------------------------


def test_autoindex_html_escapes_and_hides(root: Path) -> None:
    (root / "list").mkdir()
    (root / "list" / "<img src=x onerror=alert(1)>.txt").write_bytes(b"x")
    (root / "list" / ".hidden").write_bytes(b"x")
    (root / "list" / "b.txt").write_bytes(b"bb")
    (root / "list" / "sub").mkdir()
    assert ask(site(root), "/list/").status == 403  # off by default
    plan = ask(site(root, autoindex=True), "/list/")
    page = body(plan).decode()
    assert plan.status == 200 and h(plan, "content-type") == "text/html; charset=utf-8"
    assert "<img" not in page and "&lt;img src=x" in page
    assert ".hidden" not in page
    assert page.index("sub/") < page.index("&lt;img") < page.index("b.txt")  # dirs first


def test_autoindex_json(root: Path) -> None:
    (root / "list").mkdir()
    (root / "list" / "b.txt").write_bytes(b"bb")
    (root / "list" / "a").mkdir()
    plan = ask(site(root, autoindex=True), "/list/", accept="application/json")
    assert h(plan, "content-type") == "application/json" and h(plan, "vary") == "Accept"
    items = json.loads(body(plan))
    assert [(i["name"], i["type"], i["size"]) for i in items] == [
        ("a/", "directory", None),
        ("b.txt", "file", 2),
    ]
    browser = ask(site(root, autoindex=True), "/list/", accept="text/html,application/json;q=0.9")
    assert (
        h(
            browser,
            "content-type",
        )
        == "text/html; charset=utf-8"
    )


def test_custom_error_page(root: Path) -> None:
    (root / "404.html").write_bytes(b"<h1>lost</h1>")
    plan = ask(site(root, error_pages=("404=/404.html",)), "/missing")
    assert plan.status == 404 and body(plan) == b"<h1>lost</h1>"
    assert h(plan, "content-type") == "text/html"
    broken = ask(site(root, error_pages=("404=/nope.html",)), "/missing")
    assert broken.status == 404 and b"404 Not Found" in body(broken)


def test_spa_fallback(root: Path) -> None:
    s = site(root, spa=True)
    route = ask(s, "/app/settings/profile")
    assert route.status == 200 and body(route) == b"<p>home</p>"
    assert ask(s, "/missing.js").status == 404  # assets with an extension still 404
    assert ask(site(root), "/app/settings").status == 404  # off by default


def test_multipart_parts_share_one_descriptor(root: Path) -> None:
    plan = ask(site(root), "/big.bin", range="bytes=0-9,5000-5009,-10")
    assert isinstance(plan.body, tuple)
    files = [c for c in plan.body if isinstance(c, FileBody)]
    assert len(files) == 3 and len({id(f.file) for f in files}) == 1
    files[0].close()
    files[0].close()  # twice is harmless
    assert not files[0].file.closed  # the others still need it
    plan.close()
    assert files[0].file.closed


def test_large_error_page_is_sent_whole(root: Path) -> None:
    (root / "404.html").write_bytes(b"x" * 200_000)
    plan = ask(site(root, error_pages=("404=/404.html",)), "/missing")
    assert plan.status == 404 and h(plan, "content-length") == "200000"
    assert len(body(plan)) == 200_000


def test_autoindex_undecodable_names(root: Path) -> None:
    """A name that is not UTF-8 is shown with U+FFFD and linked by its exact bytes."""
    (root / "list").mkdir()
    os.close(os.open(os.path.join(os.fsencode(root / "list"), b"caf\xe9.txt"), os.O_CREAT))
    s = site(root, autoindex=True)
    page = body(ask(s, "/list/")).decode("utf-8")  # valid UTF-8
    assert 'href="caf%E9.txt"' in page and "caf\ufffd.txt" in page
    (item,) = json.loads(body(ask(s, "/list/", accept="application/json")))
    assert item["name"] == "caf\ufffd.txt" and item["href"] == "caf%E9.txt"
    assert ask(s, "/list/caf%E9.txt").status == 200  # and the link works
