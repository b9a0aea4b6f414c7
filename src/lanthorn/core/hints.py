"""103 Early Hints (RFC 8297): the Link fields sent ahead of an HTML page, so that a
browser starts on the page's stylesheets and scripts while the page is on its way.

They come from two places, put together once per version of a file (`Hints`, keyed by
its path and identity: an edited page is scanned afresh):
- the site's `hint_links` rules (GLOB=LINK; every match, in order), as written;
- a scan of the page's first SCAN_BYTES with the standard library's HTML tokenizer,
  which keeps at most MAX_LINKS of
  `<link rel=stylesheet href>`                  → `rel=preload; as=style`,
  a classic `<script src>`                      → `rel=preload; as=script`,
  `<script type=module src>`, `<link rel=modulepreload href>` → `rel=modulepreload`,
  `<link rel=preload href as=style|script|font|image|fetch>`  → the same,
  each with the element's `crossorigin`: a preload fetched in another mode than its
  element is not reused, and the browser fetches the resource twice.

Only what the browser will fetch, and only from the page's own origin:
- skipped: what is inside `<noscript>`, `<template>` and the raw-text elements (never
  fetched with scripting on), alternate or non-screen stylesheets, scripts of another
  type or with `nomodule`, elements with `integrity` (a preload without it is not
  reused), preloads with `media`, `imagesrcset` or an odd `type`;
- a reference is kept only if it is relative or root-relative (`a.css`, `/a.css`), so it
  names the same URL whether the browser resolves it from the element or from the hint
  (both against the page's URL; RFC 8288 §3.2): no `//host/` or `scheme:` URLs, no
  backslash (browsers read it as a slash), and nothing at all from a page with a
  `<base href>`, which moves every relative reference elsewhere;
- every character must be one a URI may hold (RFC 3986 §2): no CR, LF, space, `<`, `>`,
  `"`, control or non-ASCII character, so a scanned reference can never end the `<…>`
  of its Link, nor the field.
"""

from __future__ import annotations

import contextlib
import re
from html.parser import HTMLParser

from lanthorn.config import URI_REFERENCE
from lanthorn.core.cache import Identity, identity
from lanthorn.core.files import Opened
from lanthorn.core.paths import glob_matches
from lanthorn.core.response import Fields

SCAN_BYTES = 32 * 1024  # ~8 ms of tokenizing for dense markup, once per file version
MAX_LINKS = 16

Attributes = dict[str, str | None]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_HTML_SPACE = " \t\n\f\r"  # stripped from both ends of a URL attribute
# Elements whose content the browser does not fetch from: raw text, or a template's.
_INERT = frozenset(
    ("noscript", "template", "title", "textarea", "xmp", "iframe", "noembed", "noframes")
)
# `type`s of a classic script (HTML's JavaScript MIME types, the common ones; "" is none).
_CLASSIC = frozenset(
    ("", "text/javascript", "application/javascript", "text/ecmascript", "application/ecmascript")
)
_PRELOADS = frozenset(("style", "script", "font", "image", "fetch"))
_EVERY_SCREEN = frozenset(("", "all", "screen"))
_MIME = re.compile(r"[a-z0-9!#$&^_.+\-]+/[a-z0-9!#$&^_.+\-]+")


def reference(value: str | None) -> str | None:
    """The attribute's URL if it is a same-origin reference that can go between a
    Link's angle brackets as it is, else None."""
    url = (value or "").strip(_HTML_SPACE)
    if (
        not url
        or url[0] == "#"  # the page itself
        or url.startswith("//")
        or _SCHEME.match(url)
        or not URI_REFERENCE.fullmatch(url)
    ):
        return None
    return url


def _mode(attrs: Attributes) -> str:
    """The element's CORS mode as a Link parameter (HTML: a `crossorigin` of any other
    value than use-credentials is anonymous)."""
    if "crossorigin" not in attrs:
        return ""
    credentials = (attrs["crossorigin"] or "").strip().lower() == "use-credentials"
    return "; crossorigin=use-credentials" if credentials else "; crossorigin"


