"""The WebSocket adapter after an accepted handshake: arbitrary bytes from the client,
split at arbitrary points, with or without permessage-deflate.

Input: one byte choosing deflate and the message limit, one byte N, N chunk lengths (0:
the rest), then the byte stream.

Invariants: `receive` never raises; what it returns are data frames (text, binary,
continuation), each within the message limit; echoing them never raises; every text
message delivered is valid UTF-8 once complete; once the adapter says the connection is
over, it stays over; and the frames delivered do not depend on how the stream was split.
"""

from __future__ import annotations

import base64
import codecs

from websockets.frames import Opcode

from lanthorn.protocol.websocket import WebSocket
from tests.fuzz.source import Source
from tests.fuzz.targets.http1 import split

KEY = base64.b64encode(b"0123456789abcdef")
LIMITS = (64, 1024)


def _opened(deflate: bool, limit: int) -> WebSocket:
    ws = WebSocket(limit, (), deflate)
    headers = {
        b"host": b"t", b"upgrade": b"websocket", b"connection": b"Upgrade",
        b"sec-websocket-key": KEY, b"sec-websocket-version": b"13",
    }  # fmt: skip
    if deflate:
        headers[b"sec-websocket-extensions"] = b"permessage-deflate"
    answer, status = ws.handshake(b"/echo", headers)
    assert status == 101, answer
    return ws


def run(chunks: list[bytes], deflate: bool, limit: int) -> list[tuple[int, bool, bytes]]:
    ws = _opened(deflate, limit)
    frames: list[tuple[int, bool, bytes]] = []
    text = None
    ended = False
    for chunk in chunks:
        for frame in ws.receive(chunk):
            assert not ended, "frames after the end"
            assert frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)
            assert len(frame.data) <= limit
            if frame.opcode is Opcode.TEXT:
                text = codecs.getincrementaldecoder("utf-8")()
            if text is not None and frame.opcode is not Opcode.BINARY:
                text.decode(frame.data, frame.fin)  # raises if invalid reached us
                if frame.fin:
                    text = None
            ws.echo(frame)
            frames.append((int(frame.opcode), frame.fin, bytes(frame.data)))
        _, over = ws.output()
        ended = ended or over
    return frames


def fuzz(data: bytes) -> None:
    source = Source(data)
    choice = source.byte()
    deflate, limit = bool(choice & 1), LIMITS[(choice >> 1) & 1]
    lengths = [source.byte() for _ in range(source.byte() % 8)]
    stream = source.rest()
    whole = run([stream], deflate, limit)
    pieces = run(split(stream, lengths), deflate, limit)
    assert pieces == whole, f"split {lengths} changed the frames:\n{pieces}\n{whole}"
