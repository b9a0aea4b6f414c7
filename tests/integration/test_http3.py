"""HTTP/3 over QUIC (RFC 9114) with `--http3`: the same site on the same port over UDP,
the same answers as over TCP (the same core decides), advertised with Alt-Svc; real
clients: ngtcp2's `gtlsclient` (Debian's ngtcp2-client), a client on aioquic (h3client)
and headless Chromium forced onto QUIC."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.conftest import LARGE_SIZE
from tests.integration import chromium, rawhttp
from tests.integration.conftest import lanthorn
from tests.integration.h3client import H3Client
from tests.servers import Server

WWW = Path(__file__).resolve().parents[2] / "www"
# Fields that differ by protocol or by moment.
_VARYING = {"connection", "keep-alive", "date"}


@pytest.fixture(scope="module")
def pki(scratch: Path) -> tuple[Path, Path]:
    directory = scratch / "h3-pki"
    directory.mkdir(exist_ok=True)
    _, cert, key = certs.make(directory)
    return cert, key


# The models with a UDP path: every test of the shared server runs on both.
QUIC_MODELS = ("asyncio", "events")


@pytest.fixture(scope="module", params=QUIC_MODELS)
def server(
    request: pytest.FixtureRequest, site: Path, scratch: Path, pki: tuple[Path, Path]
) -> Iterator[Server]:
    cert, key = pki
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--http3", "--access-log", "-")
    with Server(site, *args, "--model", request.param, tmp=scratch) as srv:
        yield srv
    assert "Traceback" not in srv.output(), srv.output()


def _https1(port: int, method: str, path: str, headers: list[tuple[str, str]]) -> rawhttp.Response:
    """The same request over HTTP/1.1 on TLS."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    extra = "".join(f"{n}: {v}\r\n" for n, v in headers)
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n"
    with context.wrap_socket(rawhttp.connect(port), server_hostname="localhost") as sock:
        sock.sendall(head.encode())
        return rawhttp.read_response(sock, bytearray(), head_only=method == "HEAD")


CASES = [
    ("GET", "/", []),
    ("HEAD", "/", []),
    ("GET", "/styles.css", [("accept-encoding", "br, gzip")]),
    ("GET", "/large.bin", [("range", "bytes=100-199")]),
    ("GET", "/large.bin", [("range", "bytes=99999999-")]),
    ("GET", "/index.html", [("if-none-match", "*")]),
    ("GET", "/sub", []),
    ("GET", "/missing", []),
    ("GET", "/escape.txt", []),
    ("OPTIONS", "/", []),
    ("DELETE", "/notes.txt", []),
]


@pytest.mark.parametrize(("method", "path", "headers"), CASES)
def test_same_answer_as_over_tcp(
    server: Server, method: str, path: str, headers: list[tuple[str, str]]
) -> None:
    one = _https1(server.port, method, path, headers)
    client = H3Client(server.port)
    try:
        fields = [(n.encode(), v.encode()) for n, v in headers]
        three = client.wait(client.request(path, method, fields))
    finally:
        client.close()
    assert three.status == one.status
    got = {k.decode(): v.decode() for k, v in three.headers.items() if not k.startswith(b":")}
    assert "date" in got
    want = {k: v for k, v in one.headers.items() if k not in _VARYING}
    assert {k: v for k, v in got.items() if k not in _VARYING} == want
    assert three.body == one.body


def test_tcp_answers_advertise_http3(server: Server) -> None:
    one = _https1(server.port, "GET", "/", [])
    assert one.headers["alt-svc"] == f'h3=":{server.port}"; ma=86400'


def test_many_streams_and_a_large_file_on_one_connection(server: Server, site: Path) -> None:
    client = H3Client(server.port)
    try:
        ids = [client.request("/notes.txt") for _ in range(30)]
        assert {client.wait(i).status for i in ids} == {200}
        large = client.get("/large.bin")
    finally:
        client.close()
    assert large.status == 200 and len(large.body) == LARGE_SIZE
    digest = hashlib.sha256((site / "large.bin").read_bytes()).hexdigest()
    assert hashlib.sha256(large.body).hexdigest() == digest


