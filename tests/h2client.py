"""A small HTTP/2 client over a real socket (h2's client side), for tests that need to
see frames: flow-control windows, resets, GOAWAY."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.settings
from hyperframe.frame import Frame

TIMEOUT_S = 10.0


def frames(data: bytes) -> list[Frame]:
    """The whole frames in `data`, parsed by hyperframe (a frame cut short is left out)."""
    out = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        if len(data) < 9 + length:
            break
        frame.parse_body(memoryview(data[9 : 9 + length]))
        out.append(frame)
        data = data[9 + length :]
    return out


@dataclass
class Reply:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None  # the server's RST_STREAM error code


class H2Client:
    def __init__(
        self,
        port: int,
        settings: dict[h2.settings.SettingCodes, int] | None = None,
        auto_ack: bool = True,
        timeout: float = TIMEOUT_S,
        source: str = "",
    ) -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout, source_address=(source, 0)
        )
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        if settings:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.conn.initiate_connection()
        self.auto_ack = auto_ack  # hand flow-control credit back as DATA arrives
        self.replies: dict[int, Reply] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self.received = 0  # bytes read from the socket
        self.flush()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(
        self,
        path: str,
        method: str = "GET",
        headers: list[tuple[str, str]] | None = None,
        end: bool = True,
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        fields = [
            (b":method", method.encode()),
            (b":scheme", b"http"),
            (b":authority", b"t"),
            (b":path", path.encode("latin-1")),
        ]
        fields += [(n.lower().encode(), v.encode("latin-1")) for n, v in headers or []]
        self.conn.send_headers(stream_id, fields, end_stream=end)
        self.replies[stream_id] = Reply()
        self.flush()
        return stream_id

    def pump(self) -> bool:
        """Read once and handle what arrived; False once the server has closed."""
        data = self.sock.recv(1 << 20)
        if not data:
            self.closed = True
            return False
        self.received += len(data)
        for event in self.conn.receive_data(data):
            self._handle(event)
        self.flush()
        return True

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            reply = self.replies[event.stream_id]
            for name, value in event.headers:
                key = bytes(name).decode()
                if key == ":status":
                    reply.status = int(value)
                else:
                    reply.headers[key] = bytes(value).decode("latin-1")
        elif isinstance(event, h2.events.DataReceived):
            self.replies[event.stream_id].body += event.data
            if self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.replies[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            self.replies[event.stream_id].reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event

    def wait(self, stream_id: int) -> Reply:
        reply = self.replies[stream_id]
        while not (reply.ended or reply.reset is not None):
            if not self.pump():
                raise ConnectionError(f"closed before stream {stream_id} ended")
        return reply

    def get(self, path: str, headers: list[tuple[str, str]] | None = None) -> Reply:
        return self.wait(self.request(path, headers=headers))

    def head(self, path: str) -> Reply:
        return self.wait(self.request(path, "HEAD"))

    def until_closed(self) -> None:
        """Read (and handle) until the server closes the connection."""
        while self.pump():
            pass
