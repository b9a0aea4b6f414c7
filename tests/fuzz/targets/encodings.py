"""Accept-Encoding (RFC 9110 §12.5.3): parsing and the choice of a content coding.

Input: a byte whose bits say which codings are available, then the field value.

Invariants: `accepted` never raises and its q-values lie in [0, 1]; `choose` returns an
available coding, identity or None (406), and its choice is consistent with the q-values
(a coding only with q > 0 and no better one available; identity only when acceptable;
None only when nothing is); and a member whose q is not a valid qvalue (§12.4.2) is
ignored: the choice is the same as without it.
"""

from __future__ import annotations

import re

from lanthorn.core.encodings import CODINGS, IDENTITY, accepted, choose
from tests.fuzz.source import Source

_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


def _malformed(member: str) -> bool:
    """The member has a q parameter that is not a qvalue."""
    for param in member.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q" and not _QVALUE.fullmatch(value.strip()):
            return True
    return False


def check(header: bytes | None, available: tuple[str, ...]) -> str | None:
    qs, star, identity_q, _ = accepted(header)
    assert all(0.0 <= q <= 1.0 for q in (*qs.values(), star, identity_q)), (qs, star, identity_q)
    chosen = choose(header, available)
    best = max((qs.get(c, star) for c in available), default=0.0)
    if chosen is None:
        assert identity_q == 0 and best == 0, (qs, star, identity_q)
    elif chosen == IDENTITY:
        assert identity_q > 0
    else:
        assert chosen in available and qs.get(chosen, star) == best > 0, (chosen, qs, star)
    return chosen


def fuzz(data: bytes) -> None:
    source = Source(data)
    bits = source.byte()
    available = tuple(coding for i, coding in enumerate(CODINGS) if bits >> i & 1)
    header = None if bits & 0x80 else source.rest()
    chosen = check(header, available)
    if header is not None:
        members = header.decode("latin-1").split(",")
        kept = ",".join(m for m in members if not _malformed(m)).encode("latin-1")
        if kept != header:
            assert check(kept, available) == chosen, (header, kept)
