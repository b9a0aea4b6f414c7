"""Content-Type exactly as nginx's default mime.types gives it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanthorn.core.mime import EXTRA_TYPES, NGINX_TYPES, content_type

NGINX_MIME = Path("/etc/nginx/mime.types")


def _nginx_table() -> dict[str, str]:
    text = NGINX_MIME.read_text()
    body = text[text.index("{") + 1 : text.rindex("}")]
    table: dict[str, str] = {}
    for statement in body.split(";"):
        words = statement.split()
        if words and not words[0].startswith("#"):
            for ext in words[1:]:
                table[ext] = words[0]
    return table


def test_table_matches_installed_nginx() -> None:
    """`make test` installs nginx-light, so this compares against the real file."""
    assert _nginx_table() == NGINX_TYPES


def test_extras_do_not_override_nginx() -> None:
    assert not set(EXTRA_TYPES) & set(NGINX_TYPES)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", b"text/html"),
        ("a.HTM", b"text/html"),
        ("s.css", b"text/css"),
        ("app.js", b"application/javascript"),
        ("p.jpg", b"image/jpeg"),
        ("p.jpeg", b"image/jpeg"),
        ("p.png", b"image/png"),
        ("p.gif", b"image/gif"),
        ("f.swf", b"application/x-shockwave-flash"),
        ("i.svg", b"image/svg+xml"),
        ("d.json", b"application/json"),
        ("m.wasm", b"application/wasm"),
        ("f.woff2", b"font/woff2"),
        ("v.mp4", b"video/mp4"),
        ("d.pdf", b"application/pdf"),
        ("t.txt", b"text/plain"),
        ("Makefile", b"application/octet-stream"),
        ("archive.tar.unknown", b"application/octet-stream"),
    ],
)
def test_common_types(name: str, expected: bytes) -> None:
    assert content_type(name) == expected
