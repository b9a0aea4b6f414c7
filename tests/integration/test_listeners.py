"""Several listeners in one server: cleartext and HTTPS at once, a cleartext listener
that redirects to HTTPS, listeners behind a balancer's PROXY protocol header, and the
client a trusted proxy names — with curl and raw sockets."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import INDEX
from tests.servers import Server

LISTENER_MODELS = [
    pytest.param(("asyncio", 1), id="asyncio"),
    pytest.param(("events", 1), id="events"),
    pytest.param(("threads", 1), id="threads"),
    pytest.param(("asyncio", 2), id="asyncio-w2"),
]
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.fixture(scope="module", params=LISTENER_MODELS)
def doors(
    request: pytest.FixtureRequest, site: Path, scratch: Path, pki: tuple[Path, Path, Path]
) -> Iterator[tuple[Server, dict[str, int], Path]]:
    """A server with four listeners: cleartext, HTTPS, a cleartext one that redirects
    there, and a cleartext one behind a PROXY protocol header; its ports by name, and
    its access log."""
    model, workers = request.param
    _, cert, key = pki
    log = scratch / f"access-{model}-{workers}.log"
    with Server(
        site, "--model", model, "--workers", str(workers), "--access-log", str(log),
        "--tls-cert", str(cert), "--tls-key", str(key), "--no-http3",
        "--listen", "127.0.0.1:0", "--listen", "tls:127.0.0.1:0",
        "--listen", "redirect:127.0.0.1:0", "--listen", "proxy:127.0.0.1:0",
        tmp=scratch,
    ) as srv:  # fmt: skip
        addresses = srv.info["addresses"]
        assert isinstance(addresses, list)
        names = ("plain", "tls", "redirect", "proxy")
        assert [a["scheme"] for a in addresses] == ["http", "https", "http", "http"]
        yield srv, {name: a["port"] for name, a in zip(names, addresses, strict=True)}, log
    assert "Traceback" not in srv.output(), srv.output()


def _curl(*args: str) -> str:
    done = subprocess.run(["curl", "-sS", *args], capture_output=True, check=True, timeout=30)
    return done.stdout.decode()


def _exchange(port: int, data: bytes) -> bytes:
    """Send `data`, then read until the server closes (or 5 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def _logged(log: Path, needle: str) -> str:
    deadline = time.monotonic() + 10  # the access log is flushed about once a second
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines() if log.exists() else []:
            if needle in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"no {needle!r} in the access log: {log.read_text()}")


def test_cleartext_and_https_at_once(
    doors: tuple[Server, dict[str, int], Path], pki: tuple[Path, Path, Path]
) -> None:
    _, ports, _ = doors
    ca = str(pki[0])
    assert _curl(f"http://127.0.0.1:{ports['plain']}/").encode() == INDEX
    assert _curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version}",
                 f"http://127.0.0.1:{ports['plain']}/") == "2"  # fmt: skip
    https = f"https://localhost:{ports['tls']}/"
    assert _curl("--cacert", ca, https).encode() == INDEX
    assert (
        _curl("--cacert", ca, "--http2", "-o", "/dev/null", "-w", "%{http_version}", https) == "2"
    )
    # Each listener speaks only its own protocol.
    assert not _exchange(ports["tls"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
        b"HTTP/1.1 200"
    )


def test_redirect_to_https_keeps_path_and_query(doors: tuple[Server, dict[str, int], Path]) -> None:
    _, ports, _ = doors
    base = f"http://localhost:{ports['redirect']}"
    head = _curl("-i", "-X", "POST", "-d", "x=1", f"{base}/notes.txt?a=1&b=2")
    assert head.startswith("HTTP/1.1 308 Permanent Redirect\r\n")
    assert f"Location: https://localhost:{ports['tls']}/notes.txt?a=1&b=2\r\n" in head
    h2 = _curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
               f"{base}/")  # fmt: skip
    assert h2 == f"308 https://localhost:{ports['tls']}/"


def test_redirect_then_follow(
    doors: tuple[Server, dict[str, int], Path], pki: tuple[Path, Path, Path]
) -> None:
    _, ports, _ = doors
    body = _curl("-L", "--cacert", str(pki[0]), f"http://localhost:{ports['redirect']}/")
    assert body.encode() == INDEX


