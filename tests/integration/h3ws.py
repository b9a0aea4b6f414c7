"""A WebSocket client over HTTP/3 (RFC 9220): an extended CONNECT on a request stream of
the aioquic client (h3client), with the `websockets` library's client framing."""

from __future__ import annotations

import time
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.headers import parse_extension
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.integration.h2ws import Refused
from tests.integration.h3client import H3Client

ENABLE_CONNECT_PROTOCOL = 0x8  # the HTTP/3 setting (RFC 9220 §3)


class H3WebSocket:
    """One QUIC connection; WebSockets on its request streams (`open` returns one)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.client = H3Client(port, timeout=timeout)
        self.timeout = timeout
        self.sockets: dict[int, ClientProtocol] = {}
        self._read: dict[int, int] = {}  # how much of each stream's bytes were framed
        self._until(lambda: self.client.h3.received_settings is not None)

    @property
    def connect_protocol(self) -> bool:
        settings = self.client.h3.received_settings or {}
        return settings.get(ENABLE_CONNECT_PROTOCOL) == 1

    def open(
        self, path: str, *, origin: str | None = None, deflate: bool = False,
        version: bytes = b"13",
    ) -> int:  # fmt: skip
        """An extended CONNECT for a WebSocket at `path`: its stream once open (Refused
        with the status otherwise)."""
        authority = b"127.0.0.1:%d" % self.client.address[1]
        fields = [
            (b":protocol", b"websocket"), (b":scheme", b"https"), (b":authority", authority),
            (b"sec-websocket-version", version),
        ]  # fmt: skip
        if origin is not None:
            fields.append((b"origin", origin.encode()))
        if deflate:
            fields.append((b"sec-websocket-extensions", b"permessage-deflate"))
        stream_id = self.client.request(path, "CONNECT", fields, end=False)
        response = self.client.responses[stream_id]
        self._until(lambda: response.status or response.reset is not None)
        if response.reset is not None:
            raise ConnectionResetError(f"stream {stream_id} reset ({response.reset:#x})")
        if not 200 <= response.status < 300:
            raise Refused(response.status, response.headers)
        extensions: list[Extension] = []
        accepted = response.headers.get(b"sec-websocket-extensions")
        if accepted is not None:
            factory = ClientPerMessageDeflateFactory()
            for name, params in parse_extension(accepted.decode()):
                assert name == factory.name
                extensions.append(factory.process_response_params(params, []))
        ws = ClientProtocol(parse_uri(f"ws://{authority.decode()}{path}"), state=State.OPEN)
        ws.extensions = extensions
        self.sockets[stream_id] = ws
        self._read[stream_id] = 0
        return stream_id

    def send(self, stream_id: int, message: str | bytes) -> None:
        ws = self.sockets[stream_id]
        if isinstance(message, str):
            ws.send_text(message.encode())
        else:
            ws.send_binary(message)
        self.pass_on(stream_id)

    def close(self, stream_id: int, code: int = 1000) -> None:
        self.sockets[stream_id].send_close(code)
        self.pass_on(stream_id)

    def frames(self, stream_id: int) -> list[Frame]:
        """The frames the server has sent on the stream since last asked."""
        response = self.client.responses[stream_id]
        ws = self.sockets[stream_id]
        fresh = bytes(response.received[self._read[stream_id] :])
        self._read[stream_id] += len(fresh)
        if fresh:
            ws.receive_data(fresh)
        if response.ended and ws.state is not State.CLOSED:
            ws.receive_eof()
        return [e for e in ws.events_received() if isinstance(e, Frame)]

    def message(self, stream_id: int) -> str | bytes:
        """The next data message (unfragmented, as the server sends them)."""
        frames: list[Frame] = []

        def data() -> bool:
            frames.extend(f for f in self.frames(stream_id) if f.opcode is not Opcode.PING)
            return bool(frames)

        self._until(data)
        frame = frames[0]
        if frame.opcode is Opcode.CLOSE:
            raise EOFError(frame)
        payload = bytes(frame.data)
        return payload.decode() if frame.opcode is Opcode.TEXT else payload

    def close_code(self, stream_id: int) -> int | None:
        """The code of the CLOSE the server sent (None: the stream ended without one)."""
        found: list[int | None] = []

        def closed() -> bool:
            for frame in self.frames(stream_id):
                if frame.opcode is Opcode.CLOSE:
                    found.append(int.from_bytes(frame.data[:2], "big"))
            if not found and self.client.responses[stream_id].ended:
                found.append(None)
            return bool(found)

        self._until(closed)
        return found[0]

    def shut(self) -> None:
        self.client.close()

    def pass_on(self, stream_id: int) -> None:
        for data in self.sockets[stream_id].data_to_send():
            self.client.send_data(stream_id, data, end=not data)

    def _until(self, done: Callable[[], object]) -> None:
        deadline = time.monotonic() + self.timeout
        while not done():
            if self.client.terminated is not None:
                raise ConnectionError(f"closed: {self.client.terminated.reason_phrase}")
            if time.monotonic() > deadline:
                raise TimeoutError("nothing more from the server")
            self.client.step()
