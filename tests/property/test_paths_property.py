"""Hypothesis: whatever the target, the resolved file is inside the root (DESIGN §3)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lanthorn.config import SiteConfig
from lanthorn.core.paths import PathRejected, safe_path
from lanthorn.core.request import Request
from lanthorn.core.respond import Site

SEGMENTS = st.sampled_from(
    [
        "..",
        ".",
        "",
        "a",
        "sub",
        "%2e%2e",
        "%2E.",
        ".%2e",
        "%2f",
        "%5c",
        "\\",
        "%00",
        "secret.txt",
        "..%2f",
        "%252e%252e",
        "link",
        "file.txt",
        "%c0%ae%c0%ae",
        "~",
        "a b",
    ]
)
TARGETS = st.lists(SEGMENTS, max_size=8).map(lambda parts: "/" + "/".join(parts))
RAW = st.binary(max_size=40).map(lambda b: b"/" + b)


@given(TARGETS)
def test_safe_path_never_climbs(target: str) -> None:
    try:
        path = safe_path(target.encode())
    except PathRejected as exc:
        assert exc.status in (400, 403, 404)
        return
    assert ".." not in path.parts and "" not in path.parts
    assert all("/" not in p and "\x00" not in p and "\\" not in p for p in path.parts)
    joined = os.path.normpath(os.path.join("/root", path.relative))
    assert joined == "/root" or joined.startswith("/root/")


@given(RAW)
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    with contextlib.suppress(PathRejected):
        safe_path(raw)


def _site(tmp: Path) -> tuple[Site, Path]:
    root = tmp / "root"
    if not root.exists():
        root.mkdir()
        (root / "sub").mkdir()
        (root / "file.txt").write_bytes(b"inside")
        (root / "sub" / "file.txt").write_bytes(b"inside-sub")
        (tmp / "secret.txt").write_bytes(b"OUTSIDE")
        (root / "link").symlink_to(tmp)
    return Site(SiteConfig(root=str(root))), root


@settings(max_examples=300, deadline=None)
@given(TARGETS)
def test_resolver_never_serves_outside(tmp_path_factory: object, target: str) -> None:
    import tempfile

    tmp = Path(tempfile.gettempdir()) / "lanthorn-prop"
    tmp.mkdir(exist_ok=True)
    site, _ = _site(tmp)
    plan = site.respond(Request(b"GET", target.encode(), "1.1", {}), 0.0)
    plan.close()
    body = plan.body if isinstance(plan.body, bytes) else b""
    assert b"OUTSIDE" not in body
    assert plan.status in (200, 301, 400, 403, 404)
