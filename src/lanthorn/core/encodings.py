"""Content codings (RFC 9110 §8.4, §12.5.3): what the client accepts, and which stored
or generated representation to send.

Precompressed sidecars: for `x.css` the candidates are `x.css.zst`, `x.css.br` and
`x.css.gz`. A sidecar is used only when it is at least as new as the original — an
older one is stale and ignored, so editing a file never serves yesterday's compressed
copy. Among acceptable codings the client's q-value decides; on a tie the server
prefers zstd, then brotli, then gzip (smallest first), and identity last.
"""

from __future__ import annotations

import re
from functools import lru_cache

# coding token → sidecar suffix, in the server's order of preference
CODINGS: dict[str, str] = {"zstd": ".zst", "br": ".br", "gzip": ".gz"}
IDENTITY = "identity"


@lru_cache(maxsize=256)
def accepted(header: bytes | None) -> tuple[dict[str, float], float, float, bool]:
    """(q by coding, q for `*`, q for identity, identity named explicitly) from
    Accept-Encoding (§12.5.3). Parsed once per distinct header value.

    No header: anything is acceptable, identity preferred — the caller sends identity.
    Identity is acceptable unless `identity;q=0`, or `*;q=0` without an identity entry.
    """
    if header is None:
        return {}, 0.0, 1.0, False
    qs: dict[str, float] = {}
    for item in header.decode("latin-1").split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        q = _weight(params)
        if not name or q is None:
            continue  # a malformed member is ignored, not taken as a refusal
        qs["gzip" if name == "x-gzip" else name] = q
    has_star = "*" in qs
    star = qs.pop("*", 0.0)
    explicit = IDENTITY in qs
    identity = qs.pop(IDENTITY, star if has_star else 1.0)
    return qs, star, identity, explicit


# RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def _weight(params: str) -> float | None:
    """The member's q (1 when absent), or None when a q parameter is malformed."""
    q = 1.0
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            value = value.strip()
            if not _QVALUE.fullmatch(value):
                return None
            q = float(value)
    return q


def choose(header: bytes | None, available: tuple[str, ...]) -> str | None:
    """The coding to send among `available` (plus identity), or None when nothing is
    acceptable (the caller answers 406)."""
    qs, star, identity_q, explicit = accepted(header)
    best, best_q = None, 0.0
    for coding in CODINGS:  # server preference breaks ties
        if coding in available:
            q = qs.get(coding, star)
            if q > best_q:
                best, best_q = coding, q
    # A compressed coding wins over implicit identity; an explicit identity q competes.
    if best is not None and not (explicit and identity_q > best_q):
        return best
    return IDENTITY if identity_q > 0 else None
