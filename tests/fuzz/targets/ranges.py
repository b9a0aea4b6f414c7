"""Range parsing (RFC 9110 §14): a representation size and a Range field value.

Input: a byte choosing how the size is read (a byte, two bytes, eight bytes, or 0), the
size, then the field value.

Invariants: parse returns None, raises Unsatisfiable, or returns 1..MAX_RANGES spans that
lie within the representation, do not overlap and are further apart than COALESCE_GAP;
they cover every requested byte and nothing more than the requested bytes and the gaps
merged between them; the spans are in ascending order unless none were merged (then in
the client's order); Unsatisfiable only when no requested range overlaps the
representation; and a set with any invalid range-spec is ignored (None).
"""

from __future__ import annotations

import itertools

from lanthorn.core.ranges import COALESCE_GAP, MAX_RANGES, Span, Unsatisfiable, parse
from tests.fuzz.source import Source


def _int(digits: bytes) -> int:
    return int(digits) if len(digits) < 4000 else 10**4000  # past int()'s digit limit


def _requested(value: bytes, size: int) -> list[Span] | None:
    """The byte ranges asked for, clipped to the representation (a second, simpler
    reading of §14.1.1), or None if the set is not a valid bytes range set."""
    unit, eq, specs = value.partition(b"=")
    if not eq or unit.strip().lower() != b"bytes":
        return None
    items = [spec.strip() for spec in specs.split(b",")]
    if not any(items):
        return None
    spans = []
    for spec in items:
        if not spec:
            continue
        first, dash, last = spec.partition(b"-")
        if not dash or not all(part.isdigit() or part == b"" for part in (first, last)):
            return None
        if not first and not last:
            return None
        if not first:
            if _int(last) and size:
                spans.append(Span(max(0, size - _int(last)), size - 1))
        elif last and _int(last) < _int(first):
            return None
        elif _int(first) < size:
            spans.append(Span(_int(first), min(_int(last) if last else size - 1, size - 1)))
    return spans


def _covered(spans: list[Span]) -> list[Span]:
    """Union of the spans as sorted, disjoint, non-adjacent intervals."""
    out: list[Span] = []
    for span in sorted(spans):
        if out and span.start <= out[-1].end + 1:
            out[-1] = Span(out[-1].start, max(out[-1].end, span.end))
        else:
            out.append(span)
    return out


def fuzz(data: bytes) -> None:
    source = Source(data)
    width = source.pick((1, 2, 8, 0))
    # Sizes stay below 2**59: the module clamps numbers past 10**18 (no file is that big).
    size = source.number(width) & (2**59 - 1)
    value = source.rest()
    requested = _requested(value, size)
    many = value.count(b",") + 1 > 4 * MAX_RANGES
    try:
        spans = parse(value, size)
    except Unsatisfiable:
        assert requested == [] and not many, (requested, size)
        return
    if spans is None:
        assert requested is None or many or len(_merged(requested)) > MAX_RANGES, requested
        return
    assert requested is not None and not many, (requested, spans, size)
    assert 1 <= len(spans) <= MAX_RANGES
    ordered = sorted(spans)
    for span in spans:
        assert 0 <= span.start <= span.end < size, (span, size)
    for left, right in itertools.pairwise(ordered):
        assert right.start > left.end + 1 + COALESCE_GAP, spans
    if len(spans) != len(requested):
        assert spans == ordered, "merged spans must be in ascending order"
    else:
        assert spans == requested, "unmerged spans must be the client's, in its order"
    covered, wanted = _covered(spans), _covered(requested)
    for span in wanted:  # every requested byte is sent
        assert any(c.start <= span.start and span.end <= c.end for c in covered), span
    for span in covered:  # and each sent span starts and ends on requested bytes
        assert any(w.start == span.start for w in wanted), span
        assert any(w.end == span.end for w in wanted), span


def _merged(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for span in sorted(spans):
        if out and span.start <= out[-1].end + 1 + COALESCE_GAP:
            out[-1] = Span(out[-1].start, max(out[-1].end, span.end))
        else:
            out.append(span)
    return out
