"""The TLS layer in memory: a real handshake against ssl's client side over memory BIOs,
ALPN, bodies encrypted a batch at a time, close_notify, and handshake deadlines."""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from lanthorn.config import Config, Limits, ServerConfig, SiteConfig
from lanthorn.driver import Service, connect
from lanthorn.driver.contract import BATCH_BYTES, CLOSE, Action
from lanthorn.driver.negotiate import Link
from lanthorn.driver.tls import TlsSession
from lanthorn.engines import tlscontext

BIG = bytes(range(256)) * 4096  # 1 MiB: several batches


@pytest.fixture
def service(tmp_path: Path, pki: tuple[Path, Path, Path]) -> Iterator[Service]:
    (tmp_path / "a.txt").write_bytes(b"hello")
    (tmp_path / "big.bin").write_bytes(BIG)
    config = Config(
        server=ServerConfig(access_log="off", tls_cert=str(pki[1]), tls_key=str(pki[2])),
        site=SiteConfig(root=str(tmp_path)),
        limits=Limits(header_timeout_s=10, keepalive_timeout_s=20, send_timeout_s=30),
    )
    service = Service(config, tlscontext.context(str(pki[1]), str(pki[2])))
    yield service
    service.close()


class Client:
    def __init__(self, ca: Path, alpn: list[str]) -> None:
        context = ssl.create_default_context(cafile=str(ca))
        context.set_alpn_protocols(alpn)
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.closed = False  # close_notify received

    def step(self) -> bytes:
        """Advance the handshake; what to send the server."""
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.do_handshake()
        return self.outgoing.read()

    def receive(self, actions: list[Action]) -> bytes:
        for action in actions:
            if isinstance(action, bytes):
                self.incoming.write(action)
        plain = b""
        try:
            while chunk := self.tls.read(1 << 20):
                plain += chunk
            self.closed = True  # b"": close_notify
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self.closed = True
        return plain

    def send(self, data: bytes) -> bytes:
        self.tls.write(data)
        return self.outgoing.read()


def _handshake(service: Service, ca: Path, alpn: list[str]) -> tuple[TlsSession, Client]:
    link = connect(service, "peer", 0.0)
    assert isinstance(link, Link)
    session = link.driver
    assert isinstance(session, TlsSession)
    assert session.deadline == 10.0  # the handshake has the header timeout
    client = Client(ca, alpn)
    data = client.step()  # ClientHello
    while data:
        for action in session.feed(data, 0.0):
            assert isinstance(action, bytes)
            client.incoming.write(action)
        data = client.step()  # Finished, then nothing
    assert client.tls.version() is not None and session.idle
    return session, client


def test_alpn_picks_h2_or_http1(service: Service, pki: tuple[Path, Path, Path]) -> None:
    session, client = _handshake(service, pki[0], ["h2", "http/1.1"])
    assert session.alpn == "h2" and client.tls.selected_alpn_protocol() == "h2"
    session, client = _handshake(service, pki[0], ["http/1.1"])
    assert session.alpn == "http/1.1"


def test_request_response_and_close_notify(service: Service, pki: tuple[Path, Path, Path]) -> None:
    session, client = _handshake(service, pki[0], ["http/1.1"])
    out = session.feed(
        client.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 1.0
    )
    assert out[-1] is CLOSE
    plain = client.receive(out)
    assert plain.startswith(b"HTTP/1.1 200 OK\r\n") and plain.endswith(b"hello")
    assert client.closed  # close_notify came before the CLOSE


def test_alpn_h2_without_the_preface_is_a_connection_error(
    service: Service, pki: tuple[Path, Path, Path]
) -> None:
    """RFC 9113 §3.4: ALPN chose h2, so HTTP/1 bytes get SETTINGS, then GOAWAY with
    PROTOCOL_ERROR (last stream 0), and the connection closes; no HTTP/1 answer."""
    session, client = _handshake(service, pki[0], ["h2"])
    out = session.feed(client.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"), 1.0)
    assert out[-1] is CLOSE
    plain = client.receive(out)
    assert b"HTTP/1.1" not in plain
    goaway = bytes.fromhex("0000080700000000000000000000000001")
    assert plain.endswith(goaway)


def test_alpn_http1_is_http1_whatever_follows(
    service: Service, pki: tuple[Path, Path, Path]
) -> None:
    """ALPN chose http/1.1: the HTTP/2 preface is an HTTP/1 request line (version 2.0:
    505), not HTTP/2 by prior knowledge (that is for cleartext, RFC 9113 §3.3)."""
    session, client = _handshake(service, pki[0], ["http/1.1"])
    out = session.feed(client.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 1.0)
    assert client.receive(out).startswith(b"HTTP/1.1 505 ")


def test_file_bodies_are_encrypted_a_batch_at_a_time(
    service: Service, pki: tuple[Path, Path, Path]
) -> None:
    session, client = _handshake(service, pki[0], ["http/1.1"])
    out = session.feed(client.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"), 1.0)
    received = client.receive(out)
    batches = 1
    while True:
        assert sum(len(a) for a in out if isinstance(a, bytes)) < BATCH_BYTES + 16384
        out = session.drained(2.0)
        if not out:
            break
        received += client.receive(out)
        batches += 1
    assert received.endswith(BIG) and batches >= len(BIG) // BATCH_BYTES
    assert session.idle and session.deadline == 22.0  # keep-alive after the response


def test_handshake_deadline_and_garbage(service: Service) -> None:
    session = connect(service, "peer", 0.0)
    assert session.expired(9.9) == []
    assert session.expired(10.0) == [CLOSE]
    garbage = connect(service, "peer", 0.0)
    out = garbage.feed(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 50, 0.0)
    assert out[-1] is CLOSE


def test_pipelined_requests_then_close_notify_are_all_answered(
    service: Service, pki: tuple[Path, Path, Path]
) -> None:
    session, client = _handshake(service, pki[0], ["http/1.1"])
    requests = client.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n" * 6)
    with contextlib.suppress(ssl.SSLWantReadError):
        client.tls.unwrap()  # close_notify right behind the requests
    out = session.feed(requests + client.outgoing.read(), 1.0)
    received = client.receive(out)
    while CLOSE not in out:
        out = session.drained(2.0)
        received += client.receive(out)
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 6
    assert received.count(BIG) == 6


def test_a_session_before_its_handshake_is_idle(service: Service) -> None:
    """Nothing to send, only waiting on the client: a thread engine may park it."""
    session = connect(service, "peer", 0.0)
    assert session.idle
    assert session.shutdown() == [CLOSE]


def test_abort_releases_files_waiting_for_encryption(
    service: Service, pki: tuple[Path, Path, Path]
) -> None:
    session, client = _handshake(service, pki[0], ["http/1.1"])
    before = len(os.listdir("/proc/self/fd"))
    session.feed(client.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"), 1.0)
    assert len(os.listdir("/proc/self/fd")) == before + 1  # the file, mid-encryption
    session.abort()
    assert len(os.listdir("/proc/self/fd")) == before


def test_h2_is_offered_over_tls_even_without_h2c(
    tmp_path: Path, pki: tuple[Path, Path, Path]
) -> None:
    config = Config(
        server=ServerConfig(access_log="off", h2c=False, tls_cert=str(pki[1]), tls_key=str(pki[2])),
        site=SiteConfig(root=str(tmp_path)),
        limits=Limits(header_timeout_s=10),
    )
    service = Service(config, tlscontext.context(str(pki[1]), str(pki[2])))
    session, _ = _handshake(service, pki[0], ["h2", "http/1.1"])
    assert session.alpn == "h2"
    service.close()