def _link(attrs: Attributes) -> tuple[str, str] | None:
    url = reference(attrs.get("href"))
    if url is None or "integrity" in attrs:
        return None
    rel = (attrs.get("rel") or "").lower().split()
    media = (attrs.get("media") or "").strip().lower()
    if "stylesheet" in rel:
        if "alternate" in rel or "disabled" in attrs or media not in _EVERY_SCREEN:
            return None
        return url, f"<{url}>; rel=preload; as=style{_mode(attrs)}"
    if "modulepreload" in rel:
        return url, f"<{url}>; rel=modulepreload{_mode(attrs)}"
    kind = (attrs.get("as") or "").strip().lower()
    if "preload" not in rel or kind not in _PRELOADS or "media" in attrs or "imagesrcset" in attrs:
        return None
    typed = ""
    if "type" in attrs:
        mime = (attrs["type"] or "").strip().lower()
        if not _MIME.fullmatch(mime):
            return None
        typed = f'; type="{mime}"'
    return url, f"<{url}>; rel=preload; as={kind}{typed}{_mode(attrs)}"


def _script(attrs: Attributes) -> tuple[str, str] | None:
    url = reference(attrs.get("src"))
    if url is None or "nomodule" in attrs or "integrity" in attrs:
        return None
    kind = (attrs.get("type") or "").strip().lower()
    if kind == "module":
        return url, f"<{url}>; rel=modulepreload{_mode(attrs)}"
    if kind in _CLASSIC:
        return url, f"<{url}>; rel=preload; as=script{_mode(attrs)}"
    return None  # a data block (JSON, an import map, a template language...)


class _Enough(Exception):
    """The scan has what it needs: MAX_LINKS, or a `<base href>` that voids them."""


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: dict[str, str] = {}  # reference → its Link value, in document order
        self.based = False  # a <base href>: references resolve against another URL
        self._inert: str | None = None  # the inert element we are inside
        self._depth = 0  # how many of it are open (templates nest)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._inert is not None:
            self._depth += tag == self._inert == "template"
            return
        if tag in _INERT:
            self._inert, self._depth = tag, 1
            return
        named = dict(reversed(attrs))  # the first of a repeated attribute counts
        if tag == "base" and "href" in named:
            self.based = True
            raise _Enough
        found = _link(named) if tag == "link" else _script(named) if tag == "script" else None
        if found is not None:
            self.links.setdefault(*found)
            if len(self.links) >= MAX_LINKS:
                raise _Enough

    def handle_endtag(self, tag: str) -> None:
        if tag == self._inert:
            self._depth -= 1
            if not self._depth:
                self._inert = None


def scan(head: bytes) -> list[str]:
    """The Link values the start of a page calls for (at most MAX_LINKS). A tag cut
    by the end of `head` is not read."""
    scanner = _Scanner()
    # AssertionError: Python 3.11's tokenizer on some malformed declarations (`<![x[`);
    # what was found before it stands.
    with contextlib.suppress(_Enough, AssertionError):
        # Latin-1 maps every byte to a character: ASCII, all a kept reference may hold,
        # reads the same in any ASCII-compatible charset, and nothing fails to decode.
        scanner.feed(head.decode("latin-1"))
    return [] if scanner.based else list(scanner.links.values())


class Hints:
    """One worker's 103 fields for each version of each HTML file, made at its first
    request and kept (the oldest dropped first past `max_entries`)."""

    def __init__(self, rules: list[tuple[str, str]], max_entries: int) -> None:
        self._rules = rules  # (glob, Link value), validated by the config
        self._entries: dict[tuple[str, Identity], Fields] = {}
        self._max_entries = max_entries

    def fields(self, relative: str, opened: Opened) -> Fields:
        """The Link fields for the page at `relative`, open in `opened` (whose file is
        left at its start, for whoever reads it next)."""
        key = (relative, identity(opened.stat))
        found = self._entries.get(key)
        if found is None:
            configured = [link for glob, link in self._rules if glob_matches(relative, glob)]
            links = dict.fromkeys([*configured, *scan(_head(opened))])
            found = tuple((b"link", link.encode("ascii")) for link in links)
            if len(self._entries) >= self._max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = found
        return found


def _head(opened: Opened) -> bytes:
    file = opened.file
    assert file is not None
    head = file.read(SCAN_BYTES) or b""
    file.seek(0)
    return head
