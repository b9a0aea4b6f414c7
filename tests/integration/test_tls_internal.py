"""--tls internal for real: the server makes its local CA once, presents a certificate
curl, Python's ssl, httpx, aioquic and Chromium accept once they trust that CA (and
only then), says in its log how to trust it, and renews the certificate while it runs:
new handshakes get the new one, connections made before go on."""

from __future__ import annotations

import datetime
import http.client
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests import certs
from tests.conftest import INDEX
from tests.integration import chromium
from tests.integration.conftest import model_server
from tests.integration.h3client import H3Client
from tests.servers import Server

WWW = Path(__file__).resolve().parents[2] / "www"
SERVERS = [
    pytest.param(("asyncio", 1), id="asyncio"),
    pytest.param(("threads", 1), id="threads"),
    pytest.param(("events", 2), id="events-w2"),
]


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data") / "lanthorn" / "ca"


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest, site: Path, scratch: Path, ca_dir: Path
) -> Iterator[Server]:
    yield from model_server(
        request, site, scratch, "--tls", "internal", "--tls-ca-dir", str(ca_dir)
    )


def _internal(root: Path, scratch: Path, ca_dir: Path, *args: str) -> Server:
    return Server(root, "--tls", "internal", "--tls-ca-dir", str(ca_dir), *args, tmp=scratch)


@pytest.mark.parametrize(("flag", "version"), [("--http2", "2"), ("--http1.1", "1.1")])
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_curl_trusts_the_certificate_with_the_ca(
    server: Server, ca_dir: Path, flag: str, version: str, host: str
) -> None:
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(ca_dir / "ca.pem"), flag, "-w", "%{http_version}",
         f"https://{host}:{server.port}/"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == INDEX + version.encode()


def test_curl_refuses_it_with_another_ca(server: Server, tmp_path: Path) -> None:
    other, _, _ = certs.make(tmp_path)
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(other), f"https://localhost:{server.port}/"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 60, result.stderr  # the peer's certificate is not trusted


def test_python_clients_verify_against_the_ca(server: Server, ca_dir: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca_dir / "ca.pem"))
    with httpx.Client(http2=True, verify=context, timeout=10) as client:
        response = client.get(f"https://localhost:{server.port}/")
    assert (response.http_version, response.status_code) == ("HTTP/2", 200)
    assert response.content == INDEX
    leaf = _certificate(server.port, context)
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    assert leaf.issuer == ca.subject
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc < datetime.timedelta(days=2)


def test_the_log_says_where_the_ca_is_and_how_to_trust_it(server: Server, ca_dir: Path) -> None:
    log = server.output()
    ca = ca_dir / "ca.pem"
    assert "local CA 'lanthorn Local CA - " in log and f": {ca}\n" in log
    assert f"curl --cacert {ca} https://localhost:{server.port}/" in log
    assert "/usr/local/share/ca-certificates/lanthorn.crt && sudo update-ca-certificates" in log
    assert f"certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n lanthorn -i {ca}" in log


