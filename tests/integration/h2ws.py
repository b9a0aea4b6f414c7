"""A WebSocket client over HTTP/2 (RFC 8441), built on `h2` for the connection and the
`websockets` library's client framing: what the tests use to open sockets the way a
browser does over h2 (and what no packaged client does yet)."""

from __future__ import annotations

import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TypeVar

import h2.config
import h2.connection
import h2.events
import h2.settings
from websockets.client import ClientProtocol
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.headers import parse_extension
from websockets.protocol import State
from websockets.uri import parse_uri

T = TypeVar("T")


class Refused(Exception):
    """The server answered the extended CONNECT with something other than 2xx."""

    def __init__(self, status: int, headers: dict[bytes, bytes]) -> None:
        super().__init__(f"extended CONNECT answered {status}")
        self.status = status
        self.headers = headers


class H2WebSocket:
    """One connection, WebSockets on streams 1, 3, 5, … (`open` returns a stream id)."""

    def __init__(self, port: int, *, tls: bool = False, timeout: float = 10.0) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            sock = context.wrap_socket(sock, server_hostname="localhost")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.scheme = b"https" if tls else b"http"
        self.authority = b"127.0.0.1:%d" % port
        # Unvalidated: the tests also send what a server must refuse.
        config = h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False
        )
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self._flush()
        self.events: list[h2.events.Event] = []
        self.sockets: dict[int, ClientProtocol] = {}
        self.inbox: dict[int, deque[Frame]] = {}  # frames the server sent, unread
        self.ended: set[int] = set()  # streams the server ended
        self.reset: set[int] = set()
        self._settle(lambda: self._settings_seen)

    @property
    def _settings_seen(self) -> bool:
        return any(isinstance(e, h2.events.RemoteSettingsChanged) for e in self.events)

    @property
    def connect_protocol(self) -> bool:
        """Whether the server offered extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)."""
        return bool(self.conn.remote_settings.enable_connect_protocol)

    def open(
        self, path: str, *, origin: str | None = None, deflate: bool = False,
        version: bytes = b"13", extra: Sequence[tuple[bytes, bytes]] = (),
    ) -> int:  # fmt: skip
        """An extended CONNECT for a WebSocket at `path`; the stream once it is open
        (raises Refused with the status otherwise)."""
        stream_id = self.conn.get_next_available_stream_id()
        fields = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", self.scheme),
            (b":path", path.encode()),
            (b":authority", self.authority),
            (b"sec-websocket-version", version),
            *extra,
        ]
        if origin is not None:
            fields.append((b"origin", origin.encode()))
        if deflate:
            fields.append((b"sec-websocket-extensions", b"permessage-deflate"))
        self.conn.send_headers(stream_id, fields)
        self._flush()
        response = self._settle(lambda: self._response(stream_id))
        assert response is not None
        status = int(response[b":status"])
        if not 200 <= status < 300:
            raise Refused(status, response)
        extensions: list[Extension] = []
        accepted = response.get(b"sec-websocket-extensions")
        if accepted is not None:
            factory = ClientPerMessageDeflateFactory()
            for name, params in parse_extension(accepted.decode()):
                assert name == factory.name
                extensions.append(factory.process_response_params(params, []))
        uri = parse_uri(f"ws://{self.authority.decode()}{path}")
        ws = ClientProtocol(uri, state=State.OPEN)
        ws.extensions = extensions
        self.sockets[stream_id] = ws
        self.inbox[stream_id] = deque()
        return stream_id

    def _response(self, stream_id: int) -> dict[bytes, bytes] | None:
        for event in self.events:
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                return dict(event.headers)
        if stream_id in self.reset:
            raise ConnectionResetError(f"stream {stream_id} reset")
        return None

    # --- messages ----------------------------------------------------------------------------

    def send(self, stream_id: int, message: str | bytes, fin: bool = True) -> None:
        ws = self.sockets[stream_id]
        if isinstance(message, str):
            ws.send_text(message.encode(), fin)
        else:
            ws.send_binary(message, fin)
        self.pass_on(stream_id)

    def send_fragments(self, stream_id: int, parts: Sequence[str]) -> None:
        """One text message in len(parts) frames."""
        ws = self.sockets[stream_id]
        ws.send_text(parts[0].encode(), fin=len(parts) == 1)
        for index, part in enumerate(parts[1:], 2):
            ws.send_continuation(part.encode(), fin=index == len(parts))
        self.pass_on(stream_id)

    def send_raw(self, stream_id: int, data: bytes, end: bool = False) -> None:
        """Bytes on the stream as they are (hand-made frames)."""
        self.conn.send_data(stream_id, data, end_stream=end)
        self._flush()

    def close(self, stream_id: int, code: int = 1000) -> None:
        self.sockets[stream_id].send_close(code)
        self.pass_on(stream_id)

    def frames(self, stream_id: int, count: int = 1, timeout: float = 10.0) -> list[Frame]:
        """The next `count` frames the server sent on the stream (fewer if it ended)."""
        inbox = self.inbox[stream_id]
        self._settle(
            lambda: len(inbox) >= count or stream_id in self.ended or stream_id in self.reset,
            timeout,
        )
        return [inbox.popleft() for _ in range(min(count, len(inbox)))]

    def message(self, stream_id: int, timeout: float = 10.0) -> str | bytes:
        """The next whole data message (fragments joined)."""
        parts: list[bytes] = []
        kind: Opcode | None = None
        deadline = time.monotonic() + timeout
        while True:
            (frame,) = self.frames(stream_id, 1, deadline - time.monotonic()) or (None,)
            if frame is None:
                raise TimeoutError("no message")
            if frame.opcode in (Opcode.PING, Opcode.PONG):
                continue
            if frame.opcode is Opcode.CLOSE:
                raise EOFError(frame)
            kind = kind or frame.opcode
            parts.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(parts)
                return data.decode() if kind is Opcode.TEXT else data

    def close_code(self, stream_id: int, timeout: float = 10.0) -> int | None:
        """The code of the CLOSE the server sent (None: the stream ended without one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.frames(stream_id, 1, deadline - time.monotonic()):
                if frame.opcode is Opcode.CLOSE:
                    return int.from_bytes(frame.data[:2], "big")
            if stream_id in self.ended or stream_id in self.reset:
                return None
        raise TimeoutError("no CLOSE")

    # --- the connection ----------------------------------------------------------------------

    def pass_on(self, stream_id: int) -> None:
        """What the framing wrote, as DATA within the windows (waiting for them)."""
        conn = self.conn
        for data in self.sockets[stream_id].data_to_send():
            if not data:
                conn.end_stream(stream_id)
            left = data
            while left:
                window = self._settle(lambda: conn.local_flow_control_window(stream_id))
                size = min(window, conn.max_outbound_frame_size, len(left))
                conn.send_data(stream_id, left[:size])
                left = left[size:]
                self._flush()
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def _settle(self, done: Callable[[], T], timeout: float = 10.0) -> T:
        """Read and dispatch until `done()` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while not (value := done()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("nothing more from the server")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            for event in self.conn.receive_data(data):
                self._dispatch(event)
                if isinstance(event, h2.events.ConnectionTerminated) and not event.error_code:
                    # A graceful GOAWAY: open streams go on (RFC 9113 §6.8), but h2
                    # would refuse every frame on them from now on.
                    self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
            self._flush()
        return value

    def _dispatch(self, event: h2.events.Event) -> None:
        self.events.append(event)
        if isinstance(event, h2.events.DataReceived):
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            ws = self.sockets.get(event.stream_id)
            if ws is not None:
                ws.receive_data(event.data)
                self._collect(event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.ended.add(event.stream_id)
            ws = self.sockets.get(event.stream_id)
            if ws is not None:
                ws.receive_eof()
                self._collect(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.reset.add(event.stream_id)

    def _collect(self, stream_id: int) -> None:
        self.inbox[stream_id].extend(
            e for e in self.sockets[stream_id].events_received() if isinstance(e, Frame)
        )

    def goaway(self) -> h2.events.ConnectionTerminated | None:
        return next((e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)), None)

    def wait(self, done: Callable[[], T], timeout: float = 10.0) -> T:
        return self._settle(done, timeout)

    def shut(self) -> None:
        self.sock.close()