def test_gtlsclient_fetches_the_page(server: Server, site: Path, tmp_path: Path) -> None:
    gtlsclient = shutil.which("gtlsclient")
    assert gtlsclient, "gtlsclient is missing: `make test` installs it (ngtcp2-client)"
    url = f"https://127.0.0.1:{server.port}/index.html"
    result = subprocess.run(
        [gtlsclient, "--exit-on-all-streams-close", "--download", str(tmp_path),
         "127.0.0.1", str(server.port), url],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "index.html").read_bytes() == (site / "index.html").read_bytes()
    deadline = time.monotonic() + 5  # the access log is flushed about once a second
    while '"GET /index.html HTTP/3.0" 200' not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert '"GET /index.html HTTP/3.0" 200' in server.output()


def test_hostile_datagrams_are_dropped_and_the_server_goes_on(server: Server) -> None:
    """Garbage, truncated and oversized datagrams, and an Initial of an unknown version
    (answered with Version Negotiation, RFC 9000 §6): nothing breaks."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for datagram in (b"", b"\x00", os.urandom(40), os.urandom(1400), b"\xc0" + os.urandom(8)):
            sock.sendto(datagram, ("127.0.0.1", server.port))
        unknown = b"\xc0" + b"\x0a\x0a\x0a\x0a" + b"\x08" + os.urandom(8) + b"\x08" + os.urandom(8)
        sock.sendto(unknown.ljust(1200, b"\0"), ("127.0.0.1", server.port))
        negotiation, _ = sock.recvfrom(2048)
        assert negotiation[1:5] == b"\0\0\0\0"  # version 0: Version Negotiation
        assert b"\x00\x00\x00\x01" in negotiation[5:]  # offers QUIC v1
    client = H3Client(server.port)
    try:
        assert client.get("/notes.txt").status == 200
    finally:
        client.close()


@pytest.mark.parametrize("model", QUIC_MODELS)
def test_sigterm_lets_an_http3_download_finish(
    site: Path, scratch: Path, pki: tuple[Path, Path], model: str
) -> None:
    cert, key = pki
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--http3", "--model", model)
    with Server(site, *args, tmp=scratch) as server:
        client = H3Client(server.port)
        stream = client.request("/large.bin")
        server.signal(signal.SIGTERM)
        response = client.wait(stream)
        assert response.status == 200 and len(response.body) == LARGE_SIZE
        client.close()
        assert server.proc.wait(15) == 0


def test_http3_is_refused_where_it_cannot_run() -> None:
    no_tls = lanthorn("--http3", "--port", "0")
    assert no_tls.returncode == 2 and b"http3 needs --tls-cert (tls_cert)" in no_tls.stderr
    threads = lanthorn("--http3", "--tls-cert", "x.pem", "--model", "threads", "--port", "0")
    assert threads.returncode == 2 and b"http3 needs the asyncio or events model" in threads.stderr


def _udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_https_serves_http3_unless_turned_off(
    site: Path, scratch: Path, pki: tuple[Path, Path]
) -> None:
    """HTTP/3 comes with TLS on its own (as with Caddy); --no-http3 leaves UDP alone; a
    model without a UDP path says so at start-up and serves HTTPS over TCP."""
    cert, key = pki
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    with Server(site, *tls, tmp=scratch) as srv:
        client = H3Client(srv.port)
        try:
            assert client.get("/notes.txt").status == 200
        finally:
            client.close()
        assert "HTTP/3 on UDP too" in srv.output()
    with Server(site, *tls, "--no-http3", tmp=scratch) as srv:
        assert "alt-svc" not in _https1(srv.port, "GET", "/", []).headers
        assert _udp_port_free(srv.port)
    with Server(site, *tls, "--model", "threads", tmp=scratch) as srv:
        assert "alt-svc" not in _https1(srv.port, "GET", "/", []).headers
        assert _udp_port_free(srv.port)
        assert "HTTP/3 is off: the threads model has no UDP path" in srv.output()


@pytest.mark.parametrize("model", QUIC_MODELS)
def test_clients_that_move_between_workers_keep_their_downloads(
    site: Path, scratch: Path, pki: tuple[Path, Path], model: str
) -> None:
    """-w 2: each worker has a UDP socket on the port and the kernel picks one by the
    client's address, so a client that changes port lands on either worker. Eight moves
    in one download: the worker that gets a datagram of the other's connection hands it
    over (by the connection ID's first byte), and the file arrives whole. (Without the
    handover, all eight moves would have to land on the owner: 1 chance in 256.)"""
    cert, key = pki
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "-w", "2", "--model", model)
    digest = hashlib.sha256((site / "large.bin").read_bytes()).hexdigest()
    with Server(site, *args, tmp=scratch) as srv:
        for _ in range(2):
            client = H3Client(srv.port)
            try:
                stream = client.request("/large.bin")
                response = client.responses[stream]
                moves, deadline = 0, time.monotonic() + 30
                while not response.ended and time.monotonic() < deadline:
                    client.step()
                    if moves < 8 and len(response.received) > (moves + 1) * LARGE_SIZE // 10:
                        client.rebind()
                        moves += 1
                assert response.ended and moves == 8
                assert client.get("/notes.txt").status == 200  # the connection goes on
            finally:
                client.close()
            assert hashlib.sha256(response.body).hexdigest() == digest
    assert "Traceback" not in srv.output()


def test_a_client_that_changes_address_keeps_its_download(server: Server, site: Path) -> None:
    """A NAT rebinding mid-download (RFC 9000 §9): the client's datagrams come from a new
    port; the connection follows it, and the file arrives whole."""
    client = H3Client(server.port)
    try:
        assert client.get("/notes.txt").status == 200
        stream = client.request("/large.bin")
        client.step()  # some of it arrives on the old path
        assert len(client.responses[stream].body) < LARGE_SIZE  # not all of it
        client.rebind()
        response = client.wait(stream)
        assert client.get("/notes.txt").status == 200  # and the connection goes on
    finally:
        client.close()
    digest = hashlib.sha256((site / "large.bin").read_bytes()).hexdigest()
    assert response.status == 200 and hashlib.sha256(response.body).hexdigest() == digest


def test_quic_retry_validates_addresses_before_any_state(
    site: Path, scratch: Path, pki: tuple[Path, Path], tmp_path: Path
) -> None:
    """--quic-retry: an Initial without a token gets a Retry (smaller than what came),
    so spoofed Initials cost no connection; real clients come back with the token."""
    cert, key = pki
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--http3", "--quic-retry")
    with Server(site, *args, tmp=scratch) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            for _ in range(50):  # a flood of Initials, each from "a new client"
                initial = b"\xc0\x00\x00\x00\x01\x08" + os.urandom(8) + b"\x08" + os.urandom(8)
                sock.sendto((initial + b"\x00\x00").ljust(1200, b"\0"), ("127.0.0.1", server.port))
                retry, _ = sock.recvfrom(2048)
                assert retry[0] & 0xF0 == 0xF0 and len(retry) < 1200  # a Retry, no more
        client = H3Client(server.port)
        try:
            assert client.get("/notes.txt").status == 200
        finally:
            client.close()
        gtlsclient = shutil.which("gtlsclient")
        assert gtlsclient
        result = subprocess.run(
            [gtlsclient, "--exit-on-all-streams-close", "--download", str(tmp_path),
             "127.0.0.1", str(server.port), f"https://127.0.0.1:{server.port}/index.html"],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        assert b"Retry" in result.stderr  # it was asked to come back with a token
        assert (tmp_path / "index.html").read_bytes() == (site / "index.html").read_bytes()


def test_chromium_loads_the_demo_site_over_quic(tmp_path: Path, scratch: Path) -> None:
    """Headless Chromium forced onto QUIC for the origin (it takes a certificate it does
    not trust over QUIC only by its key): the page, its stylesheet, script and image all
    come over HTTP/3, and the script runs."""
    _, cert, key = certs.make(tmp_path)
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--http3", "--access-log", "-")
    with Server(WWW, *args, tmp=scratch) as srv:
        flags = (
            f"--origin-to-force-quic-on=127.0.0.1:{srv.port}",
            f"--ignore-certificate-errors-spki-list={certs.spki_sha256(cert)}",
        )
        with (
            chromium.launch(tmp_path / "profile", *flags) as (_, devtools),
            chromium.open_page(devtools, srv.url("/")) as page,
        ):
            page.until("location.protocol === 'https:' && document.readyState === 'complete'")
            page.until("document.body.innerText.includes('JavaScript ran')")
            protocols = page.evaluate(
                "performance.getEntriesByType('navigation').concat("
                "performance.getEntriesByType('resource')).map(e => [e.name, e.nextHopProtocol])"
            )
            assert len(protocols) >= 4 and all(p == "h3" for _, p in protocols), protocols
        deadline = time.monotonic() + 10  # the access log is flushed about once a second
        while srv.output().count('HTTP/3.0" 200') < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        for asset in ("/", "/css/site.css", "/js/app.js", "/img/lanthorn.png"):
            assert f'"GET {asset} HTTP/3.0" 200 ' in srv.output()
    assert "Traceback" not in srv.output()


@pytest.mark.parametrize("model", QUIC_MODELS)
def test_resumption_and_early_data_across_workers(
    site: Path, scratch: Path, pki: tuple[Path, Path], model: str
) -> None:
    """-w 2: a session ticket one worker issued resumes a connection on either (each new
    client's port makes the kernel pick one; the workers share their tickets). What is
    requested with it goes as 0-RTT early data: a GET is served from it, a POST gets
    425 Too Early (its replay could do harm) and is served once the handshake is done."""
    cert, key = pki
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "-w", "2", "--access-log", "-")
    with Server(site, *args, "--model", model, tmp=scratch) as srv:
        first = H3Client(srv.port)
        try:
            assert first.get("/notes.txt").status == 200
            while not first.tickets:
                first.step()
            assert first.handshake is not None and not first.handshake.session_resumed
        finally:
            first.close()
        ticket = first.tickets[-1]
        for _ in range(6):  # 1 chance in 64 that all land on the issuer
            client = H3Client(srv.port, ticket=ticket)
            try:
                get = client.request("/notes.txt")
                post = client.request("/notes.txt", method="POST")
                assert client.wait(get).status == 200
                assert client.wait(post).status == 425
                assert client.handshake is not None
                assert client.handshake.session_resumed and client.handshake.early_data_accepted
                assert client.wait(client.request("/notes.txt", method="POST")).status == 405
                while not client.tickets:  # a ticket is used once: the next one
                    client.step()
                ticket = client.tickets[-1]
            finally:
                client.close()
        deadline = time.monotonic() + 10  # the access log is flushed about once a second
        while srv.output().count("425") < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert srv.output().count('"POST /notes.txt HTTP/3.0" 425 ') == 6


def test_handshakes_and_idle_connections_are_bounded_in_time(
    site: Path, scratch: Path, pki: tuple[Path, Path]
) -> None:
    """Under --max-connections 1: a client that starts a handshake and goes quiet holds
    its place only until --header-timeout; one that finishes and goes idle, only until
    --keepalive-timeout (QUIC's idle timeout)."""
    cert, key = pki
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--max-connections", "1",
            "--header-timeout", "1", "--keepalive-timeout", "1")  # fmt: skip
    with Server(site, *args, tmp=scratch) as srv:
        quiet = H3Client(srv.port)
        quiet.request("/notes.txt")  # its first flight goes out; it reads nothing back
        blocked = H3Client(srv.port, timeout=0.5)
        with pytest.raises(TimeoutError):
            blocked.get("/notes.txt")  # no room
        blocked.sock.close()
        time.sleep(1.2)
        idle = H3Client(srv.port)
        assert idle.get("/notes.txt").status == 200  # the quiet one is gone
        time.sleep(1.5)  # (the idle one says nothing either)
        late = H3Client(srv.port)
        assert late.get("/notes.txt").status == 200
        late.close()
        quiet.sock.close()
        idle.sock.close()


def test_requests_in_progress_are_bounded_by_h3_max_streams(
    site: Path, scratch: Path, pki: tuple[Path, Path]
) -> None:
    """--h3-max-streams 4: the client may have four requests in progress; its credit grows
    as they finish (not by qh3's doubling), so twelve at once are all served, four at a
    time; a client that opens more than its credit loses the connection
    (STREAM_LIMIT_ERROR, RFC 9000 §4.6)."""
    cert, key = pki
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--h3-max-streams", "4")
    with Server(site, *args, tmp=scratch) as srv:
        client = H3Client(srv.port)
        try:
            assert client.get("/notes.txt").status == 200
            assert client.quic._remote_max_streams_bidi <= 5  # (one finished: one more)
            streams = [client.request("/large.bin") for _ in range(12)]
            responses = [client.wait(stream) for stream in streams]
            assert all(r.status == 200 and len(r.received) == LARGE_SIZE for r in responses)
            assert client.quic._remote_max_streams_bidi <= 13 + 4
        finally:
            client.close()
        greedy = H3Client(srv.port)
        try:
            assert greedy.get("/notes.txt").status == 200
            greedy.quic._remote_max_streams_bidi = 1000  # it pretends it was given more
            for _ in range(8):
                greedy.request("/large.bin")
            with pytest.raises(ConnectionError, match="streams"):
                greedy.wait(greedy.request("/notes.txt"))
        finally:
            greedy.sock.close()
