"""HTTP/3 PRIORITY_UPDATE frames (RFC 9218 §7.2), in memory: a qh3 client sends them on
its control stream; the adapter reports them as it does HTTP/2's, and refuses one that
names a stream that is not a request stream (H3_ID_ERROR)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from qh3._hazmat import Buffer
from qh3.h3.connection import ErrorCode, H3Connection, encode_frame
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection
from qh3.quic.events import ConnectionTerminated

from lanthorn.config import Limits
from lanthorn.protocol.events import Event, PriorityChanged, RequestReceived
from lanthorn.protocol.http3 import PRIORITY_UPDATE, Http3
from tests import certs

CLIENT = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 443)
GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"t"), (b":path", b"/")]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    _, cert, key = certs.make(tmp_path_factory.mktemp("h3-priority"))
    return cert, key


class Pair:
    """A qh3 client and the adapter over a server connection, datagrams moved by hand."""

    def __init__(self, pki: tuple[Path, Path]) -> None:
        config = QuicConfiguration(
            is_client=True,
            alpn_protocols=["h3"],
            verify_mode=ssl.CERT_NONE,
            max_datagram_frame_size=65536,  # qh3 offers H3_DATAGRAM, which needs it
        )
        self.client = QuicConnection(configuration=config)
        self.client.connect(SERVER, now=0.0)
        first = self.client.datagrams_to_send(now=0.0)[0][0]
        server_config = QuicConfiguration(  # as driver/quic.py makes it
            is_client=False, alpn_protocols=["h3"], max_datagram_frame_size=65536
        )
        server_config.load_cert_chain(str(pki[0]), str(pki[1]))
        server = QuicConnection(
            configuration=server_config, original_destination_connection_id=first[6:14]
        )
        self.adapter = Http3(Limits(), server, CLIENT)
        self.server = server
        self.h3 = H3Connection(self.client)
        self.events: list[Event] = list(self.adapter.receive(first, 0.0))
        self.now = 0.0
        self.pump()

    def pump(self) -> None:
        for _ in range(20):  # datagrams back and forth until both are quiet
            self.now += 0.001
            moved = False
            for data, _ in self.server.datagrams_to_send(now=self.now):
                self.client.receive_datagram(data, SERVER, now=self.now)
                moved = True
            for data, _ in self.client.datagrams_to_send(now=self.now):
                self.events += self.adapter.receive(data, self.now)
                moved = True
            while (event := self.client.next_event()) is not None:
                self.h3.handle_event(event)
            if not moved:
                return

    def closed_with(self) -> int | None:
        """The error code of the CONNECTION_CLOSE the client received, if any."""
        event: ConnectionTerminated | None = self.client._close_event
        return None if event is None else event.error_code

    def priority_update(self, stream_id: int, value: bytes) -> None:
        buf = Buffer(capacity=8)
        buf.push_uint_var(stream_id)
        frame = encode_frame(PRIORITY_UPDATE, buf.data + value)
        control = self.h3._local_control_stream_id
        assert control is not None
        self.client.send_stream_data(control, frame)


def test_priority_update_frames_are_reported(pki: tuple[Path, Path]) -> None:
    pair = Pair(pki)
    stream_id = pair.client.get_next_available_stream_id()
    pair.priority_update(stream_id + 4, b"u=0")  # a stream not yet opened: kept for it
    pair.h3.send_headers(stream_id, GET, end_stream=True)
    pair.priority_update(stream_id, b"u=1, i")
    pair.pump()
    changes = [(e.stream_id, e.value) for e in pair.events if isinstance(e, PriorityChanged)]
    assert changes == [(stream_id + 4, b"u=0"), (stream_id, b"u=1, i")]
    assert any(isinstance(e, RequestReceived) for e in pair.events)
    assert pair.closed_with() is None


def test_a_priority_update_for_a_non_request_stream_is_an_id_error(
    pki: tuple[Path, Path],
) -> None:
    pair = Pair(pki)
    pair.priority_update(2, b"u=1")  # §7.2: a server-initiated stream
    pair.pump()
    assert pair.closed_with() == ErrorCode.H3_ID_ERROR
    assert not any(isinstance(e, PriorityChanged) for e in pair.events)
