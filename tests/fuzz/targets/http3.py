"""HTTP/3 over QUIC (lanthorn.driver.quic.QuicServer with the Http3 adapter and the
stream driver) over a real Service, a small document root and a WebSocket echo endpoint
at /ws (RFC 9220 tunnels). A qh3 client completes the handshake; then the input, not a
client's HTTP/3 layer, decides the bytes on the client's streams, so HTTP/3 frames, QPACK
field sections and the control and QPACK streams are all the fuzzer's.

Input: ops until the input ends; each is a byte `op` and its arguments:
  op % 6 == 0  bytes (one length byte, then the bytes) on request stream 4*(byte % 4),
               ending it if op & 0x80
  op % 6 == 1  bytes on the client's unidirectional stream 2 + 4*(byte % 4) (control,
               QPACK encoder, QPACK decoder, another)
  op % 6 == 2  time passes (byte / 20 s): both sides' timers
  op % 6 == 3  the client resets request stream 4*(byte % 4) (with the next byte as code)
  op % 6 == 4  the client stops reading request stream 4*(byte % 4)
  op % 6 == 5  the server shuts down gracefully (GOAWAY), once
After each op the two sides exchange datagrams until neither has any to send.

Invariants: nothing the server does raises; the driver's guard never catches an
exception; the server keeps at most this one connection and every datagram it sends fits
a 1500-byte path; once the connection is closed it holds no connection and no file.
"""

from __future__ import annotations

import ssl

from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection, QuicConnectionError

from lanthorn.config import Config, Limits, ServerConfig, SiteConfig, WebSocketConfig
from lanthorn.driver.context import CertificateFiles, Service
from lanthorn.driver.quic import QuicServer
from lanthorn.driver.tickets import SessionTickets
from tests import certs
from tests.fuzz.source import Source
from tests.fuzz.targets import scratch
from tests.fuzz.targets.guard import GUARD

_ROOT = scratch("http3")
(_ROOT / "a.txt").write_bytes(b"hello")
(_ROOT / "big.bin").write_bytes(bytes(range(256)) * 300)  # 75 KiB: many packets
_, _CERT, _KEY = certs.make(scratch("http3-pki"))
CLIENT = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 443)
_ROUNDS = 50  # datagram exchanges after one op, at most


def _service() -> Service:
    config = Config(
        server=ServerConfig(access_log="off", tls_cert=str(_CERT), tls_key=str(_KEY)),
        site=SiteConfig(root=str(_ROOT), small_file_bytes=1024),
        limits=Limits(h3_max_streams=3, max_body_bytes=100, header_timeout_s=5),
        websocket=WebSocketConfig(echo="/ws", max_message_bytes=4096, ping_interval_s=5),
    )
    return Service(config, certificate=CertificateFiles(str(_CERT), str(_KEY)))


class Pair:
    """The server, and a client that has done its handshake."""

    def __init__(self) -> None:
        self.service = _service()
        self.server = QuicServer(self.service, SessionTickets(share=False))
        config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], verify_mode=ssl.CERT_NONE)
        self.client = QuicConnection(configuration=config)
        self.now = 0.0
        self.client.connect(SERVER, now=self.now)
        self.exchange()
        assert len(self.server) == 1, "the handshake did not open a connection"

    def exchange(self) -> None:
        for _ in range(_ROUNDS):
            moved = False
            try:
                datagrams = self.client.datagrams_to_send(now=self.now)
            except QuicConnectionError:
                datagrams = []
            for data, _ in datagrams:
                self.server.received(data, CLIENT, self.now)
                moved = True
            self.check()
            for data, _ in self.server.take():
                assert len(data) <= 1500, len(data)
                self.client.receive_datagram(data, SERVER, now=self.now)
                moved = True
            while self.client.next_event() is not None:
                pass
            if not moved:
                return

    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.server.expired(self.now)
        timer = self.client.get_timer()
        if timer is not None and timer <= self.now:
            self.client.handle_timer(self.now)

    def check(self) -> None:
        GUARD.check()
        assert len(self.server) <= 1
        assert self.server.forwards() == []  # one worker: nothing to hand over


def fuzz(data: bytes) -> None:
    with GUARD.watching():
        pair = Pair()
        try:
            _run(pair, Source(data))
            pair.server.close()
            pair.server.take()
            assert len(pair.server) == 0
        finally:
            pair.server.close()
            pair.service.close()


def _run(pair: Pair, source: Source) -> None:
    client = pair.client
    shut = False
    while not source.exhausted:
        op = source.byte()
        kind = op % 6
        if kind == 2:
            pair.tick(source.byte() / 20)
        elif kind == 5:
            if not shut:
                shut = True
                pair.server.shutdown(pair.now)
        else:
            try:
                _client_op(client, kind, op, source)
            except (ValueError, AssertionError, QuicConnectionError):
                continue  # the client's library refused the op (a finished stream, say)
        pair.exchange()


def _client_op(client: QuicConnection, kind: int, op: int, source: Source) -> None:
    if kind == 0:
        stream = 4 * (source.byte() % 4)
        client.send_stream_data(stream, source.sized(), end_stream=bool(op & 0x80))
    elif kind == 1:
        client.send_stream_data(2 + 4 * (source.byte() % 4), source.sized())
    elif kind == 3:
        client.reset_stream(4 * (source.byte() % 4), source.byte())
    else:
        client.stop_stream(4 * (source.byte() % 4), source.byte())
