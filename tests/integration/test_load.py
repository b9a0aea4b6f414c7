"""The course's load commands complete with zero failed requests (scaled to this
machine and bounded in time). These check correctness under load; speed is measured by
the benchmark, not here."""

from __future__ import annotations

import re
import subprocess

from tests.integration import rawhttp
from tests.servers import Server


def test_ab_1000_requests_10_concurrent(server: Server) -> None:
    """`ab -n 1000 -c 10 http://localhost:8080/index.html` (HTTP/1.0, a connection each)."""
    out = subprocess.run(
        ["ab", "-q", "-n", "1000", "-c", "10", "-s", "20", server.url("/index.html")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert re.search(r"Complete requests:\s+1000\b", out.stdout)
    assert re.search(r"Failed requests:\s+0\b", out.stdout)
    assert re.search(r"Non-2xx responses", out.stdout) is None


def test_ab_keep_alive(server: Server) -> None:
    out = subprocess.run(
        ["ab", "-q", "-k", "-n", "2000", "-c", "10", "-s", "20", server.url("/index.html")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert re.search(r"Failed requests:\s+0\b", out.stdout)
    assert re.search(r"Keep-Alive requests:\s+2000\b", out.stdout)


def test_wrk_many_connections(server: Server) -> None:
    """`wrk -t12 -c400 -d30s` scaled to two cores and a few seconds: -t2 -c100 -d2s."""
    out = subprocess.run(
        ["wrk", "-t2", "-c100", "-d2s", "--timeout", "5s", server.url("/index.html")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    requests = int(re.search(r"(\d+) requests in", out.stdout).group(1))  # type: ignore[union-attr]
    assert requests > 1000
    assert "Socket errors" not in out.stdout, out.stdout
    assert "Non-2xx" not in out.stdout, out.stdout
    assert rawhttp.get(server.port, "/notes.txt").status == 200
