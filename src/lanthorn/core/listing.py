"""Directory listing (`--autoindex`): HTML, or JSON for clients that prefer it.

Hidden entries are left out (as they could not be fetched anyway); directories come
first, then files, each sorted by name. Every name is escaped for HTML and
percent-encoded in links, so a file named `<script>…` is text, never markup.
"""

from __future__ import annotations

import html
import json
import time
from urllib.parse import quote

from lanthorn.core.files import Listed


def wants_json(accept: bytes | None) -> bool:
    """True when Accept ranks application/json above text/html (RFC 9110 §12.5.1)."""
    if not accept:
        return False
    json_q = html_q = 0.0
    for item in accept.decode("latin-1").split(","):
        media, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.strip().lower()
        if media == "application/json":
            json_q = max(json_q, q)
        elif media in ("text/html", "*/*", "text/*"):
            html_q = max(html_q, q if media == "text/html" else q - 0.001)
    return json_q > 0 and json_q > html_q


def visible(entries: list[Listed], allow_dotfiles: bool) -> list[Listed]:
    shown = [e for e in entries if allow_dotfiles or not e.name.startswith(".")]
    return sorted(shown, key=lambda e: (not e.is_dir, e.name))


def _shown(name: str) -> str:
    """A name for people: bytes that are not UTF-8 (kept as surrogates) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _href(entry: Listed) -> str:
    """The exact name, percent-encoded (undecodable bytes included)."""
    return quote(entry.name, errors="surrogateescape") + ("/" if entry.is_dir else "")


def _stamp(mtime_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(mtime_s))


def render_json(entries: list[Listed]) -> bytes:
    items = [
        {
            "name": _shown(e.name) + ("/" if e.is_dir else ""),
            "href": _href(e),
            "type": "directory" if e.is_dir else "file",
            "size": None if e.is_dir else e.size,
            "modified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.mtime_s)),
        }
        for e in entries
    ]
    return json.dumps(items).encode("ascii")


def render_html(path: str, entries: list[Listed]) -> bytes:
    title = html.escape(f"Index of {_shown(path)}")
    rows = []
    if path != "/":
        rows.append('<tr><td><a href="../">../</a></td><td></td><td></td></tr>')
    for e in entries:
        shown = _shown(e.name) + ("/" if e.is_dir else "")
        href = _href(e)
        size = "-" if e.is_dir else str(e.size)
        rows.append(
            f'<tr><td><a href="{html.escape(href)}">{html.escape(shown)}</a></td>'
            f"<td>{size}</td><td>{_stamp(e.mtime_s)}</td></tr>"
        )
    page = (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body><h1>{title}</h1>\n"
        "<table><tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n"
        + "\n".join(rows)
        + "\n</table></body></html>\n"
    )
    return page.encode("utf-8")
