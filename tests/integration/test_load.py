"""The course's load commands complete with zero failed requests (scaled to this
machine and bounded in time). These check correctness under load; speed is measured by
the benchmark, not here. The output is read with the benchmark's own parsers."""

from __future__ import annotations

import re
import subprocess

from lanthorn.bench.load import parse_ab, parse_wrk
from tests.integration import rawhttp
from tests.servers import Server


def _run(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_ab_1000_requests_10_concurrent(server: Server) -> None:
    """`ab -n 1000 -c 10 http://localhost:8080/index.html` (HTTP/1.0, a connection each)."""
    argv = ["ab", "-q", "-n", "1000", "-c", "10", "-s", "20", server.url("/index.html")]
    result = parse_ab(_run(argv), " ".join(argv))
    assert (result.requests, result.errors) == (1000, 0)


def test_ab_keep_alive(server: Server) -> None:
    argv = ["ab", "-q", "-k", "-n", "2000", "-c", "10", "-s", "20", server.url("/index.html")]
    out = _run(argv)
    result = parse_ab(out, " ".join(argv))
    assert (result.requests, result.errors) == (2000, 0)
    assert re.search(r"Keep-Alive requests:\s+2000\b", out)


def test_wrk_400_connections(server: Server) -> None:
    """`wrk -t12 -c400 -d30s` scaled to two cores and a bounded time: -t2 -c400 -d2s."""
    argv = ["wrk", "-t2", "-c400", "-d2s", "--timeout", "5s", server.url("/index.html")]
    out = _run(argv)
    result = parse_wrk(out, " ".join(argv))
    assert result.requests > 1000
    assert result.errors == 0, out
    assert rawhttp.get(server.port, "/notes.txt").status == 200
