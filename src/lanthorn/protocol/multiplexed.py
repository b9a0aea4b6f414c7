"""What a multiplexed adapter offers the stream driver (`driver.streams.Streams`): many
streams over one connection, each answered by a plan, bodies sent within flow-control
windows, tunnels (extended CONNECT) carried as data. HTTP/2 (`http2.Http2`) is one;
HTTP/3 will be another, so the driver, its pump, timers and limits are written once."""

from __future__ import annotations

from typing import Protocol

from lanthorn.core.response import Fields, ResponsePlan
from lanthorn.protocol.events import Event


class StreamAdapter(Protocol):
    protocol: str  # its name in the server's log: "HTTP/2", "HTTP/3"
    version: str  # as its requests state it: "2.0", "3.0"
    # The engine reports each batch of `output` written (TCP); False: what it sends
    # leaves in the turn that made it (QUIC's datagrams).
    batched: bool

    @property
    def in_message(self) -> bool:
        """Some request has begun and has not ended (tunnels are not requests)."""
        ...

    @property
    def buffered(self) -> int:
        """Input bytes held until a frame or field block is whole."""
        ...

    @property
    def peer_done(self) -> bool:
        """The client will open no more streams."""
        ...

    @property
    def abuse(self) -> str:
        """Why the client was cut off for abuse ("" if it was not)."""
        ...

    def flushed(self, now: float) -> bool:
        """All that was queued has left: over TCP the engine writes what `output` gave
        (True); over QUIC, until the client has acknowledged it, closing would lose it."""
        ...

    def receive(self, data: bytes, now: float) -> list[Event]: ...
    def output(self) -> bytes: ...
    def stalled(self, before: float) -> list[int]: ...
    def oldest(self) -> float | None: ...
    def respond(
        self, stream_id: int, plan: ResponsePlan, end_stream: bool, date: bytes
    ) -> bool: ...

    def inform(self, stream_id: int, fields: Fields) -> bool:
        """A 103 Early Hints with `fields` before the stream's final response; False if
        the stream is gone."""
        ...

    def accept(self, stream_id: int, fields: list[tuple[bytes, bytes]], date: bytes) -> bool: ...

    def acknowledge(self, stream_id: int, flow: int) -> None: ...
    def window(self, stream_id: int) -> int: ...
    def connection_window(self) -> int: ...
    def send(self, stream_id: int, data: bytes, end_stream: bool) -> bool: ...
    def reset(self, stream_id: int, answered: bool = False) -> None: ...
    def goaway(self) -> bytes: ...