def test_acme_challenges_are_not_redirected(
    doors: tuple[Server, dict[str, int], Path], site: Path
) -> None:
    _, ports, _ = doors
    challenge = site / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True, exist_ok=True)
    (challenge / "token-1").write_text("token-1.thumbprint")
    url = f"http://localhost:{ports['redirect']}/.well-known/acme-challenge/token-1"
    assert _curl("-f", url) == "token-1.thumbprint"


def test_proxy_protocol_v1_and_v2_name_the_client(
    doors: tuple[Server, dict[str, int], Path],
) -> None:
    _, ports, log = doors
    request = b"GET /notes.txt?v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    v1 = b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 80\r\n"
    assert _exchange(ports["proxy"], v1 + request).startswith(b"HTTP/1.1 200 OK\r\n")
    assert _logged(log, "/notes.txt?v1").startswith("203.0.113.9 ")
    body = socket.inet_pton(socket.AF_INET6, "2001:db8::9") + bytes(16) + b"\x9c\x40\x00\x50"
    v2 = V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x21, len(body)) + body
    request2 = request.replace(b"?v1", b"?v2")
    # The header and the request in separate writes: the header may arrive in pieces.
    with socket.create_connection(("127.0.0.1", ports["proxy"]), timeout=5) as sock:
        sock.sendall(v2[:7])
        time.sleep(0.05)
        sock.sendall(v2[7:] + request2)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    assert _logged(log, "/notes.txt?v2").startswith("2001:db8::9 ")


def test_proxy_protocol_listener_refuses_what_has_no_header(
    doors: tuple[Server, dict[str, int], Path],
) -> None:
    _, ports, _ = doors
    assert _exchange(ports["proxy"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    assert _exchange(ports["proxy"], b"PROXY TCP4 nonsense\r\nGET / HTTP/1.1\r\n\r\n") == b""
    # curl's own PROXY v1 header, then HTTP/2 with prior knowledge.
    out = _curl("--haproxy-protocol", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                "%{http_code} %{http_version}", f"http://127.0.0.1:{ports['proxy']}/")  # fmt: skip
    assert out == "200 2"


def test_proxy_protocol_before_tls(
    site: Path, scratch: Path, pki: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    ca, cert, key = pki
    log = tmp_path / "access.log"
    with Server(
        site, "--listen", "proxy:tls:127.0.0.1:0", "--tls-cert", str(cert), "--tls-key",
        str(key), "--access-log", str(log), tmp=scratch,
    ) as srv:  # fmt: skip
        url = f"https://localhost:{srv.port}/notes.txt?tls"
        out = _curl("--haproxy-protocol", "--cacert", str(ca), "--http2", "-o", "/dev/null",
                    "-w", "%{http_code} %{http_version}", url)  # fmt: skip
        assert out == "200 2"
        assert _logged(log, "/notes.txt?tls").startswith("127.0.0.1 ")
    assert "Traceback" not in srv.output()


def test_trusted_proxy_names_the_client(site: Path, scratch: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    with Server(
        site, "--trusted-proxy", "127.0.0.0/8", "--access-log", str(log), tmp=scratch
    ) as srv:
        _curl("-H", "X-Forwarded-For: 198.51.100.20, 127.0.0.5", srv.url("/notes.txt?xff"))
        _curl("-H", 'Forwarded: for="[2001:db8::20]:1234"', srv.url("/notes.txt?fwd"))
        _curl("-H", "X-Forwarded-For: junk", srv.url("/notes.txt?junk"))
        assert _logged(log, "?xff").startswith("198.51.100.20 ")
        assert _logged(log, "?fwd").startswith("2001:db8::20 ")
        assert _logged(log, "?junk").startswith("127.0.0.1 ")
    with Server(site, "--access-log", str(log), tmp=scratch) as srv:  # no proxy trusted
        _curl("-H", "X-Forwarded-For: 198.51.100.20", srv.url("/notes.txt?untrusted"))
        assert _logged(log, "?untrusted").startswith("127.0.0.1 ")