def test_the_ca_is_made_once(site: Path, scratch: Path, tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    with _internal(site, scratch, ca_dir):
        made = (ca_dir / "ca.pem").read_bytes(), (ca_dir / "ca.key").read_bytes()
    assert (ca_dir.stat().st_mode & 0o777, (ca_dir / "ca.key").stat().st_mode & 0o777) == (
        0o700,
        0o600,
    )
    with _internal(site, scratch, ca_dir) as again:
        assert ((ca_dir / "ca.pem").read_bytes(), (ca_dir / "ca.key").read_bytes()) == made
        assert "Traceback" not in again.output()


def test_the_ca_directory_defaults_to_the_users_data_directory(
    site: Path, scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with Server(site, "--tls", "internal", "--access-log", "off", tmp=scratch) as srv:
        assert str(tmp_path / "xdg" / "lanthorn" / "ca" / "ca.pem") in srv.output()
    assert (tmp_path / "xdg" / "lanthorn" / "ca" / "ca.key").exists()


def test_mistakes_are_one_line_and_exit_2(site: Path, tmp_path: Path) -> None:
    both = subprocess.run(
        [sys.executable, "-m", "lanthorn", str(site), "--tls", "internal", "--tls-cert", "x.pem"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert both.returncode == 2
    assert both.stderr == (
        b"lanthorn: error: tls internal issues its own certificate: drop it or "
        b"--tls-cert (tls_cert)\n"
    )
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    unwritable = subprocess.run(
        [sys.executable, "-m", "lanthorn", str(site), "--tls", "internal", "--tls-ca-dir",
         str(blocked / "ca")],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert unwritable.returncode == 2 and unwritable.stderr.count(b"\n") == 1
    assert b"lanthorn: error: local CA in " in unwritable.stderr, unwritable.stderr


def _certificate(port: int, context: ssl.SSLContext) -> x509.Certificate:
    """The certificate a new TLS connection to `port` gets (verified by `context`)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")


def _serial(port: int, context: ssl.SSLContext) -> int:
    return _certificate(port, context).serial_number


def _quic_serial(port: int, ca: Path) -> int:
    """The serial of the certificate a new QUIC connection gets (verified against `ca`),
    after an HTTP/3 request on it."""
    h3 = H3Client(port, cafile=str(ca))
    try:
        assert h3.get("/").body == INDEX
        assert h3.peer_certificate is not None
        return h3.peer_certificate.serial_number
    finally:
        h3.close()


def _changes(serial: Callable[[], int], first: int) -> int:
    """`serial()` once it is not `first` (each worker renews on its own tick, so one may
    be a moment behind another)."""
    deadline = time.monotonic() + 10
    while (now := serial()) == first and time.monotonic() < deadline:
        time.sleep(0.2)
    return now


@pytest.mark.parametrize("model", ["asyncio", "threads", "events-w2"])
def test_the_certificate_is_renewed_while_serving(
    model: str, site: Path, scratch: Path, ca_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an 8-second certificate (renewed after about 5.3 s): a connection made
    before the renewal goes on after it; new handshakes, over TCP and QUIC, get a new
    certificate that verifies; the log says so. (Each worker renews on its own tick: the
    2.7 s between renewal and expiry leave a loaded machine room for the slower one; 4 s
    left 1.3 s, which a full suite run once did not keep.)"""
    monkeypatch.setenv("LANTHORN_TLS_INTERNAL_LIFETIME_S", "8")
    name, _, workers = model.partition("-w")
    args = ("--model", name, "--workers", workers or "1", "--access-log", "off")
    with _internal(site, scratch, ca_dir, *args) as srv:
        context = ssl.create_default_context(cafile=str(ca_dir / "ca.pem"))
        before = http.client.HTTPSConnection("localhost", srv.port, context=context, timeout=10)
        before.request("GET", "/")
        assert before.getresponse().read() == INDEX
        first = _serial(srv.port, context)
        quic = name != "threads"
        if quic:
            assert _quic_serial(srv.port, ca_dir / "ca.pem") == first
        assert _changes(lambda: _serial(srv.port, context), first) != first, srv.output()
        before.request("GET", "/")  # the same connection, made with the old certificate
        assert before.getresponse().read() == INDEX
        before.close()
        after = http.client.HTTPSConnection("localhost", srv.port, context=context, timeout=10)
        after.request("GET", "/")
        assert after.getresponse().read() == INDEX
        after.close()
        if quic:
            assert _changes(lambda: _quic_serial(srv.port, ca_dir / "ca.pem"), first) != first
        assert "renewed the local TLS certificate (serial " in srv.output()
    assert "Traceback" not in srv.output(), srv.output()


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_chromium_loads_the_demo_site_once_the_ca_is_trusted(
    trusted: bool, tmp_path: Path, scratch: Path, ca_dir: Path
) -> None:
    """Headless Chromium checking certificates (no --ignore-certificate-errors), with
    the CA added to its NSS database by the command the log gives: the demo page, its
    stylesheet, script and image load over HTTPS. Without the CA: an error page."""
    with _internal(WWW, scratch, ca_dir, "--access-log", "off") as srv:
        ca = ca_dir / "ca.pem" if trusted else None
        home = chromium.trusting_home(tmp_path / "home", ca)
        url = f"https://localhost:{srv.port}/"
        with (
            chromium.launch(tmp_path / "profile", home=home) as (_, devtools),
            chromium.open_page(devtools, url) as page,
        ):
            if not trusted:
                page.until("location.href.startsWith('chrome-error://')")
                return
            page.until("document.body.innerText.includes('JavaScript ran')")
            assert page.evaluate("location.href") == url
            entries = page.evaluate(
                "performance.getEntries().filter(e => e.nextHopProtocol)"
                ".map(e => [e.name, e.nextHopProtocol])"
            )
            assert len(entries) >= 4 and all(p in ("h2", "h3") for _, p in entries), entries


def test_chromium_verifies_the_certificate_over_quic_too(
    tmp_path: Path, scratch: Path, ca_dir: Path
) -> None:
    """Forced onto QUIC for the origin, Chromium checks the certificate the QUIC
    configuration was given against the CA in its NSS database (no key exemption, as
    tests with their own certificates need): everything comes over HTTP/3. Chromium does
    not take Alt-Svc from a server whose CA is not a public one (its QUIC handshake then
    fails "certificate unknown" and it stays on HTTP/2), hence the flag."""
    with _internal(WWW, scratch, ca_dir, "--access-log", "off") as srv:
        home = chromium.trusting_home(tmp_path / "home", ca_dir / "ca.pem")
        url = f"https://127.0.0.1:{srv.port}/"  # QUIC to localhost went to ::1: not listened on
        force = f"--origin-to-force-quic-on=127.0.0.1:{srv.port}"
        with (
            chromium.launch(tmp_path / "profile", force, home=home) as (_, devtools),
            chromium.open_page(devtools, url) as page,
        ):
            page.until("document.body.innerText.includes('JavaScript ran')")
            entries = page.evaluate(
                "performance.getEntries().filter(e => e.nextHopProtocol)"
                ".map(e => [e.name, e.nextHopProtocol])"
            )
            assert len(entries) >= 4 and all(p == "h3" for _, p in entries), entries


def test_listeners_http_and_https_at_once(site: Path, scratch: Path, ca_dir: Path) -> None:
    """With several listeners, the HTTPS one presents the local CA's certificate, the
    cleartext one redirects there, and the log's curl command names the HTTPS port."""
    with _internal(
        site, scratch, ca_dir, "--listen", "redirect:127.0.0.1:0",
        "--listen", "tls:127.0.0.1:0", "--access-log", "off",
    ) as srv:  # fmt: skip
        addresses = srv.info["addresses"]
        assert isinstance(addresses, list)
        assert [a["scheme"] for a in addresses] == ["http", "https"]
        http, https = (a["port"] for a in addresses)
        result = subprocess.run(
            ["curl", "-sS", "-L", "--cacert", str(ca_dir / "ca.pem"), "-w", "%{url_effective}",
             f"http://localhost:{http}/"],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout == INDEX + f"https://localhost:{https}/".encode()
        assert f"curl --cacert {ca_dir / 'ca.pem'} https://localhost:{https}/" in srv.output()
