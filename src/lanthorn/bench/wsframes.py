"""The cost of WebSocket framing, server side, in the two sans-IO libraries the issue
named: parse a masked client message and build its echo. `python -m
lanthorn.bench.wsframes` prints µs per message for 64 B and 64 KiB messages (what chose
`websockets` for protocol/websocket.py)."""

from __future__ import annotations

import os
import time

from websockets.protocol import State
from websockets.server import ServerProtocol
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage

READS = 100  # messages per read, as a busy socket delivers them


def client_frames(size: int, count: int) -> bytes:
    client = Connection(ConnectionType.CLIENT)
    message = BytesMessage(os.urandom(size))
    return b"".join(client.send(message) for _ in range(count))


def per_message_wsproto(data: bytes, count: int) -> float:
    server = Connection(ConnectionType.SERVER)
    step = len(data) // count * READS
    started = time.perf_counter()
    echoed = 0
    for i in range(0, len(data), step):
        server.receive_data(data[i : i + step])
        for event in server.events():
            assert isinstance(event, BytesMessage)
            server.send(BytesMessage(event.data))
            echoed += 1
    assert echoed == count
    return (time.perf_counter() - started) / count * 1e6


def per_message_websockets(data: bytes, count: int) -> float:
    server = ServerProtocol(max_size=None, state=State.OPEN)
    step = len(data) // count * READS
    started = time.perf_counter()
    echoed = 0
    for i in range(0, len(data), step):
        server.receive_data(data[i : i + step])
        for frame in server.events_received():
            server.send_binary(frame.data)  # type: ignore[union-attr]
            echoed += 1
        server.data_to_send()
    assert echoed == count
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    for size, count in ((64, 100_000), (64 * 1024, 2_000)):
        data = client_frames(size, count)
        wsproto_us = per_message_wsproto(data, count)
        websockets_us = per_message_websockets(data, count)
        print(f"{size:>6} B: wsproto {wsproto_us:7.2f} µs, websockets {websockets_us:7.2f} µs")


if __name__ == "__main__":
    main()
