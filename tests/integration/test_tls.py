"""HTTPS on every model: ALPN picks HTTP/2 or HTTP/1.1, real clients (curl, httpx,
requests, h2load, openssl) verify a certificate chain, and broken or hostile TLS input
costs only its own connection."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests

from tests.conftest import INDEX, LARGE_SIZE, MODELS, STYLES
from tests.integration import observe
from tests.servers import Server


@pytest.fixture(scope="module", params=MODELS)
def tls_server(
    request: pytest.FixtureRequest, site: Path, scratch: Path, pki: tuple[Path, Path, Path]
) -> Iterator[Server]:
    model, workers = request.param
    _, cert, key = pki
    with Server(
        site, "--model", model, "--workers", str(workers), "--access-log", "off",
        "--tls-cert", str(cert), "--tls-key", str(key), tmp=scratch,
    ) as srv:  # fmt: skip
        yield srv
    assert "Traceback" not in srv.output(), srv.output()


def _curl(server: Server, ca: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--cacert", str(ca), *args], capture_output=True, check=True, timeout=60
    )


def test_ready_file_says_https(tls_server: Server) -> None:
    assert tls_server.scheme == "https"


@pytest.mark.parametrize(("flag", "version"), [("--http2", "2"), ("--http1.1", "1.1")])
def test_curl_negotiates_by_alpn(
    tls_server: Server, pki: tuple[Path, Path, Path], site: Path, flag: str, version: str
) -> None:
    ca = pki[0]
    head = _curl(tls_server, ca, flag, "-o", "/dev/null", "-w", "%{http_version}",
                 tls_server.url("/"))  # fmt: skip
    assert head.stdout.decode() == version
    whole = _curl(tls_server, ca, flag, tls_server.url("/large.bin")).stdout
    assert len(whole) == LARGE_SIZE
    assert (
        hashlib.sha256(whole).digest() == hashlib.sha256((site / "large.bin").read_bytes()).digest()
    )
    part = _curl(tls_server, ca, flag, "-r", "100-199,1000-1009", tls_server.url("/large.bin"))
    assert part.stdout.count(b"Content-Range: bytes") == 2


def test_httpx_http2_and_requests_http1(tls_server: Server, pki: tuple[Path, Path, Path]) -> None:
    context = ssl.create_default_context(cafile=str(pki[0]))
    with httpx.Client(http2=True, verify=context, timeout=10) as client:
        response = client.get(tls_server.url("/"))
        assert (response.http_version, response.status_code) == ("HTTP/2", 200)
        assert response.content == INDEX
        styles = client.get(tls_server.url("/styles.css"), headers={"Accept-Encoding": "br"})
        assert styles.headers["content-encoding"] == "br" and styles.content == STYLES
    plain = requests.get(tls_server.url("/index.html"), verify=str(pki[0]), timeout=10)
    assert plain.status_code == 200 and plain.content == INDEX
    assert plain.raw.version == 11


def test_h2load_over_tls(tls_server: Server) -> None:
    result = subprocess.run(
        ["h2load", "-n", "1000", "-c", "4", "-m", "10", tls_server.url("/index.html")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Application protocol: h2" in result.stdout
    assert "1000 succeeded, 0 failed, 0 errored, 0 timeout" in result.stdout


def test_plain_http_to_the_https_port(tls_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith(b"This port speaks HTTPS only.\n")


def test_garbage_handshake_costs_only_itself(
    tls_server: Server, pki: tuple[Path, Path, Path]
) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 100)  # a broken ClientHello
        while sock.recv(4096):
            pass  # an alert, then the close
    response = requests.get(tls_server.url("/notes.txt"), verify=str(pki[0]), timeout=10)
    assert response.content == b"plain text\n"


def test_abandoned_handshake_holds_nobody_else(
    tls_server: Server, pki: tuple[Path, Path, Path]
) -> None:
    # On every model, single included: a connection that has sent nothing to answer
    # waits with the parked ones, not on a thread.
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as half:
        half.sendall(b"\x16\x03\x01")  # the start of a record, then silence
        response = requests.get(tls_server.url("/notes.txt"), verify=str(pki[0]), timeout=10)
        assert response.content == b"plain text\n"


def test_handshake_must_finish_within_the_header_timeout(
    site: Path, scratch: Path, pki: tuple[Path, Path, Path]
) -> None:
    _, cert, key = pki
    args = ["--header-timeout", "1", "--access-log", "off", "--tls-cert", str(cert)]
    with (
        Server(site, *args, "--tls-key", str(key), tmp=scratch) as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock,
    ):
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert 0.9 < time.monotonic() - started < 5


def test_unusable_certificate_is_a_clear_error(
    site: Path, tmp_path: Path, pki: tuple[Path, Path, Path]
) -> None:
    """Each mistake is one line naming the file and what is wrong with it, exit 2."""
    ca, cert, key = pki
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    for options, said in [
        ((str(bogus),), f"TLS certificate {str(bogus)!r} is not a PEM certificate"),
        ((str(cert),), f"TLS certificate {str(cert)!r} holds no private key: give it with"),
        ((str(tmp_path),), f"TLS certificate {str(tmp_path)!r} is a directory"),
        ((str(cert), "--tls-key", str(cert)), f"TLS key {str(cert)!r} is not a PEM private"),
        ((str(ca), "--tls-key", str(key)), f"is not the key of certificate {str(ca)!r}"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "lanthorn", str(site), "--port", "0", "--tls-cert", *options],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_sigterm_finishes_a_tls_download(
    site: Path, scratch: Path, pki: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = pki
    srv = Server(site, "--access-log", "off", "--tls-cert", str(cert), "--tls-key", str(key),
                 tmp=scratch)  # fmt: skip
    try:
        command = ["curl", "-sS", "--cacert", str(ca), "--limit-rate", "2M", srv.url("/large.bin")]
        with subprocess.Popen(command, stdout=subprocess.PIPE) as curl:
            assert curl.stdout is not None
            first = curl.stdout.read(1000)
            srv.signal(signal.SIGTERM)
            rest = curl.stdout.read()
            assert curl.wait(30) == 0
        assert len(first + rest) == LARGE_SIZE
        assert srv.proc.wait(15) == 0
    finally:
        srv.stop()


def test_openssl_sees_alpn_and_the_chain(tls_server: Server, pki: tuple[Path, Path, Path]) -> None:
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{tls_server.port}", "-alpn", "h2",
         "-CAfile", str(pki[0]), "-verify_return_error"],
        input=b"", capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    text = (result.stdout + result.stderr).decode(errors="replace")
    assert "Verify return code: 0 (ok)" in text, text
    assert "ALPN protocol: h2" in text, text


class _TlsClient:
    """TLS over a real socket, driven through memory BIOs so that the test sees exactly
    which records arrive: application data, close_notify, then the TCP close."""

    def __init__(self, port: int, ca: Path) -> None:
        context = ssl.create_default_context(cafile=str(ca))
        context.set_alpn_protocols(["http/1.1"])
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.plain = bytearray()
        self.close_notify = False  # the server's close_notify arrived
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._receive()
        self._flush()

    def _flush(self) -> None:
        if data := self.outgoing.read():
            self.sock.sendall(data)

    def _receive(self) -> bool:
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        self.incoming.write(data)
        return True

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def send_close_notify(self) -> None:
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.unwrap()  # writes close_notify; the server's is read below
        self._flush()

    def read_until_tcp_close(self) -> None:
        """Decrypt everything until the server closes the TCP connection."""
        while self._receive():
            try:
                while chunk := self.tls.read(1 << 16):
                    self.plain += chunk
            except ssl.SSLWantReadError:
                continue
            except ssl.SSLZeroReturnError:
                pass
            self.close_notify = True  # b"" or SSLZeroReturnError: close_notify

    def close(self) -> None:
        self.sock.close()


def test_close_notify_before_the_tcp_close(
    tls_server: Server, pki: tuple[Path, Path, Path]
) -> None:
    """RFC 8446 §6.1: the server ends its side with close_notify, so the client can tell
    a complete response from a truncation."""
    client = _TlsClient(tls_server.port, pki[0])
    try:
        client.send(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        client.read_until_tcp_close()
    finally:
        client.close()
    assert client.plain.startswith(b"HTTP/1.1 200 OK\r\n")
    assert client.plain.endswith(b"\r\n\r\nplain text\n")
    assert client.close_notify


def test_client_close_notify_after_pipelined_requests(
    tls_server: Server, pki: tuple[Path, Path, Path]
) -> None:
    """A client's close_notify right behind keep-alive requests: every request is
    answered, then the server's close_notify and the TCP close come at once (not at
    the 60 s keep-alive timeout)."""
    client = _TlsClient(tls_server.port, pki[0])
    try:
        client.send(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n" * 3)
        client.send_close_notify()
        started = time.monotonic()
        client.read_until_tcp_close()
        took = time.monotonic() - started
    finally:
        client.close()
    assert client.plain.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert client.plain.endswith(b"\r\n\r\nplain text\n")
    assert client.close_notify
    assert took < 5


@pytest.mark.parametrize("model", ["asyncio", "events"])
def test_a_fast_tls_download_does_not_stall_other_clients(
    model: str, site: Path, scratch: Path, pki: tuple[Path, Path, Path]
) -> None:
    """Over TLS a file goes out as many encrypted batches; a socket that takes them all
    at once must not keep the event loop from everyone else."""
    ca, cert, key = pki
    sparse = site / "sparse-tls.bin"
    if not sparse.exists():
        with open(sparse, "wb") as fh:
            fh.truncate(1 << 30)
    args = ["--model", model, "--access-log", "off", "--tls-cert", str(cert), "--tls-key", str(key)]
    context = ssl.create_default_context(cafile=str(ca))
    with (
        Server(site, *args, tmp=scratch) as srv,
        httpx.Client(verify=context, timeout=10) as small,
    ):
        small.get(srv.url("/notes.txt"))  # connected before the download starts
        command = ["curl", "-sS", "--http1.1", "--cacert", str(ca), "-o", "/dev/null"]
        started = time.monotonic()
        worst = 0.0
        with subprocess.Popen([*command, srv.url("/sparse-tls.bin")]) as curl:
            time.sleep(0.1)
            while curl.poll() is None and time.monotonic() - started < 30:
                asked = time.monotonic()
                assert small.get(srv.url("/notes.txt")).content == b"plain text\n"
                worst = max(worst, time.monotonic() - asked)
                time.sleep(0.01)
            assert curl.wait(30) == 0
        took = time.monotonic() - started
    assert took > 0.5  # long enough for the measurement to mean something
    assert worst < 0.25, f"a small request waited {worst:.2f} s during a {took:.1f} s download"


def test_sessions_resume_on_any_prefork_worker(
    site: Path, scratch: Path, pki: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """The workers share one TLS context (built before forking), so a session ticket
    from one worker resumes on the other: every reconnect is "Reused"."""
    ca, cert, key = pki
    session = tmp_path / "session.pem"
    args = ["-w", "2", "--access-log", "off", "--tls-cert", str(cert), "--tls-key", str(key)]

    def connect(*extra: str) -> str:
        result = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}", "-CAfile", str(ca),
             *extra],
            input=b"", capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        return result.stdout.decode(errors="replace")

    with Server(site, *args, tmp=scratch) as srv:
        # The ticket comes after the handshake; s_client writes it to -sess_out as it
        # arrives. Keep s_client connected (stdin open) until the file is complete.
        with subprocess.Popen(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}", "-CAfile", str(ca),
             "-sess_out", str(session)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        ) as first_client:  # fmt: skip
            assert first_client.stdin is not None and first_client.stdout is not None
            try:
                observe.wait_for(
                    lambda: session.exists() and b"END SSL SESSION" in session.read_bytes(),
                    15,
                    "a session ticket",
                )
            finally:
                first_client.stdin.close()
                first = first_client.stdout.read().decode(errors="replace")
                first_client.wait(30)
        assert "New, TLSv1.3" in first
        outcomes = [connect("-sess_in", str(session)) for _ in range(8)]
    assert all("Reused, TLSv1.3" in out for out in outcomes), outcomes
