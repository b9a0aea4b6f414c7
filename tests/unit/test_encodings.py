"""Accept-Encoding negotiation (RFC 9110 §12.5.3)."""

from __future__ import annotations

import pytest

from lanthorn.core.encodings import choose

ALL = ("zstd", "br", "gzip")


@pytest.mark.parametrize(
    ("header", "available", "chosen"),
    [
        (None, ALL, "identity"),  # no header: identity
        (b"gzip", ALL, "gzip"),
        (b"x-gzip", ALL, "gzip"),
        (b"gzip, br", ALL, "br"),  # tie: server prefers br over gzip
        (b"gzip, br, zstd", ALL, "zstd"),
        (b"gzip;q=1.0, br;q=0.5", ALL, "gzip"),  # q decides
        (b"br;q=0, gzip", ALL, "gzip"),
        (b"*", ALL, "zstd"),
        (b"*;q=0.5, gzip;q=0.1", ("gzip",), "gzip"),
        (b"br", ("gzip",), "identity"),  # not available: identity
        (b"gzip;q=0.5, identity", ALL, "identity"),  # explicit identity wins on q
        (b"identity;q=0", ("gzip",), None),  # gzip not accepted either → 406
        (b"identity;q=0, gzip", ("gzip",), "gzip"),
        (b"*;q=0", (), None),
        (b"*;q=0, identity", (), "identity"),
        # A malformed member is ignored (issue 9, defect 9: `*;q=` answered 406)
        (b"gzip;q=abc", ("gzip",), "identity"),
        (b"*;q=", ("gzip",), "identity"),
        (b"*;q=", (), "identity"),
        (b"gzip;q=2, br", ("gzip", "br"), "br"),
        (b"gzip;q=0.1234, br;q=0.5", ("gzip", "br"), "br"),
        (b"identity;q=nan", (), "identity"),
        (b"gzip;q=1e0", ("gzip",), "identity"),
        (b"gzip; q=0.5 , br;q=0.4", ("gzip", "br"), "gzip"),
        (b"GZIP", ("gzip",), "gzip"),  # tokens are case-insensitive
    ],
)
def test_choose(header: bytes | None, available: tuple[str, ...], chosen: str | None) -> None:
    assert choose(header, available) == chosen
