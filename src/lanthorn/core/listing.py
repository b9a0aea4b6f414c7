"""Directory listing (`--autoindex`): HTML, or JSON for clients that prefer it.

Hidden entries are left out (as they could not be fetched anyway); directories come
first, then files, each sorted by name. Every name is escaped for HTML and
percent-encoded in links, so a file named `<script>…` is text, never markup. The HTML
page has all it needs inline (style and script, no request for anything else): sizes
for people, a filter box, columns that sort on a click, light or dark as the system is,
and a layout that fits a phone.
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
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(mtime_s))


def _size(size: int) -> str:
    """A size for people: 999 B, 1.2 KiB, 35 MiB, 2.1 GiB."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


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


# The page's look and behaviour, inline (no request leaves for anything else): light or
# dark as the system is, readable on a phone; a filter box and sortable columns. Rows
# carry what they sort by (data-k: the name, the size in bytes, the time in seconds).
_STYLE = """
:root{color-scheme:light dark;--fg:#1d1d1f;--bg:#fff;--dim:#6e6e73;--line:#e5e5ea;
--link:#0a58ca;--hover:#f2f2f7}
@media (prefers-color-scheme:dark){:root{--fg:#f5f5f7;--bg:#1c1c1e;--dim:#a1a1a6;
--line:#38383a;--link:#6ea8fe;--hover:#2c2c2e}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:60rem;padding:1rem;font:15px/1.5 system-ui,sans-serif;
color:var(--fg);background:var(--bg)}
h1{font-size:1.25rem;font-weight:600;word-break:break-all}
input{width:100%;padding:.5rem .75rem;font:inherit;color:inherit;background:var(--bg);
border:1px solid var(--line);border-radius:.5rem;margin-bottom:.75rem}
table{width:100%;border-collapse:collapse;table-layout:fixed}
th,td{padding:.4rem .5rem;border-bottom:1px solid var(--line);text-align:left}
th{cursor:pointer;user-select:none;color:var(--dim);font-weight:500}
th[aria-sort=ascending]::after{content:" \\25B4"}th[aria-sort=descending]::after{content:" \\25BE"}
td:first-child{overflow-wrap:anywhere}
.n{text-align:right;width:6.5rem;color:var(--dim);font-variant-numeric:tabular-nums}
.t{width:10rem;color:var(--dim);font-variant-numeric:tabular-nums}
tr:hover td{background:var(--hover)}a{color:var(--link);text-decoration:none}
@media (max-width:36rem){.t{display:none}.n{width:5.5rem}}
"""
_SCRIPT = """
const body=document.querySelector("tbody"),heads=[...document.querySelectorAll("th")];
document.querySelector("input").addEventListener("input",e=>{
const q=e.target.value.toLowerCase();for(const r of body.rows)
r.style.display=q&&!r.dataset.k.toLowerCase().includes(q)?"none":""});
heads.forEach((th,i)=>th.addEventListener("click",()=>{
const up=th.getAttribute("aria-sort")!=="ascending";
heads.forEach(h=>h.removeAttribute("aria-sort"));
th.setAttribute("aria-sort",up?"ascending":"descending");
const key=r=>i?Number(r.cells[i].dataset.k):r.dataset.k.toLowerCase();
const rows=[...body.rows].sort((a,b)=>(b.dataset.d-a.dataset.d)||
(key(a)<key(b)?-1:key(a)>key(b)?1:0)*(up?1:-1));body.append(...rows)}));
"""


_PARENT = (
    '<tr data-k="" data-d="2"><td><a href="../">../</a></td>'
    '<td class="n" data-k="-1"></td><td class="t" data-k="0"></td></tr>'
)


def render_html(path: str, entries: list[Listed]) -> bytes:
    title = html.escape(f"Index of {_shown(path)}")
    rows = []
    if path != "/":
        rows.append(_PARENT)
    for e in entries:
        shown = html.escape(_shown(e.name) + ("/" if e.is_dir else ""))
        size, size_k = ("—", -1) if e.is_dir else (_size(e.size), e.size)
        rows.append(
            f'<tr data-k="{shown}" data-d="{int(e.is_dir)}">'
            f'<td><a href="{html.escape(_href(e))}">{shown}</a></td>'
            f'<td class="n" data-k="{size_k}" title="{size_k} bytes">{size}</td>'
            f'<td class="t" data-k="{int(e.mtime_s)}">{_stamp(e.mtime_s)}</td></tr>'
        )
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head>\n<body><h1>{title}</h1>\n"
        '<input type="search" placeholder="Filter" aria-label="Filter by name">\n'
        '<table><thead><tr><th>Name</th><th class="n">Size</th><th class="t">Modified</th>'
        "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
    return page.encode("utf-8")
