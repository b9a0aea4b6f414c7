"""103 Early Hints: what a page's scan keeps (and refuses), its bounds, the configured
links, and that a file version is scanned once (core/hints, core/respond)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanthorn.config import SiteConfig
from lanthorn.core import hints
from lanthorn.core.hints import MAX_LINKS, SCAN_BYTES, scan
from lanthorn.core.request import Request
from lanthorn.core.respond import Site
from lanthorn.core.response import ResponsePlan
from tests.unit.fakes import FakeSource

STYLE = "</a.css>; rel=preload; as=style"


@pytest.mark.parametrize(
    ("markup", "links"),
    [
        ('<link rel=stylesheet href="/a.css">', [STYLE]),
        ("<LINK REL='Alternate Icon Stylesheet' HREF=/a.css>", []),  # an alternate
        ('<link rel="icon stylesheet" href="/a.css" media=" ALL ">', [STYLE]),
        ('<link rel=stylesheet href="/a.css" media=print>', []),
        ('<link rel=stylesheet href="/a.css" disabled>', []),
        ('<link rel=stylesheet href="/a.css" integrity="sha384-x">', []),
        ('<link rel=stylesheet href="/a.css" crossorigin>', [STYLE + "; crossorigin"]),
        (
            '<link rel=stylesheet href="/a.css" crossorigin=USE-credentials>',
            [STYLE + "; crossorigin=use-credentials"],
        ),
        ('<script src="js/app.js" defer></script>', ["<js/app.js>; rel=preload; as=script"]),
        ('<script src="/a.js" type="text/javascript">', ["</a.js>; rel=preload; as=script"]),
        ('<script type=module src="/m.js"></script>', ["</m.js>; rel=modulepreload"]),
        ('<script src="/a.js" nomodule></script>', []),
        ('<script src="/d.json" type="application/json"></script>', []),
        ('<script src="/a.js" type="text/javascript; charset=utf-8"></script>', []),
        ('<link rel=modulepreload href="./m.js">', ["<./m.js>; rel=modulepreload"]),
        (
            '<link rel=preload href="/f.woff2" as=font type="font/woff2" crossorigin>',
            ['</f.woff2>; rel=preload; as=font; type="font/woff2"; crossorigin'],
        ),
        ('<link rel=preload href="/f.woff2" as=font type="font/woff2; x">', []),
        ('<link rel=preload href="/i.png" as=image media="(min-width: 1px)">', []),
        ('<link rel=preload href="/i.png" as=image imagesrcset="i2.png 2x">', []),
        ('<link rel=preload href="/v.mp4" as=video>', []),
        ("<link rel=preload href=/x.css>", []),  # no `as`
        ('<link rel=stylesheet href="/a.css" href="/b.css">', [STYLE]),  # the first counts
        ('<link rel=stylesheet href="/a.css"><script src="/a.css"></script>', [STYLE]),
        ('<link rel=stylesheet href="q.css?a=1&amp;b=%20">', ["<q.css?a=1&b=%20>" + STYLE[8:]]),
        ('<link rel=stylesheet href=" \t/a.css\n">', [STYLE]),  # HTML strips the ends
    ],
)
def test_what_a_page_asks_for(markup: str, links: list[str]) -> None:
    assert scan(markup.encode()) == links


@pytest.mark.parametrize(
    "markup",
    [
        '<noscript><link rel=stylesheet href="/no.css"></noscript>',
        '<template><template></template><script src="/t.js"></script></template>',
        '<title><link rel=stylesheet href="/t.css"></title>',
        '<textarea><script src="/t.js"></script></textarea>',
        "<!-- <link rel=stylesheet href=/c.css> -->",
        "<script>document.write('<script src=/w.js></' + 'script>')</script>",
        '<style>@import "/i.css"; /* <link rel=stylesheet href=/s.css> */</style>',
    ],
)
def test_what_the_browser_does_not_fetch_is_not_hinted(markup: str) -> None:
    """... and the scan goes on after it."""
    after = b"<script src=/after.js></script>"
    assert scan(markup.encode() + after) == ["</after.js>; rel=preload; as=script"]


def test_a_tag_cut_by_the_end_of_the_scanned_bytes_is_not_read() -> None:
    assert scan(b'<script src="/a.js"></script><link rel=stylesheet href="/b.css') == [
        "</a.js>; rel=preload; as=script"
    ]


@pytest.mark.parametrize(
    "href",
    [
        "https://cdn.example/a.css",
        "HTTP://cdn.example/a.css",
        "//cdn.example/a.css",
        "/\\cdn.example/a.css",  # browsers read \ as /
        "\\\\cdn.example/a.css",
        "javascript:alert(1)",
        "data:text/css,x",
        "a:b.css",  # a scheme, to a browser
        "#top",
        "",
    ],
)
def test_only_the_pages_own_origin(href: str) -> None:
    assert scan(f'<link rel=stylesheet href="{href}">'.encode()) == []


@pytest.mark.parametrize(
    "href",
    [
        "/a.css&#13;&#10;set-cookie: x=1",
        "/a&#10;.css",
        "/a>.css",
        "/a<b.css",
        "/a&quot;b.css",
        "/a b.css",
        "/a\tb.css",
        "/caf\u00e9.css",
        "/a\x7f.css",
        "/a\x00.css",
        "/a&#0;.css",
        "/a{b}.css",
    ],
)
def test_nothing_can_leave_the_brackets_or_the_field(href: str) -> None:
    assert scan(f'<link rel=stylesheet href="{href}">'.encode()) == []


# Every Link value the scan can make: a reference of URI characters, then parameters of
# tokens (and one quoted MIME type) only.
_SAFE = re.compile(
    r"<[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+>"
    r'(; [a-z]+(=[a-z0-9\-]+|="[a-z0-9!#$&^_.+\-]+/[a-z0-9!#$&^_.+\-]+")?)+'
)


@given(st.binary(max_size=300), st.sampled_from(["href", "src", "as", "type", "rel"]))
def test_whatever_the_bytes_every_value_is_safe(noise: bytes, attribute: str) -> None:
    value = noise.replace(b'"', b"")
    noisy = attribute.encode() + b'="' + value + b'"'  # first: it wins over a repeat
    page = (
        b"<link " + noisy + b' rel="stylesheet preload modulepreload" as=font href="/x.css">'
        b"<script " + noisy + b' src="/x.js"></script>' + noise
    )
    for link in scan(page):
        assert _SAFE.fullmatch(link), link


def test_at_most_max_links_and_nothing_with_a_base() -> None:
    many = b"".join(b'<script src="/s%d.js"></script>' % i for i in range(40))
    assert len(scan(many)) == MAX_LINKS
    assert scan(b'<link rel=stylesheet href="/a.css"><base href="/x/">') == []
    assert scan(b'<base target=_blank><link rel=stylesheet href="/a.css">') == [STYLE]


def test_a_malformed_declaration_keeps_what_came_before() -> None:
    # Python 3.11's tokenizer raises AssertionError on `<![foo[`.
    assert scan(b'<link rel=stylesheet href="/a.css"><![foo[ x ]]><script src=/b.js>') == [STYLE]


# --- per file version, with the site ------------------------------------------------------

PAGE = b'<!doctype html><link rel=stylesheet href="/a.css"><script src="/b.js"></script>'
LINKS = ((b"link", STYLE.encode()), (b"link", b"</b.js>; rel=preload; as=script"))


def _site(tmp_path: Path, files: dict[str, bytes | None], **options: object) -> Site:
    config = SiteConfig(root=str(tmp_path), **{"small_file_bytes": 256, **options})  # type: ignore[arg-type]
    return Site(config, FakeSource(files))


def _get(site: Site, target: bytes, now: float = 0.0, **headers: bytes) -> ResponsePlan:
    fields = {b"host": b"t", **{k.replace("_", "-").encode(): v for k, v in headers.items()}}
    return site.respond(Request(b"GET", target, "2.0", fields), now)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    scanned: list[bytes] = []

    def counted(head: bytes) -> list[str]:
        scanned.append(head)
        return real(head)

    real = hints.scan
    monkeypatch.setattr(hints, "scan", counted)
    return scanned


@pytest.mark.parametrize("size", [len(PAGE), 10_000], ids=["cached-plan", "large"])
def test_a_file_version_is_scanned_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Once per version, whether the plan is cached (small) or not (large, or a
    conditional request); an edit is a new version. The body is whole all the same."""
    page = PAGE.ljust(size, b" ")
    scanned = _counting(monkeypatch)
    source = FakeSource({"index.html": page})
    site = Site(SiteConfig(root=str(tmp_path), small_file_bytes=256, revalidate_s=0), source)
    for now in (0.0, 1.0, 2.0):
        plan = _get(site, b"/", now)
        assert (plan.status, plan.hints, plan.body_length) == (200, LINKS, size)
    assert _get(site, b"/index.html", 3.0, if_none_match=b"*").status == 304
    assert len(scanned) == 1 and scanned[0] == page[:SCAN_BYTES]
    source.files["index.html"] = b"<script src=/c.js></script>".ljust(size, b" ")
    source.mtime += 1
    assert _get(site, b"/", 4.0).hints == ((b"link", b"</c.js>; rel=preload; as=script"),)
    assert len(scanned) == 2


