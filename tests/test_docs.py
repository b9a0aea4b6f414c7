"""The docs hold together: every relative link in README.md and docs/ points at a file
that exists (and, for a Markdown page, at a heading it has), and every option of
`lanthorn --help` is described in docs/configuration.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lanthorn.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def links(text: str) -> list[str]:
    """Link and image targets outside code blocks and code spans."""
    return _LINK.findall(_CODE.sub("", _FENCE.sub("", text)))


def anchors(text: str) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation dropped, spaces
    to hyphens; a repeated heading gets -1, -2, …"""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", plain.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken(page: Path, text: str) -> list[str]:
    """The relative links of one page that lead nowhere."""
    bad = []
    for target in links(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: …
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve()
        if path and not dest.exists():
            bad.append(f"{target} (no such file)")
        elif fragment and (not path or dest.suffix == ".md"):
            headings = anchors(dest.read_text(encoding="utf-8") if path else text)
            if fragment not in headings:
                bad.append(f"{target} (no such heading)")
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    assert broken(page, page.read_text(encoding="utf-8")) == []


def test_the_checker_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading (with `code`)\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    text = (
        "[ok](there.md) [ok](there.md#a-heading-with-code) [ok](there.md#twice-1)\n"
        "[ok](#mine) ![ok](there.md) [web](https://example.com/x) `[code](nowhere.md)`\n"
        "```\n[fenced](nowhere.md)\n```\n# Mine\n"
        "[bad](missing.md) [bad](there.md#nope) [bad](#nope)\n"
    )
    assert broken(page, text) == [
        "missing.md (no such file)",
        "there.md#nope (no such heading)",
        "#nope (no such heading)",
    ]


def test_readme_keeps_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme


def test_every_option_is_documented() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    options = {
        flag
        for action in _parser()._actions
        for flag in action.option_strings
        if flag.startswith("--") and flag != "--help"
    }
    missing = [o for o in options if not re.search(rf"(?<![\w-]){o}(?![\w-])", documented)]
    assert sorted(missing) == []
