"""SIGHUP reloads a server of several workers without dropping anything: new workers
start on the configuration read again, the old ones drain (nginx's way); a mistake in
the new configuration leaves the old one serving. Checked under `wrk` load."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from lanthorn.bench.load import parse_wrk
from tests import certs
from tests.conftest import LARGE_SIZE
from tests.servers import Server

MIGRATE = Path("/proc/sys/net/ipv4/tcp_migrate_req")


@pytest.fixture
def migrate_requests() -> Iterator[None]:
    """Linux ≥ 5.14 moves connections still queued on a closing SO_REUSEPORT listener
    to another listener of the port, instead of resetting them: the setting docs/
    operations.md asks for when reloads must drop nothing (a client connecting in the
    instant an old worker closes its listener). Set for the test where it can be, then
    put back."""
    before = MIGRATE.read_text() if MIGRATE.exists() else None
    with contextlib.suppress(OSError):
        MIGRATE.write_text("1")
    yield
    if before is not None:
        with contextlib.suppress(OSError):
            MIGRATE.write_text(before)


def _config(path: Path, generation: str, *extra: str) -> None:
    path.write_text("\n".join(["[site]", f'headers = ["X-Generation: {generation}"]', *extra]))


def _generation(server: Server) -> str:
    return requests.get(server.url("/notes.txt"), timeout=10).headers["X-Generation"]


def _wait_for(server: Server, text: str, count: int = 1) -> None:
    deadline = time.monotonic() + 20
    while server.output().count(text) < count:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)


@pytest.mark.parametrize("model", ["asyncio", "events", "threads"])
@pytest.mark.usefixtures("migrate_requests")
def test_reloads_under_load_drop_nothing(
    model: str, site: Path, scratch: Path, tmp_path: Path
) -> None:
    """wrk keeps 20 keep-alive connections busy across three reloads: no failed request,
    no reset connection, and the new configuration serves."""
    toml = tmp_path / "lanthorn.toml"
    _config(toml, "one")
    with Server(
        site, "--config", str(toml), "-w", "2", "--model", model, "--access-log", "off",
        tmp=scratch,
    ) as srv:  # fmt: skip
        argv = ["wrk", "-t2", "-c20", "-d5s", "--timeout", "5s", srv.url("/notes.txt")]
        load = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        for reload, generation in enumerate(("two", "three", "four"), start=1):
            _config(toml, generation)
            srv.signal(signal.SIGHUP)
            _wait_for(srv, "reloaded:", reload)
            time.sleep(0.8)
        out, _ = load.communicate(timeout=30)
        result = parse_wrk(out, " ".join(argv))
        assert result.requests > 1000 and result.errors == 0, out
        assert _generation(srv) == "four"
    assert "Traceback" not in srv.output(), srv.output()


def test_a_download_survives_a_reload(site: Path, scratch: Path, tmp_path: Path) -> None:
    """The old worker serving a slow download keeps it until it is done (within the
    grace period), then exits."""
    toml = tmp_path / "lanthorn.toml"
    _config(toml, "one")
    with Server(site, "--config", str(toml), "-w", "2", "--access-log", "off", tmp=scratch) as srv:
        got: list[int] = []

        def download() -> None:
            argv = ["curl", "-sS", "--limit-rate", "1M", "-o", "/dev/null",
                    "-w", "%{size_download}", srv.url("/large.bin")]  # fmt: skip
            got.append(int(subprocess.run(argv, capture_output=True, text=True, check=True).stdout))

        slow = threading.Thread(target=download)
        slow.start()
        time.sleep(0.5)
        _config(toml, "two")
        srv.signal(signal.SIGHUP)
        _wait_for(srv, "reloaded:")
        assert _generation(srv) == "two"
        slow.join(30)
        assert got == [LARGE_SIZE]


def test_a_broken_configuration_keeps_the_old_one(
    site: Path, scratch: Path, tmp_path: Path
) -> None:
    toml = tmp_path / "lanthorn.toml"
    _config(toml, "one")
    with Server(site, "--config", str(toml), "-w", "2", "--access-log", "off", tmp=scratch) as srv:
        toml.write_text("[site\n")  # not TOML
        srv.signal(signal.SIGHUP)
        _wait_for(srv, "reload failed, the old configuration keeps serving")
        _config(toml, "two", "[limits]", "grace_s = -1")  # TOML, but not valid
        srv.signal(signal.SIGHUP)
        _wait_for(srv, "reload failed, the old configuration keeps serving", 2)
        _config(toml, "two", "[server]", 'listen = ["127.0.0.2:0"]')  # listeners differ
        srv.signal(signal.SIGHUP)
        _wait_for(srv, "listeners change only with a restart")
        assert _generation(srv) == "one"
        _config(toml, "two")
        srv.signal(signal.SIGHUP)
        _wait_for(srv, "reloaded:")
        assert _generation(srv) == "two"
    assert "Traceback" not in srv.output(), srv.output()


def test_one_process_re_reads_its_certificate(site: Path, scratch: Path, tmp_path: Path) -> None:
    """-w 1 cannot replace itself: SIGHUP re-reads the certificate files in place
    (certbot's deploy hook), and a broken pair keeps the old one."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = certs.make(tmp_path / "one"), certs.make(tmp_path / "two")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(first[1], cert)
    shutil.copy(first[2], key)
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--access-log", "off")
    with Server(site, *args, tmp=scratch) as srv:
        assert _serial(srv.port) == _serial_of(first[1])
        shutil.copy(second[1], cert)
        shutil.copy(second[2], key)
        srv.signal(signal.SIGHUP)
        _wait_for(srv, "certificate re-read from")
        assert _serial(srv.port) == _serial_of(second[1])
        key.write_text(first[2].read_text())  # not this certificate's key
        srv.signal(signal.SIGHUP)
        _wait_for(srv, "certificate not re-read, the old one stays")
        assert _serial(srv.port) == _serial_of(second[1])
        assert requests.get(srv.url("/notes.txt"), verify=str(second[0]), timeout=10).ok
    assert "Traceback" not in srv.output(), srv.output()


@pytest.mark.parametrize("model", ["asyncio", "events", "threads", "single"])
def test_one_process_reloads_in_place(
    model: str, site: Path, scratch: Path, tmp_path: Path
) -> None:
    """-w 1: the site, limits and headers change for the next request, on every
    listener; what only a restart can change is named and kept; a broken file changes
    nothing."""
    toml = tmp_path / "lanthorn.toml"
    _config(toml, "one")
    with Server(
        site, "--config", str(toml), "--model", model, "--access-log", "off",
        "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", tmp=scratch,
    ) as srv:  # fmt: skip
        ports = [a["port"] for a in srv.info["addresses"]]  # type: ignore[attr-defined]
        _config(toml, "two", "[limits]", "max_url_bytes = 64", "max_conns_per_ip = 5")
        srv.signal(signal.SIGHUP)
        _wait_for(srv, "reloaded in place")
        for port in ports:
            url = f"http://127.0.0.1:{port}/notes.txt"
            assert requests.get(url, timeout=10).headers["X-Generation"] == "two"
            assert requests.get(url + "?" + "x" * 80, timeout=10).status_code == 414
        assert "only a restart (or -w 2) applies: limits.max_conns_per_ip" in srv.output()
        toml.write_text("[site\n")
        srv.signal(signal.SIGHUP)
        _wait_for(srv, "reload failed, the old configuration keeps serving")
        assert _generation(srv) == "two"
    assert "Traceback" not in srv.output(), srv.output()


def _serial(port: int) -> int:
    """The serial number of the certificate a new handshake gets."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _serial_of(pem: Path) -> int:
    return x509.load_pem_x509_certificate(pem.read_bytes()).serial_number
