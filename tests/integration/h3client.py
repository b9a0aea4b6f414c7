"""A small HTTP/3 client for the tests, over a real UDP socket, synchronous: aioquic's
QUIC and HTTP/3 on the client side, so the server (on qh3) is checked by a library other
than its own; ngtcp2's client, `gtlsclient`, and Chromium are the others the tests use."""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field

from aioquic.h3.connection import H3_ALPN, H3Connection, H3Stream
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, StreamReset
from aioquic.tls import SessionTicket
from cryptography import x509


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    return sock


class _H3(H3Connection):
    """aioquic's HTTP/3 also checks Content-Length against the body of a HEAD's answer,
    which has none (RFC 9110 §9.3.2, §8.6): not on the streams in `heads`."""

    heads: set[int]

    def _check_content_length(self, stream: H3Stream) -> None:
        if stream.stream_id not in self.heads:
            super()._check_content_length(stream)


@dataclass
class Response:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    received: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None  # the server reset the stream with this error code
    interim: list[list[tuple[bytes, bytes]]] = field(default_factory=list)  # 1xx, in order

    @property
    def body(self) -> bytes:
        return bytes(self.received)


class H3Client:
    """`ticket`: resume a session (a ticket from `tickets` of an earlier client); what
    is requested before the first `step` then goes out as 0-RTT early data."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        timeout: float = 10.0,
        ticket: SessionTicket | None = None,
        cafile: str | None = None,
    ) -> None:
        """`cafile`: verify the server's certificate against it (else it is not checked)."""
        config = QuicConfiguration(
            is_client=True, alpn_protocols=H3_ALPN, server_name="localhost",
            verify_mode=ssl.CERT_NONE if cafile is None else ssl.CERT_REQUIRED, cafile=cafile,
            max_datagram_frame_size=65536, session_ticket=ticket,
        )  # fmt: skip
        self.address = (host, port)
        self.sock = _udp()
        self.timeout = timeout
        self.tickets: list[SessionTicket] = []  # what the server issued
        self.handshake: HandshakeCompleted | None = None
        self.quic = QuicConnection(configuration=config, session_ticket_handler=self.tickets.append)
        self.quic.connect(self.address, now=time.monotonic())
        self.h3 = _H3(self.quic)
        self.h3.heads = set()
        self.responses: dict[int, Response] = {}
        self.terminated: ConnectionTerminated | None = None

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The certificate the server presented (aioquic keeps it on its TLS context)."""
        return self.quic.tls._peer_certificate

    def request(
        self,
        path: str,
        method: str = "GET",
        headers: list[tuple[bytes, bytes]] | None = None,
        end: bool = True,
    ) -> int:
        """Send a request (`end` False: the stream stays open, for `send_data`)."""
        stream_id = self.quic.get_next_available_stream_id()
        given = headers or []
        pseudo = [(b":method", method.encode()), (b":path", path.encode())]
        pseudo += [(name, value) for name, value in given if name.startswith(b":")]
        if not any(name == b":scheme" for name, _ in pseudo):
            pseudo += [(b":scheme", b"https"), (b":authority", b"localhost")]
        fields = pseudo + [(name, value) for name, value in given if not name.startswith(b":")]
        if method == "HEAD":
            self.h3.heads.add(stream_id)
        self.h3.send_headers(stream_id, fields, end_stream=end)
        self.responses[stream_id] = Response()
        self._send()
        return stream_id

    def send_data(self, stream_id: int, data: bytes, end: bool = False) -> None:
        self.h3.send_data(stream_id, data, end_stream=end)
        self._send()

    def get(self, path: str) -> Response:
        return self.wait(self.request(path))

    def wait(self, stream_id: int) -> Response:
        deadline = time.monotonic() + self.timeout
        response = self.responses[stream_id]
        while not response.ended:
            if self.terminated is not None:
                raise ConnectionError(f"connection closed: {self.terminated.reason_phrase}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer on stream {stream_id}")
            self._step(deadline)
        return response

    def rebind(self) -> None:
        """Move to a new local port, as a NAT rebinding does (the connection migrates)."""
        old = self.sock
        self.sock = _udp()
        old.close()
        # Its next packet comes from the new port (a PING, if nothing else was due).
        self.quic.send_ping(0)
        self._send()

    def step(self) -> None:
        """Take what has arrived (or wait a moment for it), and answer it."""
        self._step(time.monotonic() + 0.2)

    def _step(self, deadline: float) -> None:
        """Wait for datagrams (until QUIC's timer or `deadline`), take every one that has
        arrived, then answer: a client slower than the server must not let the socket
        overflow, or the losses shrink the server's congestion window."""
        timer = self.quic.get_timer()
        wait = deadline - time.monotonic()
        if timer is not None:
            wait = min(wait, timer - time.monotonic())
        self.sock.settimeout(max(0.001, wait))
        try:
            data, _ = self.sock.recvfrom(65536)
        except TimeoutError:
            if timer is not None and timer <= time.monotonic():
                self.quic.handle_timer(time.monotonic())
        else:
            self.quic.receive_datagram(data, self.address, time.monotonic())
            self.sock.setblocking(False)
            for _ in range(256):
                try:
                    data, _ = self.sock.recvfrom(65536)
                except BlockingIOError:
                    break
                self.quic.receive_datagram(data, self.address, time.monotonic())
        self._events()
        self._send()

    def _events(self) -> None:
        while (event := self.quic.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                self.handshake = event
            elif isinstance(event, ConnectionTerminated):
                self.terminated = event
            elif isinstance(event, StreamReset) and event.stream_id in self.responses:
                reset = self.responses[event.stream_id]
                reset.reset, reset.ended = event.error_code, True
            for h3_event in self.h3.handle_event(event):
                response = self.responses.get(getattr(h3_event, "stream_id", -1))
                if response is None:
                    continue
                if isinstance(h3_event, HeadersReceived):
                    if dict(h3_event.headers).get(b":status", b"").startswith(b"1"):
                        response.interim.append(list(h3_event.headers))  # RFC 9114 §4.1
                        continue
                    response.headers = dict(h3_event.headers)
                    response.status = int(response.headers[b":status"])
                    response.ended = h3_event.stream_ended
                elif isinstance(h3_event, DataReceived):
                    response.received += h3_event.data
                    response.ended = h3_event.stream_ended

    def _send(self) -> None:
        for data, address in self.quic.datagrams_to_send(now=time.monotonic()):
            self.sock.sendto(data, address)

    def close(self) -> None:
        self.quic.close()
        self._send()
        self.sock.close()
