"""Target → safe path (RFC 9112 §3.2, RFC 3986 §5.2.4): a table."""

from __future__ import annotations

import pytest

from lanthorn.core.paths import PathRejected, SafePath, safe_path, split_target


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"/", b"/", b""),
        (b"/a/b?x=1", b"/a/b", b"x=1"),
        (b"/a?", b"/a", b""),
        (b"/a#frag", b"/a", b""),
        (b"http://host/a?q", b"/a", b"q"),
        (b"HTTPS://host:8443/a/b", b"/a/b", b""),
        (b"http://host", b"/", b""),
    ],
)
def test_split_target_origin_and_absolute_form(target: bytes, path: bytes, query: bytes) -> None:
    """RFC 9112 §3.2.1 origin-form, §3.2.2 absolute-form."""
    assert split_target(target) == (path, query)


@pytest.mark.parametrize("target", [b"*", b"a/b", b"ftp://host/x", b"", b"host/x"])
def test_split_target_rejects_other_forms(target: bytes) -> None:
    with pytest.raises(PathRejected) as info:
        split_target(target)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("raw", "parts", "directory"),
    [
        (b"/", (), True),
        (b"/index.html", ("index.html",), False),
        (b"/a/b/", ("a", "b"), True),
        (b"/a//b", ("a", "b"), False),
        (b"/a/./b", ("a", "b"), False),
        (b"/a/../b", ("b",), False),
        (b"/a/..", (), True),
        (b"/a/.", ("a",), True),
        (b"/with%20space.txt", ("with space.txt",), False),
        (b"/%D1%84.txt", ("ф.txt",), False),
        (b"/text..txt", ("text..txt",), False),
        (b"/a%2fb", ("a", "b"), False),  # decoded once, then split
        (b"/.well-known/x", (".well-known", "x"), False),
        (b"/%ff", ("\udcff",), False),  # undecodable bytes survive, never crash
        (b"/%2525", ("%25",), False),  # decoded exactly once
    ],
)
def test_safe_path_normalises(raw: bytes, parts: tuple[str, ...], directory: bool) -> None:
    assert safe_path(raw) == SafePath(parts, directory)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"/..", 403),
        (b"/../etc/passwd", 403),
        (b"/a/../../etc", 403),
        (b"/%2e%2e/etc", 403),
        (b"/%2E%2E%2Fetc", 403),
        (b"/..%2f..%2fetc", 403),
        (b"/a\\..\\b", 403),
        (b"/%5c", 403),
        (b"/a%00.html", 404),
        (b"/.git/config", 404),
        (b"/a/.env", 404),
        (b"/%2egit", 404),
        (b"/a%zz", 400),
        (b"/a%", 400),
        (b"/a%4", 400),
    ],
)
def test_safe_path_rejects(raw: bytes, status: int) -> None:
    with pytest.raises(PathRejected) as info:
        safe_path(raw)
    assert info.value.status == status


def test_dotfiles_can_be_allowed() -> None:
    assert safe_path(b"/.env", allow_dotfiles=True).parts == (".env",)
