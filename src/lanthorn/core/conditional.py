"""Conditional requests (RFC 9110 §13): validators compared, preconditions evaluated in
the order §13.2.2 prescribes.

Preconditions are only evaluated when the response would otherwise be a 2xx (§13.2.1);
the caller guarantees that by asking only for an existing representation.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime


def parse_http_date(value: bytes) -> int | None:
    """Seconds since the epoch for an HTTP-date (§5.6.7, all three formats), or None
    for anything invalid (which the caller then ignores, as §13.1.3/§13.1.4 require)."""
    try:
        parsed = parsedate_to_datetime(value.decode("latin-1"))
    except (ValueError, TypeError, IndexError, OverflowError):
        # OverflowError: a field too large for datetime ("Mon, 99999999999 Feb 2004 ...").
        return None
    if parsed.tzinfo is None:  # asctime format carries no zone: it is GMT by definition
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _entity_tags(value: bytes) -> list[bytes]:
    """The entity-tags of an If-Match / If-None-Match list (`*` stays `*`)."""
    return [tag.strip() for tag in value.split(b",") if tag.strip()]


def _opaque(tag: bytes) -> bytes:
    return tag[2:] if tag.startswith(b"W/") else tag


def strong_match(header: bytes, etag: bytes) -> bool:
    """§8.8.3.2 strong comparison: both strong and identical (`*` matches anything)."""
    tags = _entity_tags(header)
    if b"*" in tags:
        return True
    return not etag.startswith(b"W/") and etag in tags


def weak_match(header: bytes, etag: bytes) -> bool:
    """§8.8.3.2 weak comparison: opaque tags equal, weakness ignored."""
    tags = _entity_tags(header)
    if b"*" in tags:
        return True
    opaque = _opaque(etag)
    return any(_opaque(tag) == opaque for tag in tags)


def evaluate(method: bytes, headers: dict[bytes, bytes], etag: bytes, mtime_s: int) -> int | None:
    """The status the preconditions impose (304 or 412), or None to carry on.

    §13.2.2 order: If-Match, else If-Unmodified-Since; then If-None-Match, else (for GET
    and HEAD) If-Modified-Since.
    """
    if_match = headers.get(b"if-match")
    if if_match is not None:
        if not strong_match(if_match, etag):
            return 412
    else:
        since = headers.get(b"if-unmodified-since")
        if since is not None:
            date = parse_http_date(since)
            if date is not None and mtime_s > date:
                return 412
    read = method in (b"GET", b"HEAD")
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None:
        if weak_match(if_none_match, etag):
            return 304 if read else 412
    elif read:
        since = headers.get(b"if-modified-since")
        if since is not None:
            date = parse_http_date(since)
            if date is not None and mtime_s <= date:
                return 304
    return None


def if_range_allows(
    value: bytes, etag: bytes, last_modified: bytes, mtime_s: int, wall: float
) -> bool:
    """§13.1.5: an entity-tag must match strongly; a date must equal Last-Modified
    exactly and be strong: the file's second of modification has ended by `wall`, so it
    cannot have changed twice within it (§8.8.2.2). Otherwise the Range is ignored and
    the whole representation is sent."""
    value = value.strip()
    if value.startswith((b'"', b"W/")):
        return value == etag and not etag.startswith(b"W/")
    return value == last_modified and mtime_s + 1 <= wall
