"""The path resolver: request targets → safe paths → files, on a real directory tree with
a symlink out of the root, a dotfile and a secret beside the root.

Input: a byte of options (dotfiles allowed, HEAD, the site's configuration), a byte N and
N request header fields (a chosen name, a value), then the request target.

Invariants: split_target and safe_path raise only PathRejected with 400, 403 or 404;
safe paths have no empty, `.`, `..` segment, no `/`, NUL or backslash, no hidden segment
unless allowed, stay under the root when joined, and are a fixed point (re-encoding and
resolving them again gives the same path); Site.respond returns a known status, a
Content-Length equal to the body, never a byte from outside the root, files opened only
under the root, and every file closed once the plan is closed; a 301 goes to a
path-absolute Location.
"""

from __future__ import annotations

import os
import posixpath
from urllib.parse import quote

from lanthorn.config import SiteConfig
from lanthorn.core.paths import PathRejected, safe_path, split_target
from lanthorn.core.request import Request
from lanthorn.core.respond import Site
from lanthorn.core.response import REASONS, FileBody, ResponsePlan
from tests.fuzz.source import Source
from tests.fuzz.targets import scratch

SECRET = b"SECRET-OUTSIDE-THE-ROOT"
_BASE = scratch("paths")
ROOT = _BASE / "root"
(ROOT / "sub" / "deeper").mkdir(parents=True)
(ROOT / "index.html").write_bytes(b"<p>index</p>")
(ROOT / "a.txt").write_bytes(b"0123456789" * 30)
(ROOT / "a.txt.gz").write_bytes(b"gzipped")
(ROOT / "sub" / "b.css").write_bytes(b"body{}" * 400)
(ROOT / "sub" / "deeper" / "c").write_bytes(b"c")
(ROOT / ".hidden").write_bytes(b"dotfile")
(ROOT / ".well-known").mkdir()
(ROOT / ".well-known" / "x").write_bytes(b"well known")
(ROOT / "sp ace %41.txt").write_bytes(b"odd name")
(_BASE / "secret.txt").write_bytes(SECRET)
(ROOT / "out").symlink_to(_BASE)  # a directory link out of the root
(ROOT / "out.txt").symlink_to(_BASE / "secret.txt")
(ROOT / "in.txt").symlink_to(ROOT / "a.txt")
os.mkfifo(ROOT / "fifo")

SITES = [
    Site(SiteConfig(root=str(ROOT), small_file_bytes=64)),
    Site(SiteConfig(root=str(ROOT), allow_dotfiles=True, autoindex=True, compress=True)),
    Site(SiteConfig(root=str(ROOT), spa=True, precompressed=False, error_pages=("404=/a.txt",))),
]
HEADER_NAMES = (
    b"range", b"if-range", b"if-none-match", b"if-modified-since", b"if-match",
    b"if-unmodified-since", b"accept-encoding", b"accept",
)  # fmt: skip
STATUSES = frozenset(REASONS)
_REAL_ROOT = os.path.realpath(ROOT)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def check_safe_path(raw_path: bytes, allow_dotfiles: bool) -> None:
    try:
        path = safe_path(raw_path, allow_dotfiles=allow_dotfiles)
    except PathRejected as exc:
        assert exc.status in (400, 403, 404), exc.status
        return
    for part in path.parts:
        assert part not in ("", ".", ".."), path
        assert "/" not in part and "\0" not in part and "\\" not in part, path
        assert allow_dotfiles or not part.startswith(".") or part == ".well-known", path
    joined = posixpath.normpath(posixpath.join("/root", path.relative))
    assert joined == "/root" or joined.startswith("/root/"), path
    encoded = "".join("/" + quote(p, safe="", errors="surrogateescape") for p in path.parts)
    again = safe_path(
        (encoded + ("/" if path.directory else "")).encode("ascii"), allow_dotfiles=True
    )
    assert again.parts == path.parts, (path, again)
    assert again.directory == path.directory or not path.parts, (path, again)


def _chunks(plan: ResponsePlan) -> list[bytes | FileBody]:
    body = plan.body
    return list(body) if isinstance(body, tuple) else [body]


def check_plan(plan: ResponsePlan) -> None:
    assert plan.status in STATUSES, plan.status
    headers = dict(plan.headers)
    assert all(name == name.lower() for name in headers)
    if b"content-length" in headers:
        assert int(headers[b"content-length"]) == plan.body_length, headers
    if plan.status == 301:
        location = headers[b"location"]
        assert location.startswith(b"/") and not location.startswith(b"//"), location
    for chunk in _chunks(plan):
        if isinstance(chunk, FileBody):
            real = os.readlink(f"/proc/self/fd/{chunk.fileno()}")
            assert real.startswith(_REAL_ROOT + "/"), real
            data = os.pread(chunk.fileno(), chunk.count, chunk.offset)
            assert len(data) == chunk.count, (chunk.offset, chunk.count)
        else:
            data = chunk
        assert SECRET not in data, "a byte from outside the root was served"


def fuzz(data: bytes) -> None:
    source = Source(data)
    options = source.byte()
    headers = {}
    for _ in range(source.byte() % 4):
        headers[source.pick(HEADER_NAMES)] = source.sized()
    target = source.rest()
    try:
        raw_path, _ = split_target(target)
    except PathRejected as exc:
        assert exc.status == 400
    else:
        assert raw_path.startswith(b"/"), raw_path
        check_safe_path(raw_path, bool(options & 1))
    site = SITES[(options >> 2) % len(SITES)]
    before = _open_fds()
    method = b"HEAD" if options & 2 else b"GET"
    plan = site.respond(Request(method, target, "1.1", headers), 0.0)
    try:
        check_plan(plan)
    finally:
        plan.close()
    assert _open_fds() == before, "a file was left open"
