"""Limits nginx operators rely on (issue 9), on every model and with -w 2: connections per
client address, the request rate per client, the oldest TLS version, and --user."""

from __future__ import annotations

import os
import pwd
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import h2.settings
import pytest
import requests

from tests.conftest import MODELS
from tests.h2client import H2Client
from tests.integration import rawhttp
from tests.integration.conftest import model_server
from tests.servers import Server

GET = b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture(scope="module", params=MODELS)
def capped(request: pytest.FixtureRequest, site: Path, scratch: Path) -> Iterator[Server]:
    yield from model_server(
        request, site, scratch,
        *("--max-conns-per-ip", "2", "--rate-limit", "20/s", "--rate-burst", "4"),
    )  # fmt: skip


def _served(sock: socket.socket) -> int:
    sock.sendall(GET)
    return rawhttp.read_response(sock, bytearray()).status


# Each test is its own client: a source address of its own on loopback, fresh limits.
FIRST, SECOND, THIRD, FOURTH = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"


def test_a_third_connection_from_one_address_gets_503(capped: Server) -> None:
    port = capped.port
    with rawhttp.connect(port, source=FIRST) as one, rawhttp.connect(port, source=FIRST) as two:
        assert _served(one) == 200 and _served(two) == 200  # both counted, on any worker
        with rawhttp.connect(port, source=FIRST) as three:
            three.sendall(GET)
            response = rawhttp.read_response(three, bytearray())
            assert response.status == 503
            assert response.headers["connection"] == "close"
            assert rawhttp.read_until_closed(three) == b""
        with H2Client(port, source=FIRST) as h2c:  # over HTTP/2: GOAWAY before any stream
            h2c.until_closed()
            assert h2c.goaway is not None and h2c.goaway.last_stream_id == 0
        with rawhttp.connect(port, source=SECOND) as other:
            assert _served(other) == 200  # another address is not affected
    deadline = time.monotonic() + 5
    while True:  # the two closed: a new connection is admitted once the server noticed
        with rawhttp.connect(port, source=FIRST) as again:
            status = _served(again)
        if status == 200 or time.monotonic() > deadline:
            break
    assert status == 200


def test_closed_http2_connections_are_released(capped: Server) -> None:
    """Each HTTP/2 connection counts while open and not after: three in turn from one
    address, then two more over HTTP/1.1 at once, all under --max-conns-per-ip 2."""
    for _ in range(3):
        with H2Client(capped.port, source=FOURTH) as client:
            assert client.wait(client.request("/notes.txt")).status == 200
    deadline = time.monotonic() + 5
    while True:  # the server notices the closes within a moment
        with (
            rawhttp.connect(capped.port, source=FOURTH) as one,
            rawhttp.connect(capped.port, source=FOURTH) as two,
        ):
            statuses = (_served(one), _served(two))
        if statuses == (200, 200) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert statuses == (200, 200)


def test_past_the_rate_429_with_retry_after_over_both_protocols(capped: Server) -> None:
    with rawhttp.connect(capped.port, source=THIRD) as sock:
        sock.sendall(GET * 12)
        buffer = bytearray()
        statuses = [rawhttp.read_response(sock, buffer) for _ in range(12)]
    assert [r.status for r in statuses[:5]] == [200] * 5  # one plus the burst of 4
    refused = [r for r in statuses if r.status == 429]
    assert len(refused) >= 5
    assert refused[0].headers["retry-after"] == "1"
    with H2Client(capped.port, source=THIRD) as client:  # the same client, over HTTP/2
        ids = [client.request("/notes.txt") for _ in range(12)]
        replies = [client.wait(i) for i in ids]
    assert any(r.status == 429 and r.headers["retry-after"] == "1" for r in replies)


# --- TLS --------------------------------------------------------------------------------------


