"""HTTP/3 with several workers: every connection ID a worker's connection issues begins
with its row (driver/quic.TaggedConnection), a packet for another row's connection is
handed over rather than dropped or opened (QuicServer.forwards), and the handover
message keeps the client's address whole (engines/datagrams)."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import pytest
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection
from qh3.quic.events import ConnectionIdIssued, HandshakeCompleted

from lanthorn.config import Config, Limits, ServerConfig
from lanthorn.driver import Service
from lanthorn.driver.context import CertificateFiles, Worker
from lanthorn.driver.quic import QuicServer, TaggedConnection
from lanthorn.driver.tickets import SessionTickets
from lanthorn.engines.datagrams import handover, taken_over
from lanthorn.protocol.http3 import Http3
from tests import certs

CLIENT = ("127.0.0.1", 40000)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    _, cert, key = certs.make(tmp_path_factory.mktemp("quic-pki"))
    return cert, key


def _client() -> QuicConnection:
    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], verify_mode=ssl.CERT_NONE)
    client = QuicConnection(configuration=config)
    client.connect(("127.0.0.1", 443), now=0.0)
    return client


def test_every_connection_id_of_a_worker_begins_with_its_row(pki: tuple[Path, Path]) -> None:
    cert, key = pki
    config = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    config.load_cert_chain(str(cert), str(key))
    client = _client()
    first = client.datagrams_to_send(now=0.0)[0][0]
    server = TaggedConnection(
        7, configuration=config, original_destination_connection_id=first[6:14]
    )
    Http3(Limits(h3_max_streams=16), server, CLIENT)  # it sets the stream credit
    server.receive_datagram(first, CLIENT, now=0.0)
    issued: list[bytes] = [server.host_cid]
    done = False
    for step in range(1, 20):  # datagrams back and forth until both are quiet
        now = step / 1000
        for data, _ in server.datagrams_to_send(now=now):
            client.receive_datagram(data, ("127.0.0.1", 443), now=now)
        for data, _ in client.datagrams_to_send(now=now):
            server.receive_datagram(data, CLIENT, now=now)
        while (event := server.next_event()) is not None:
            if isinstance(event, ConnectionIdIssued):
                issued.append(event.connection_id)
        while (event := client.next_event()) is not None:
            done = done or isinstance(event, HandshakeCompleted)
    assert done
    assert len(issued) >= 2  # the first, and the spares the client may switch to
    assert all(cid[0] == 7 and len(cid) == 8 for cid in issued), issued
    assert client._remote_max_streams_bidi == 16  # the request streams it may open


def _server(pki: tuple[Path, Path], row: int, count: int) -> QuicServer:
    cert, key = pki
    config = Config(server=ServerConfig(tls_cert=str(cert), tls_key=str(key)))
    worker = dataclasses.replace(Worker(count=count), row=row)
    tickets = SessionTickets(share=count > 1)
    certificate = CertificateFiles(str(cert), str(key))
    return QuicServer(Service(config, worker=worker, certificate=certificate), tickets)


def _short(cid: bytes) -> bytes:
    """A 1-RTT packet's first bytes (RFC 9000 §17.3.1) for `cid`, with some payload."""
    return bytes((0x40,)) + cid + b"\x00" * 40


def test_a_packet_for_another_workers_connection_is_handed_over(
    pki: tuple[Path, Path],
) -> None:
    server = _server(pki, row=0, count=3)
    server.received(_short(b"\x02" + b"x" * 7), CLIENT, 1.0)
    server.received(_short(b"\x00" + b"x" * 7), CLIENT, 1.0)  # its own, unknown: dropped
    server.received(_short(b"\x09" + b"x" * 7), CLIENT, 1.0)  # no such worker: dropped
    server.received(_short(b"\x01" + b"y" * 7), CLIENT, 1.0, forwarded=True)  # not again
    assert server.forwards() == [(2, _short(b"\x02" + b"x" * 7), CLIENT)]
    assert server.forwards() == [] and server.take() == [] and len(server) == 0


def test_one_worker_hands_nothing_over(pki: tuple[Path, Path]) -> None:
    server = _server(pki, row=0, count=1)
    server.received(_short(b"\x02" + b"x" * 7), CLIENT, 1.0)
    assert server.forwards() == []


@pytest.mark.parametrize(
    "address", [("127.0.0.1", 5000), ("::1", 65535, 0, 0), ("fe80::1", 443, 7, 2)]
)
def test_a_handover_keeps_the_address_whole(address: tuple[str | int, ...]) -> None:
    message = handover(1, address, b"datagram")
    assert taken_over(message) == (1, address, b"datagram")
    with pytest.raises(ValueError):
        taken_over(message[:3])
