"""decide(): table tests with a fake file source and a fake clock (DESIGN §5.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanthorn.config import SiteConfig
from lanthorn.core.request import Request
from lanthorn.core.respond import ALLOW, Site
from lanthorn.core.response import FileBody, ResponsePlan
from tests.unit.fakes import FakeSource

FILES: dict[str, bytes | None] = {
    "index.html": b"<p>home</p>",
    "a.css": b"body{}",
    "big.bin": b"x" * 100,
    "docs": None,
    "docs/index.html": b"docs",
    "empty": None,
    "photo.JPG": b"\xff\xd8",
    "link-out": b"never",
    ".hidden": b"dotfile",
    "docs/.env": b"SECRET=1",
}


def make_site(tmp_path: Path, **options: object) -> tuple[Site, FakeSource]:
    source = FakeSource(dict(FILES), outside={"link-out"})
    config = SiteConfig(root=str(tmp_path), small_file_bytes=64, **options)  # type: ignore[arg-type]
    return Site(config, source), source


def ask(site: Site, target: bytes, method: bytes = b"GET", now: float = 0.0) -> ResponsePlan:
    return site.respond(Request(method, target, "1.1", {b"host": b"t"}), now)


def header(plan: ResponsePlan, name: bytes) -> bytes | None:
    return dict(plan.headers).get(name)


@pytest.mark.parametrize(
    ("target", "status", "body"),
    [
        (b"/", 200, b"<p>home</p>"),
        (b"/index.html", 200, b"<p>home</p>"),
        (b"/a.css?v=3", 200, b"body{}"),
        (b"/docs/", 200, b"docs"),
        (b"/docs", 301, b""),
        (b"/empty/", 403, None),
        (b"/missing", 404, None),
        (b"/a.css/", 404, None),
        (b"/a.css/x", 404, None),
        (b"/link-out", 403, None),
        (b"/../x", 403, None),
        (b"/.hidden", 404, None),  # exists: hidden by default
        (b"/docs/.env", 404, None),
        (b"/%zz", 400, None),
        (b"*", 400, None),
    ],
)
def test_lookup_table(tmp_path: Path, target: bytes, status: int, body: bytes | None) -> None:
    site, _ = make_site(tmp_path)
    plan = ask(site, target)
    assert plan.status == status
    if body is not None:
        assert plan.body == body
    if status >= 400:
        assert header(plan, b"content-type") == b"text/html"


@pytest.mark.parametrize(
    ("target", "body"), [(b"/.hidden", b"dotfile"), (b"/docs/.env", b"SECRET=1")]
)
def test_dotfiles_served_when_allowed(tmp_path: Path, target: bytes, body: bytes) -> None:
    site, _ = make_site(tmp_path, allow_dotfiles=True)
    plan = ask(site, target)
    assert (plan.status, plan.body) == (200, body)


def test_200_headers(tmp_path: Path) -> None:
    """RFC 9110 §8.3 Content-Type, §8.6 Content-Length, §8.8.2 Last-Modified, §8.8.3 ETag."""
    site, _ = make_site(tmp_path)
    plan = ask(site, b"/a.css")
    assert header(plan, b"content-type") == b"text/css"
    assert header(plan, b"content-length") == b"6"
    assert header(plan, b"last-modified") == b"Sun, 06 Nov 1994 08:49:37 GMT"
    etag = header(plan, b"etag")
    assert etag is not None and etag.startswith(b'"') and etag.endswith(b'"')


def test_mime_is_case_insensitive(tmp_path: Path) -> None:
    site, _ = make_site(tmp_path)
    assert header(ask(site, b"/photo.JPG"), b"content-type") == b"image/jpeg"


def test_charset_only_when_configured(tmp_path: Path) -> None:
    site, _ = make_site(tmp_path, charset="utf-8")
    assert header(ask(site, b"/a.css"), b"content-type") == b"text/css; charset=utf-8"
    assert header(ask(site, b"/photo.JPG"), b"content-type") == b"image/jpeg"


def test_redirect_location_is_rebuilt_and_keeps_query(tmp_path: Path) -> None:
    """RFC 9110 §15.4.2; a `//host/..` target must not turn into an open redirect."""
    site, _ = make_site(tmp_path)
    assert header(ask(site, b"/docs?a=1"), b"location") == b"/docs/?a=1"
    assert header(ask(site, b"//evil.example/../docs"), b"location") == b"/docs/"
    assert header(ask(site, b"//docs"), b"location") == b"/docs/"


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"PATCH", b"CONNECT"])
def test_405_carries_allow(tmp_path: Path, method: bytes) -> None:
    """RFC 9110 §15.5.6: the origin server MUST generate Allow in a 405."""
    site, _ = make_site(tmp_path)
    plan = ask(site, b"/", method)
    assert plan.status == 405 and header(plan, b"allow") == ALLOW


def test_options_204_with_allow(tmp_path: Path) -> None:
    site, _ = make_site(tmp_path)
    plan = ask(site, b"*", b"OPTIONS")
    assert plan.status == 204 and header(plan, b"allow") == ALLOW
    assert header(plan, b"content-length") is None  # RFC 9110 §8.6: not on 204


def test_large_file_is_a_file_body_small_is_bytes(tmp_path: Path) -> None:
    site, _ = make_site(tmp_path)
    big = ask(site, b"/big.bin")
    assert isinstance(big.body, FileBody) and big.body.count == 100
    assert header(big, b"content-length") == b"100"
    big.close()
    assert isinstance(ask(site, b"/a.css").body, bytes)


def test_small_files_cached_and_revalidated(tmp_path: Path) -> None:
    """A hit is served without opening the file; after revalidate_s a changed file is
    noticed (fake clock)."""
    site, source = make_site(tmp_path)
    first = ask(site, b"/a.css", now=100.0)
    opened = len(source.opened)
    assert ask(site, b"/a.css", now=100.5) is first
    assert len(source.opened) == opened
    source.files["a.css"] = b"body{color:red}"
    assert ask(site, b"/a.css", now=100.9).body == b"body{}"  # still trusted
    fresh = ask(site, b"/a.css", now=101.5)
    assert fresh.body == b"body{color:red}"
    assert header(fresh, b"content-length") == b"15"


def test_cache_drops_deleted_files(tmp_path: Path) -> None:
    site, source = make_site(tmp_path)
    assert ask(site, b"/a.css", now=0).status == 200
    del source.files["a.css"]
    assert ask(site, b"/a.css", now=5).status == 404


def test_cache_is_bounded(tmp_path: Path) -> None:
    site, _ = make_site(tmp_path, cache_entries=2)
    for name in ("a.css", "index.html", "docs/index.html"):
        ask(site, b"/" + name.encode())
    assert len(site.cache) == 2


def test_query_targets_not_cached(tmp_path: Path) -> None:
    site, _ = make_site(tmp_path)
    ask(site, b"/a.css?v=1")
    assert len(site.cache) == 0


def test_real_files_and_symlinks(tmp_path: Path) -> None:
    """The OS file source: symlinks inside the root are followed, outside refused."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret").write_bytes(b"secret")
    (root / "f.txt").write_bytes(b"ok")
    (root / "in").symlink_to(root / "f.txt")
    (root / "out").symlink_to(tmp_path / "secret")
    (root / "loop").symlink_to(root / "loop")
    site = Site(SiteConfig(root=str(root)))
    assert ask(site, b"/in").body == b"ok"
    assert ask(site, b"/out").status == 403
    assert ask(site, b"/loop").status == 404  # ELOOP is not a server error
    assert ask(site, b"/" + b"a" * 300).status == 404  # ENAMETOOLONG neither
    followed = Site(SiteConfig(root=str(root), follow_symlinks_outside=True))
    assert ask(followed, b"/out").body == b"secret"
