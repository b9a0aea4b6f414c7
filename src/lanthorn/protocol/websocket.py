"""WebSocket (RFC 6455) as a sans-IO adapter over the `websockets` library's protocol
layer: the opening handshake answered for a request HTTP/1 has parsed (or, over HTTP/2,
for an extended CONNECT: RFC 8441 §5), then frames in and frames out.

Chosen over wsproto by measurement (a masked 64-byte message parsed and echoed: 5.3 µs
against 16.8 µs; 64 KiB: 45 µs against 145 µs, on this machine): `websockets` unmasks
in C, and it bounds a message's size after permessage-deflate (RFC 7692) has inflated it,
so a deflate bomb is a 1009 close, not memory. It also answers PINGs and the closing
handshake itself. What it leaves to us: UTF-8 of text messages across fragments
(RFC 6455 §8.1: invalid → 1007), which `TextCheck` validates incrementally.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHandshake, InvalidOrigin
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Origin

_DATA = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT})


def is_websocket_upgrade(method: bytes, headers: Mapping[bytes, bytes]) -> bool:
    """A request that asks for a WebSocket (RFC 6455 §4.1); the handshake checks the rest."""
    return method == b"GET" and headers.get(b"upgrade", b"").lower() == b"websocket"


def is_websocket_tunnel(headers: Mapping[bytes, bytes]) -> bool:
    """An extended CONNECT that asks for a WebSocket (RFC 8441 §4)."""
    return headers.get(b":protocol") == b"websocket"


class _Protocol(ServerProtocol):
    def recv_frame(self, frame: Frame) -> None:
        # RFC 6455 §5.4: control frames may come between the fragments of a message,
        # CLOSE included; the unfinished message is dropped and the close answered as
        # any other (Autobahn 7.1.5), where the library would fail the socket with 1002.
        if frame.opcode is Opcode.CLOSE:
            self.current_size = None
        super().recv_frame(frame)


class WebSocket:
    """One WebSocket's framing, server side."""

    __slots__ = ("_text", "_ws")

    def __init__(
        self, max_message: int, origins: Iterable[str], deflate: bool, tunnel: bool = False
    ) -> None:
        """`origins`: the Origin values a browser may send (RFC 6455 §10.2); a client
        that sends none is not a browser, and is let in. `tunnel`: over an HTTP/2
        stream, opened by `open_tunnel` (else by `handshake`)."""
        self._ws = _Protocol(
            origins=[None, *(Origin(o) for o in origins)],
            extensions=[ServerPerMessageDeflateFactory()] if deflate else None,
            max_size=max_message,
            # Over HTTP/2 there is no HTTP/1 head for the library to parse: it starts
            # with frames, and `open_tunnel` does the handshake's checks.
            state=State.OPEN if tunnel else State.CONNECTING,
        )
        self._text: codecs.IncrementalDecoder | None = None  # inside a text message

    def handshake(self, target: bytes, headers: Mapping[bytes, bytes]) -> tuple[bytes, int]:
        """The answer to the opening handshake and its status: 101 when the WebSocket is
        open, else 400 (malformed), 403 (a foreign Origin) or 426 (another version)."""
        fields = _fields(headers)
        ws = self._ws
        # The library reads the request itself (its parser starts with one): give it
        # the head HTTP/1 parsed, re-serialised, and answer what it made of it.
        ws.receive_data(Request(target.decode("latin-1"), fields).serialize())
        (request,) = ws.events_received()
        assert isinstance(request, Request)
        if headers.get(b"sec-websocket-version", b"").strip() != b"13":
            # RFC 6455 §4.4: say which version is spoken (the library answers 400 alone).
            response = ws.reject(426, "WebSocket version 13 only\n")
            response.headers["Upgrade"] = "websocket"
            response.headers["Sec-WebSocket-Version"] = "13"
        else:
            response = ws.accept(request)
        ws.send_response(response)
        return b"".join(ws.data_to_send()), response.status_code

    def open_tunnel(self, headers: Mapping[bytes, bytes]) -> tuple[int, list[tuple[bytes, bytes]]]:
        """The opening handshake over an extended CONNECT (RFC 8441 §5: no key, no
        accept; the rest of RFC 6455 §4.2 stands): 200 and the response's fields when
        the WebSocket is open, else 400 (malformed), 403 (a foreign Origin) or 426
        (another version), with the fields to send with that status."""
        if headers.get(b"sec-websocket-version", b"").strip() != b"13":
            return 426, [(b"sec-websocket-version", b"13")]  # RFC 6455 §4.4
        ws = self._ws
        fields = _fields(headers)
        try:
            ws.process_origin(fields)
            accepted, ws.extensions = ws.process_extensions(fields)
        except InvalidOrigin:
            return 403, []
        except InvalidHandshake:
            return 400, []
        if accepted is None:
            return 200, []
        return 200, [(b"sec-websocket-extensions", accepted.encode("latin-1"))]

    def receive(self, data: bytes) -> list[Frame]:
        """The data frames (text, binary, continuation) in `data`; control frames are
        answered inside (PONG, the closing handshake). b"" is the peer's EOF."""
        ws = self._ws
        if data:
            ws.receive_data(data)
        else:
            ws.receive_eof()
        frames = [f for f in ws.events_received() if isinstance(f, Frame) and f.opcode in _DATA]
        for index, frame in enumerate(frames):
            if not self._valid_text(frame):
                ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
                return frames[:index]  # what came before it was valid, as if read apart
        return frames

    def _valid_text(self, frame: Frame) -> bool:
        decoder = self._text
        if frame.opcode is Opcode.TEXT:
            decoder = self._text = codecs.getincrementaldecoder("utf-8")()
        elif frame.opcode is not Opcode.CONT or decoder is None:
            return True  # binary
        try:
            decoder.decode(frame.data, frame.fin)
        except UnicodeDecodeError:
            return False
        if frame.fin:
            self._text = None
        return True

    def echo(self, frame: Frame) -> None:
        """Send `frame`'s payload back as the same kind of frame (fragments stay
        fragments, so an echo holds one frame, never a whole message). Nothing once
        the closing handshake has begun (frames that arrived with or before a CLOSE)."""
        ws = self._ws
        if ws.state is not State.OPEN:
            return
        if frame.opcode is Opcode.TEXT:
            ws.send_text(frame.data, frame.fin)
        elif frame.opcode is Opcode.BINARY:
            ws.send_binary(frame.data, frame.fin)
        else:
            ws.send_continuation(frame.data, frame.fin)

    def send(self, text: str) -> None:
        if self._ws.state is State.OPEN:
            self._ws.send_text(text.encode())

    def ping(self) -> None:
        if self._ws.state is State.OPEN:
            self._ws.send_ping(b"lanthorn")

    def close(self, code: int) -> None:
        """Start the closing handshake (1001 when the server goes away)."""
        if self._ws.state is State.OPEN:
            self._ws.send_close(code)

    def output(self) -> tuple[bytes, bool]:
        """Bytes to send, and whether the TCP connection should then be closed (the
        closing handshake is over, or the client broke the protocol)."""
        chunks = self._ws.data_to_send()
        ended = bool(chunks) and chunks[-1] == b""  # websockets' "send EOF now"
        return b"".join(chunks), ended or self._ws.state is State.CLOSED

    @property
    def open(self) -> bool:
        return self._ws.state is State.OPEN

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code


def _fields(headers: Mapping[bytes, bytes]) -> Headers:
    fields = Headers()
    for name, value in headers.items():
        fields[name.decode("latin-1")] = value.decode("latin-1")
    return fields
