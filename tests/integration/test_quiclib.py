"""bench/quiclib: the same in-memory HTTP/3 client and server over aioquic and qh3 —
every request answered, the CPU time split between the sides."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanthorn.bench import quiclib
from lanthorn.bench.targets import make_certificate


@pytest.mark.parametrize("library", quiclib.LIBRARIES)
def test_both_libraries_answer_every_request(library: str, tmp_path: Path) -> None:
    tls = make_certificate(tmp_path)
    result = quiclib.measure(library, tls.cert, tls.key, handshakes=2, requests=50)
    assert result.library == library
    assert result.handshakes_per_s > 0 and result.requests_per_s > 0
    assert result.server_us_per_request > 0 and result.client_us_per_request > 0
