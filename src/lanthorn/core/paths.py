"""Request target → a safe path relative to the document root.

Rules (RFC 9112 §3.2, RFC 3986 §5.2.4, and DESIGN §3 "Paths"):
- origin-form (`/a/b?q`) and absolute-form (`http://host/a/b`) are accepted; the query and
  any fragment are ignored for lookup;
- percent-decoding happens exactly once, after which `/` (even from `%2F`) separates
  segments; a malformed escape is a 400;
- dot-segments are removed; a `..` that would climb above the root is a 403;
- NUL can name no file (404); a backslash is refused (403) so that no Windows-style
  separator ever reaches the file system;
- a segment starting with `.` is hidden (404) unless dotfiles are allowed, except
  `.well-known` (RFC 8615).
"""

from __future__ import annotations

import fnmatch
import re
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class PathRejected(Exception):
    """The target cannot name a file under the root; `status` says how to answer."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class SafePath(NamedTuple):
    """Segments under the root, none empty, `.`, `..`, or containing `/`, NUL or `\\`."""

    parts: tuple[str, ...]
    directory: bool  # the target named a directory (ended with "/")

    @property
    def relative(self) -> str:
        return "/".join(self.parts)


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(path, query) of a request target; absolute-form is reduced to its path.

    Raises PathRejected(400) for anything that is neither origin- nor absolute-form.
    """
    if not target.startswith(b"/"):
        scheme, sep, rest = target.partition(b"://")
        if not sep or scheme.lower() not in (b"http", b"https"):
            raise PathRejected(400)
        slash = rest.find(b"/")
        target = rest[slash:] if slash >= 0 else b"/"
    path, _, query = target.partition(b"?")
    path = path.partition(b"#")[0]
    return path, query


def safe_path(raw_path: bytes, *, allow_dotfiles: bool = False) -> SafePath:
    """Decode and normalise `raw_path` (which starts with "/")."""
    if _BAD_ESCAPE.search(raw_path):
        raise PathRejected(400)
    decoded = unquote_to_bytes(raw_path)
    if b"\x00" in decoded:
        raise PathRejected(404)
    if b"\\" in decoded:
        raise PathRejected(403)
    # Undecodable bytes survive as surrogates, which os functions map back to the bytes.
    text = decoded.decode("utf-8", "surrogateescape")
    segments = text.split("/")
    parts: list[str] = []
    for segment in segments:
        if segment in ("", "."):
            continue
        if segment == "..":
            if not parts:
                raise PathRejected(403)
            parts.pop()
            continue
        if segment[0] == "." and not allow_dotfiles and segment != ".well-known":
            raise PathRejected(404)
        parts.append(segment)
    directory = segments[-1] in ("", ".", "..")
    return SafePath(tuple(parts), directory)


def glob_matches(relative: str, glob: str) -> bool:
    """Whether a configured GLOB names the file at `relative` (under the root): by its
    whole path (`docs/*.html`) or by its name alone (`*.css`)."""
    return fnmatch.fnmatchcase(relative, glob) or fnmatch.fnmatchcase(
        relative.rpartition("/")[2], glob
    )