def _handshake(port: int, ca: Path, version: ssl.TLSVersion, ciphers: str = "") -> str:
    """Connect with exactly TLS `version` (and, if given, only those TLS 1.2 suites)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    context.minimum_version = context.maximum_version = version
    if ciphers:
        context.set_ciphers(ciphers)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        return str(tls.version())


def test_tls_12_with_forward_secret_aead_suites_and_13_only_when_asked(
    site: Path, scratch: Path, pki: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = pki
    tls = ("--tls-cert", str(cert), "--tls-key", str(key), "--access-log", "off")
    with Server(site, *tls, tmp=scratch) as srv:
        assert _handshake(srv.port, ca, ssl.TLSVersion.TLSv1_2, "ECDHE+AESGCM") == "TLSv1.2"
        assert _handshake(srv.port, ca, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        with pytest.raises(ssl.SSLError):  # RSA key exchange, CBC: no forward secrecy
            _handshake(
                srv.port, ca, ssl.TLSVersion.TLSv1_2, "AES128-SHA:AES256-SHA:AES128-GCM-SHA256"
            )
    with Server(site, *tls, "--tls-min", "1.3", tmp=scratch) as srv:
        assert _handshake(srv.port, ca, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        with pytest.raises(ssl.SSLError):
            _handshake(srv.port, ca, ssl.TLSVersion.TLSv1_2)


# --- --user -----------------------------------------------------------------------------------


def _worker_uids(pid: int) -> set[int]:
    """The real uids of `pid` and its children (prefork workers)."""
    pids = {pid}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            if fields.get("PPid", "").strip() == str(pid):
                pids.add(int(entry))
    uids = set()
    for each in pids:
        status = Path(f"/proc/{each}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("Uid:"))
        uids.add(int(line.split()[1]))
    return uids


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root (CI runs as root)")
@pytest.mark.parametrize("workers", [1, 2])
def test_user_drops_root_once_bound(workers: int) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    public = Path(tempfile.mkdtemp(prefix="lanthorn-user-"))
    try:
        public.chmod(0o777)  # nobody writes the ready file here, and reads the site
        root = public / "www"
        root.mkdir()
        (root / "index.html").write_bytes(b"as nobody\n")
        root.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        args = ("--user", "nobody", "--workers", str(workers), "--access-log", "off")
        with Server(root, *args, tmp=public) as srv:
            assert requests.get(srv.url("/"), timeout=10).content == b"as nobody\n"
            uids = _worker_uids(srv.proc.pid)
            if workers == 1:
                assert uids == {nobody}
            else:
                assert nobody in uids  # the workers; the supervisor keeps root
    finally:
        for path in sorted(public.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() else path.rmdir()
        public.rmdir()


def test_an_unknown_user_is_a_clear_error(site: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lanthorn", str(site), "--port", "0", "--user", "no-such-user"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "lanthorn: error: no such user 'no-such-user'" in proc.stderr


# --- the memory budget -------------------------------------------------------------------------


def _fresh_status(port: int) -> int:
    with rawhttp.connect(port) as sock:
        return _served(sock)


@pytest.mark.parametrize("model", ["asyncio", "events", "threads", "single"])
def test_readers_that_stall_spend_the_budget_and_others_get_503_not_memory(
    site: Path, scratch: Path, model: str
) -> None:
    """HTTP/2 downloads with wide-open windows that the clients never read: each holds a
    batch in the server. Past --memory-budget, others get 503; when they go, 200."""
    big = h2.settings.SettingCodes.INITIAL_WINDOW_SIZE
    args = ("--model", model, "--memory-budget", "300k", "--access-log", "off")
    with Server(site, *args, tmp=scratch) as srv:
        stalled = []
        try:
            deadline = time.monotonic() + 10
            status = 200
            while status == 200 and time.monotonic() < deadline:
                client = H2Client(srv.port, {big: 2**31 - 1})
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                client.conn.increment_flow_control_window(2**30)
                client.request("/large.bin")
                stalled.append(client)
                status = _fresh_status(srv.port)
            assert status == 503
        finally:
            for client in stalled:
                client.sock.close()
        deadline = time.monotonic() + 10
        while status != 200 and time.monotonic() < deadline:
            status = _fresh_status(srv.port)
        assert status == 200
