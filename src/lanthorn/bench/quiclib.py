"""The cost of QUIC and HTTP/3 in the two libraries issue 11 named: aioquic, and qh3 (its
fork, whose QUIC core is compiled). The same code runs over either: a server and a
client of the library, datagrams handed from one to the other in memory (no sockets, no
network, no load generator: only what the library costs). For each library it measures
handshakes per second (a new connection until the first response) and requests per
second on one connection (GET, a 955-byte answer, 10 requests in flight), and splits the
CPU time between the server and the client side.

`python -m lanthorn.bench.quiclib` prints the table that chose the library for
protocol/http3.py.
"""

from __future__ import annotations

import importlib
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from lanthorn.bench.targets import make_certificate

LIBRARIES = ("aioquic", "qh3")
BODY = b"x" * 955  # the demo index.html's size
IN_FLIGHT = 10
SERVER = ("127.0.0.1", 4433)
CLIENT = ("127.0.0.1", 50000)


@dataclass
class _Library:
    connection: ModuleType
    configuration: ModuleType
    h3: ModuleType
    h3_events: ModuleType
    packet: ModuleType
    buffer: Any

    @classmethod
    def load(cls, name: str) -> _Library:
        def module(path: str) -> ModuleType:
            return importlib.import_module(f"{name}.{path}")

        buffer = module("buffer").Buffer if name == "aioquic" else module("_hazmat").Buffer
        return cls(
            module("quic.connection"), module("quic.configuration"), module("h3.connection"),
            module("h3.events"), module("quic.packet"), buffer,
        )  # fmt: skip


class _Pair:
    """A client and a server of one library, wired back to back; `spent` splits the
    CPU time between the two sides."""

    def __init__(self, lib: _Library, cert: Path, key: Path) -> None:
        self.lib = lib
        self.now = time.monotonic()
        self.spent = {"server": 0.0, "client": 0.0}
        # qh3's HTTP/3 layer always announces H3_DATAGRAM, which needs the transport
        # parameter (RFC 9297 §2.1.1): both sides, both libraries, offer it.
        server_config = lib.configuration.QuicConfiguration(
            is_client=False, alpn_protocols=lib.h3.H3_ALPN, max_datagram_frame_size=65536
        )
        server_config.load_cert_chain(str(cert), str(key))
        self.server_config = server_config
        client_config = lib.configuration.QuicConfiguration(
            is_client=True,
            alpn_protocols=lib.h3.H3_ALPN,
            verify_mode=ssl.CERT_NONE,
            max_datagram_frame_size=65536,
        )
        self.client = lib.connection.QuicConnection(configuration=client_config)
        self.client.connect(SERVER, now=self.now)
        self.client_h3 = lib.h3.H3Connection(self.client)
        self.server: Any = None
        self.server_h3: Any = None

    def _timed(self, side: str, started: float) -> None:
        self.spent[side] += time.perf_counter() - started

    def _to_server(self) -> None:
        started = time.perf_counter()
        datagrams = self.client.datagrams_to_send(now=self.now)
        self._timed("client", started)
        started = time.perf_counter()
        lib = self.lib
        for data, _ in datagrams:
            if self.server is None:
                header = lib.packet.pull_quic_header(lib.buffer(data=data), 8)
                self.server = lib.connection.QuicConnection(
                    configuration=self.server_config,
                    original_destination_connection_id=header.destination_cid,
                )
                self.server_h3 = lib.h3.H3Connection(self.server)
            self.server.receive_datagram(data, CLIENT, now=self.now)
        if self.server is not None:
            while (event := self.server.next_event()) is not None:
                for h3_event in self.server_h3.handle_event(event):
                    self._answer(h3_event)
        self._timed("server", started)

    def _answer(self, event: object) -> None:
        if isinstance(event, self.lib.h3_events.HeadersReceived) and event.stream_ended:
            h3 = self.server_h3
            h3.send_headers(
                event.stream_id,
                [(b":status", b"200"), (b"content-type", b"text/html"),
                 (b"content-length", b"%d" % len(BODY))],
            )  # fmt: skip
            h3.send_data(event.stream_id, BODY, end_stream=True)

    def _to_client(self) -> int:
        if self.server is None:
            return 0
        started = time.perf_counter()
        datagrams = self.server.datagrams_to_send(now=self.now)
        self._timed("server", started)
        started = time.perf_counter()
        done = 0
        for data, _ in datagrams:
            self.client.receive_datagram(data, SERVER, now=self.now)
        while (event := self.client.next_event()) is not None:
            for h3_event in self.client_h3.handle_event(event):
                if isinstance(h3_event, self.lib.h3_events.DataReceived) and h3_event.stream_ended:
                    done += 1
        self._timed("client", started)
        return done

    def request(self) -> None:
        started = time.perf_counter()
        stream_id = self.client.get_next_available_stream_id()
        self.client_h3.send_headers(
            stream_id,
            [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"127.0.0.1"),
             (b":path", b"/")],
            end_stream=True,
        )  # fmt: skip
        self._timed("client", started)

    def run(self, requests: int) -> None:
        """`requests` GETs, IN_FLIGHT at a time, until every answer has arrived."""
        sent = done = 0
        while done < requests:
            while sent < requests and sent - done < IN_FLIGHT:
                self.request()
                sent += 1
            self._to_server()
            done += self._to_client()
            self.now += 0.001


@dataclass(frozen=True)
class Result:
    library: str
    handshakes_per_s: float
    requests_per_s: float
    server_us_per_request: float
    client_us_per_request: float


def measure(name: str, cert: Path, key: Path, handshakes: int, requests: int) -> Result:
    lib = _Library.load(name)
    started = time.perf_counter()
    for _ in range(handshakes):
        _Pair(lib, cert, key).run(1)
    handshake_s = time.perf_counter() - started
    pair = _Pair(lib, cert, key)
    pair.run(1)  # the handshake is not counted
    pair.spent = {"server": 0.0, "client": 0.0}
    started = time.perf_counter()
    pair.run(requests)
    request_s = time.perf_counter() - started
    return Result(
        name, handshakes / handshake_s, requests / request_s,
        pair.spent["server"] / requests * 1e6, pair.spent["client"] / requests * 1e6,
    )  # fmt: skip


def main() -> None:
    handshakes, requests = (50, 2000) if "--quick" in sys.argv else (300, 20_000)
    with tempfile.TemporaryDirectory() as work:
        tls = make_certificate(Path(work))
        print("| library | handshakes/s | requests/s | server µs/request | client µs/request |")
        print("|---|---:|---:|---:|---:|")
        for name in LIBRARIES:
            r = measure(name, tls.cert, tls.key, handshakes, requests)
            print(
                f"| {r.library} | {r.handshakes_per_s:,.0f} | {r.requests_per_s:,.0f} | "
                f"{r.server_us_per_request:.1f} | {r.client_us_per_request:.1f} |"
            )


if __name__ == "__main__":
    main()