def test_only_the_first_scan_bytes_are_read(tmp_path: Path) -> None:
    late = b"x" * SCAN_BYTES + b'<script src="/late.js"></script>'
    site = _site(tmp_path, {"late.html": PAGE + late})
    plan = _get(site, b"/late.html")
    assert plan.hints == LINKS and plan.body_length == len(PAGE + late)


@pytest.mark.parametrize(
    "options",
    [{}, {"compress": True}, {"live_reload": True}],
    ids=["identity", "compressed", "live-reload"],
)
def test_the_body_is_read_from_the_start_after_the_scan(
    tmp_path: Path, options: dict[str, object]
) -> None:
    page = PAGE + b"<p>" + b"words " * 100
    site = _site(tmp_path, {"index.html": page}, small_file_bytes=4096, **options)
    plan = _get(site, b"/", accept_encoding=b"gzip")
    assert plan.hints == LINKS
    body = plan.body
    assert isinstance(body, bytes)
    whole = gzip.decompress(body) if options.get("compress") else body
    assert whole.startswith(page)


def test_only_html_pages_answered_whole_have_hints(tmp_path: Path) -> None:
    site = _site(tmp_path, {"index.html": PAGE, "page.txt": PAGE, "a.css": b"x"})
    assert _get(site, b"/page.txt").hints == ()
    assert _get(site, b"/a.css").hints == ()
    assert _get(site, b"/", range=b"bytes=0-1").hints == ()
    assert _get(site, b"/", if_none_match=b"*").hints == ()
    assert _get(site, b"/missing").hints == ()
    assert _get(_site(tmp_path, {"index.html": PAGE}, early_hints=False), b"/").hints == ()


def test_configured_links_come_first_for_the_pages_they_match(tmp_path: Path) -> None:
    font = "</f.woff2>; rel=preload; as=font; crossorigin"
    rules = (
        f"/index.html={font}",
        "docs/*.html=<https://cdn.example>; rel=preconnect",
        f"*.html={STYLE}",  # also found by the scan: sent once
    )
    files: dict[str, bytes | None] = {"index.html": PAGE, "docs": None, "docs/a.html": b"<p>"}
    site = _site(tmp_path, files, hint_links=rules)
    assert _get(site, b"/").hints == ((b"link", font.encode()), *LINKS)
    assert [v for _, v in _get(site, b"/docs/a.html").hints] == [
        b"<https://cdn.example>; rel=preconnect",
        STYLE.encode(),
    ]
