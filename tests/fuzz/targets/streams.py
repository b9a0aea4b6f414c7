"""The HTTP/2 connection driver (lanthorn.driver.streams.Streams) over a real Service, a
small document root and a WebSocket echo endpoint at /ws (RFC 8441 tunnels), fed the same
client frames as the adapter target, with time passing, batches drained and the worker
draining in between.

Invariants: the driver never lets an exception reach its guard (which would log it and
cut the connection: a bug); it answers only bytes and CLOSE, CLOSE last and nothing but
CLOSE after it; everything it writes parses as HTTP/2 frames with decodable header
blocks; its deadline is a finite time; and once it is closed (or aborted) every file it
opened is closed.
"""

from __future__ import annotations

import math

from lanthorn.config import Config, Limits, ServerConfig, SiteConfig, WebSocketConfig
from lanthorn.driver.context import Service
from lanthorn.driver.contract import CLOSE, Action
from lanthorn.driver.streams import Streams
from lanthorn.protocol.http2 import Http2
from tests.fuzz.source import Source
from tests.fuzz.targets import scratch
from tests.fuzz.targets.frames import ACT, FLUSH, PREFACE, OutputChecker, deliveries
from tests.fuzz.targets.guard import GUARD

_ROOT = scratch("streams")
(_ROOT / "a.txt").write_bytes(b"hello")
(_ROOT / "big.bin").write_bytes(bytes(range(256)) * 300)  # 75 KiB: several DATA frames
(_ROOT / "sub").mkdir()
# A page that names a stylesheet: its GET gets a 103 Early Hints before the 200.
(_ROOT / "sub" / "index.html").write_bytes(b'<link rel=stylesheet href="/a.txt"><p>sub</p>')

LIMITS = (
    Limits(header_timeout_s=10, keepalive_timeout_s=20, send_timeout_s=30),
    Limits(max_streams=3, max_body_bytes=50, max_url_bytes=40, max_headers=4, send_timeout_s=5),
)


class Driven:
    def __init__(self, limits: Limits) -> None:
        config = Config(
            server=ServerConfig(access_log="off"),
            site=SiteConfig(root=str(_ROOT), small_file_bytes=1024),
            limits=limits,
            # An echo endpoint: extended CONNECT is offered, and tunnels can open.
            websocket=WebSocketConfig(echo="/ws", max_message_bytes=4096, ping_interval_s=5),
        )
        self.service = Service(config)
        adapter = Http2(limits, 0.0, tunnels=True)
        self.streams = Streams(self.service, "peer", 0.0, adapter)
        self.output = OutputChecker()
        self.now = 0.0
        self.closed = False

    def take(self, actions: list[Action]) -> None:
        GUARD.check()
        assert not self.closed, "called after CLOSE"
        for index, action in enumerate(actions):
            if action is CLOSE:
                assert index == len(actions) - 1, "CLOSE is not the last action"
                self.closed = True
            else:
                assert isinstance(action, bytes), action
                self.output.check(action)
        assert math.isfinite(self.streams.deadline) and self.streams.deadline >= 0

    def act(self, code: int) -> None:
        streams = self.streams
        self.now += (code >> 3) / 4
        action = code & 7
        if action in (0, 1):
            self.take(streams.drained(self.now))
        elif action == 2:
            self.take(streams.expired(max(self.now, streams.deadline)))
            self.now = max(self.now, streams.deadline)
        elif action == 3:
            streams.progressed(self.now)
        elif action == 4 and self.service.draining:
            self.take(streams.drained(self.now))
        elif action == 4:
            self.service.drain(self.now)
            self.take(streams.drained(self.now))
        elif action == 5:
            self.take(streams.shutdown())
        else:
            assert isinstance(streams.idle, bool)


def fuzz(data: bytes) -> None:
    source = Source(data)
    with GUARD.watching():
        driven = Driven(source.pick(LIMITS))
        try:
            _run(driven, source)
        finally:
            driven.streams.abort()
            driven.service.close()


def _run(driven: Driven, source: Source) -> None:
    streams = driven.streams
    driven.take(streams.feed(PREFACE, 0.0))
    for kind, value in deliveries(source):
        if driven.closed:
            return  # an engine closes the socket: nothing more reaches the driver
        if kind == ACT:
            assert isinstance(value, int)
            driven.act(value)
        elif value:
            assert isinstance(value, bytes)
            if kind == FLUSH:
                driven.take(streams.feed(value, driven.now))
            else:  # the last input arrives while a batch is written: `drained` takes it
                driven.take(streams.drained(driven.now, value))
    for _ in range(50):  # let what was started finish, as an engine would
        if driven.closed or streams.idle:
            break
        driven.take(streams.drained(driven.now))
