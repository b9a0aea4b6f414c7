"""The cost of WebSocket framing, server side, in the two sans-IO libraries the issue
named: parse a masked client message and build its echo. `python -m
lanthorn.bench.wsframes` prints µs per message for 64 B and 64 KiB messages (what chose
`websockets` for protocol/websocket.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from websockets.protocol import State
from websockets.server import ServerProtocol
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage

READS = 100  # messages per read, as a busy socket delivers them


def client_frames(size: int, count: int) -> bytes:
    client = Connection(ConnectionType.CLIENT)
    message = BytesMessage(os.urandom(size))
    return b"".join(client.send(message) for _ in range(count))


def per_message(data: bytes, count: int, echo: Callable[[bytes], int]) -> float:
    """µs per message to feed `data` (`count` messages) to `echo`, READS at a time."""
    step = len(data) // count * READS
    started = time.perf_counter()
    echoed = sum(echo(data[i : i + step]) for i in range(0, len(data), step))
    assert echoed == count
    return (time.perf_counter() - started) / count * 1e6


def wsproto_echo() -> Callable[[bytes], int]:
    server = Connection(ConnectionType.SERVER)

    def echo(chunk: bytes) -> int:
        server.receive_data(chunk)
        events = list(server.events())
        for event in events:
            assert isinstance(event, BytesMessage)
            server.send(BytesMessage(event.data))
        return len(events)

    return echo


def websockets_echo() -> Callable[[bytes], int]:
    server = ServerProtocol(max_size=None, state=State.OPEN)

    def echo(chunk: bytes) -> int:
        server.receive_data(chunk)
        frames = server.events_received()
        for frame in frames:
            server.send_binary(frame.data)  # type: ignore[union-attr]
        server.data_to_send()
        return len(frames)

    return echo


def main() -> None:
    for size, count in ((64, 100_000), (64 * 1024, 2_000)):
        data = client_frames(size, count)
        wsproto_us = per_message(data, count, wsproto_echo())
        websockets_us = per_message(data, count, websockets_echo())
        print(f"{size:>6} B: wsproto {wsproto_us:7.2f} µs, websockets {websockets_us:7.2f} µs")


if __name__ == "__main__":
    main()
