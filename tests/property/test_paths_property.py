"""Hypothesis: whatever the target, the resolved file is inside the root (DESIGN §3)."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lanthorn.config import SiteConfig
from lanthorn.core.paths import PathRejected, safe_path
from lanthorn.core.request import Request
from lanthorn.core.respond import Site
from tests.plans import body_bytes

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
        "big-secret.bin",
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


SECRET = b"OUTSIDE-THE-ROOT"


@pytest.fixture(scope="module")
def prop_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """root/ inside tmp/, which holds a small secret (read into memory when served) and a
    large one (served as an open file); root/link points at tmp/."""
    tmp = tmp_path_factory.mktemp("prop")
    root = tmp / "root"
    root.mkdir()
    (root / "sub").mkdir()
    (root / "file.txt").write_bytes(b"inside")
    (root / "sub" / "file.txt").write_bytes(b"inside-sub")
    (tmp / "secret.txt").write_bytes(SECRET)
    (tmp / "big-secret.bin").write_bytes(SECRET * 10_000)  # past small_file_bytes
    (root / "link").symlink_to(tmp)
    site = Site(SiteConfig(root=str(root)))
    assert site.config.small_file_bytes < len(SECRET) * 10_000
    return site


@settings(max_examples=300, deadline=None)
@given(TARGETS)
@example("/link/secret.txt")
@example("/link/big-secret.bin")
@example("/../big-secret.bin")
@example("/sub/%2e%2e/%2e%2e/big-secret.bin")
def test_resolver_never_serves_outside(prop_site: Site, target: str) -> None:
    plan = prop_site.respond(Request(b"GET", target.encode(), "1.1", {}), 0.0)
    assert SECRET not in body_bytes(plan)  # file bodies are read too (and closed)
    assert plan.status in (200, 301, 400, 403, 404)
