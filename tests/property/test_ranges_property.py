"""Hypothesis: for random files and random range sets, a 206 body (single part or
multipart/byteranges) reassembles to exactly the requested bytes of the file."""

from __future__ import annotations

import tempfile
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lanthorn.config import SiteConfig
from lanthorn.core.request import Request
from lanthorn.core.respond import Site
from tests.plans import body_bytes

SPEC = st.one_of(
    st.tuples(st.integers(0, 300), st.integers(0, 300)).map(lambda t: f"{min(t)}-{max(t)}"),
    st.integers(0, 300).map(lambda n: f"{n}-"),
    st.integers(1, 300).map(lambda n: f"-{n}"),
)


def _expected(spec: str, data: bytes) -> bytes:
    first, _, last = spec.partition("-")
    if not first:
        return data[-int(last) :]
    return data[int(first) : int(last) + 1] if last else data[int(first) :]


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=400),
    specs=st.lists(SPEC, min_size=1, max_size=6),
    small=st.booleans(),
)
def test_ranges_reassemble(data: bytes, specs: list[str], small: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "f.bin").write_bytes(data)
        # small: bodies in memory; else by descriptor (FileBody per part)
        site = Site(SiteConfig(root=tmp, small_file_bytes=1000 if small else 1))
        header = ("bytes=" + ",".join(specs)).encode()
        plan = site.respond(Request(b"GET", b"/f.bin", "1.1", {b"range": header}), 0.0)
        wanted = [_expected(s, data) for s in specs if _expected(s, data)]
        if not wanted:
            assert plan.status == 416
            return
        assert plan.status == 206
        raw = body_bytes(plan)
        headers = dict(plan.headers)
        assert int(headers[b"content-length"]) == len(raw)
        ctype = headers[b"content-type"]
        if ctype.startswith(b"multipart/byteranges"):
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + ctype + b"\r\n\r\n" + raw
            )
            parts = []
            for part in message.iter_parts():
                start, end = part["Content-Range"].split()[1].split("/")[0].split("-")
                payload = part.get_payload(decode=True)
                assert payload == data[int(start) : int(end) + 1]
                parts.append((int(start), int(end)))
        else:
            start, end = headers[b"content-range"].split()[1].split(b"/")[0].split(b"-")
            assert raw == data[int(start) : int(end) + 1]
            parts = [(int(start), int(end))]
        # every requested byte is covered by some part (coalescing may add a little)
        for spec in specs:
            piece = _expected(spec, data)
            if not piece:
                continue
            first = spec.partition("-")[0]
            lo = len(data) - len(piece) if not first else int(first)
            hi = lo + len(piece) - 1
            assert any(a <= lo and hi <= b for a, b in parts)
