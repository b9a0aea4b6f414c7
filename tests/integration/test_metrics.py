"""`--metrics HOST:PORT`: Prometheus text summed over the workers, /healthz, /readyz (503
once a stop begins), 404 elsewhere; one-line errors for a taken port and a missing extra."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.h3client import H3Client
from tests.servers import Server

DEADLINE_S = 10.0  # a publish interval is half a second: this is many


def _get(server: Server, path: str) -> tuple[int, str]:
    where = server.info["metrics"]
    assert isinstance(where, dict)
    conn = http.client.HTTPConnection(where["host"], where["port"], timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _samples(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = _get(server, "/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _requests(
    method: str, status_class: str, protocol: str
) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = {"method": method, "protocol": protocol, "status_class": status_class}
    return ("lanthorn_http_requests_total", tuple(sorted(labels.items())))


@pytest.mark.parametrize("workers", [1, 2])
def test_counts_summed_over_workers(site: Path, scratch: Path, workers: int) -> None:
    args = ("--workers", str(workers), "--metrics", "127.0.0.1:0", "--access-log", "off")
    with Server(site, *args, tmp=scratch) as srv:
        for _ in range(10):  # new connections, so both workers get some
            assert httpx.get(srv.url("/notes.txt"), timeout=10).status_code == 200
        missing = [httpx.get(srv.url("/missing"), timeout=10) for _ in range(2)]
        assert [r.status_code for r in missing] == [404, 404]
        assert httpx.head(srv.url("/notes.txt"), timeout=10).status_code == 200
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            for _ in range(3):
                assert client.get(srv.url("/style.css")).status_code == 200
        want = {
            _requests("GET", "2xx", "HTTP/1.1"): 10.0,
            _requests("GET", "4xx", "HTTP/1.1"): 2.0,
            _requests("HEAD", "2xx", "HTTP/1.1"): 1.0,
            _requests("GET", "2xx", "HTTP/2"): 3.0,
            ("lanthorn_http_errors_total", (("status", "404"),)): 2.0,
            ("lanthorn_http_request_duration_seconds_count", ()): 16.0,
            ("lanthorn_http_response_body_bytes_total", ()): 10 * 11
            + 3 * 16
            + sum(len(r.content) for r in missing),
        }
        deadline = time.monotonic() + DEADLINE_S
        while True:
            samples = _samples(srv)
            got = {key: samples.get(key) for key in want}
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert got == want
        assert samples[("lanthorn_cache_hits_total", ())] >= 10
        assert samples[("lanthorn_open_connections", (("protocol", "HTTP/1.1"),))] == 0
        assert _get(srv, "/healthz") == (200, "ok\n")
        assert _get(srv, "/readyz")[0] == 200
        assert _get(srv, "/other")[0] == 404
    assert "Traceback" not in srv.output(), srv.output()


@pytest.mark.parametrize("workers", [1, 2])
def test_not_ready_while_draining(site: Path, scratch: Path, workers: int) -> None:
    (site / "big.bin").write_bytes(b"\0" * (64 << 20))
    args = ("--workers", str(workers), "--metrics", "127.0.0.1:0", "--grace", "10")
    with Server(site, *args, "--access-log", "off", tmp=scratch) as srv:
        assert _get(srv, "/readyz")[0] == 200
        slow = socket.create_connection((srv.host, srv.port), timeout=10)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        assert slow.recv(100).startswith(b"HTTP/1.1 200")  # the download is under way
        srv.signal(signal.SIGTERM)
        deadline = time.monotonic() + DEADLINE_S
        while _get(srv, "/readyz")[0] != 503:
            assert time.monotonic() < deadline, "still ready after SIGTERM"
            time.sleep(0.05)
        assert _get(srv, "/healthz")[0] == 200  # alive while it drains
        slow.close()
        srv.proc.wait(20)


def test_port_taken_is_one_line(site: Path, scratch: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "lanthorn", str(site), "--port", "0",
             "--metrics", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"lanthorn: error: cannot serve metrics at 127.0.0.1:{port}: Address already in use"
    ]


BLOCKER = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "prometheus_client":
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Blocker())
from lanthorn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_missing_extra_is_one_line(site: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, str(site), "--port", "0", "--metrics", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "lanthorn: error: --metrics needs prometheus-client: pip install 'lanthorn[metrics]'"
    ]


def test_tls_handshakes_over_tcp_and_quic(
    site: Path, scratch: Path, pki: tuple[Path, Path, Path]
) -> None:
    """Handshakes are counted whatever carries them: two over TCP (curl, HTTP/2 and
    HTTP/1.1), one in QUIC (HTTP/3), and one that never completes (garbage)."""
    _, cert, key = pki
    args = ("--metrics", "127.0.0.1:0", "--access-log", "off", "--tls-cert", str(cert),
            "--tls-key", str(key))  # fmt: skip
    with Server(site, *args, tmp=scratch) as srv:
        for flag in ("--http2", "--http1.1"):
            subprocess.run(["curl", "-sSk", flag, "-o", "/dev/null", srv.url("/notes.txt")],
                           check=True, timeout=30)  # fmt: skip
        client = H3Client(srv.port)
        try:
            assert client.get("/notes.txt").status == 200
        finally:
            client.close()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as garbage:
            garbage.sendall(b"\x16\x03\x01\x00\x05hello" + bytes(50))
            garbage.recv(100)
        want = {("lanthorn_tls_handshakes_total", ()): 4.0,
                ("lanthorn_tls_handshake_failures_total", ()): 1.0}  # fmt: skip
        deadline = time.monotonic() + DEADLINE_S
        while (got := {k: _samples(srv).get(k) for k in want}) != want:
            assert time.monotonic() < deadline, got
            time.sleep(0.1)
