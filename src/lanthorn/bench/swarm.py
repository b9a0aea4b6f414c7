"""The attack clients' engine: non-blocking sockets on one selector, each connection
driven by an `Attack` (what to send first, what to send whenever its output drains,
what to send on a timer), and a record of when the server closed each of them.

Loopback only, bounded in connections and time: `Swarm.run` opens `conns` connections,
waits for them to connect and send their opening (at most `setup_s`), says so through
`ready()`, runs for `duration_s` and closes everything.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lanthorn.bench.h2wire import Scanner

READ_CHUNK = 1 << 20
# The attacker's own address (any of 127.0.0.0/8 is loopback): the other clients come
# from 127.0.0.1, as they would from other machines, so a server that bars an abusive
# address (lanthorn's penalty box) bars the attacker, not them.
SOURCE = "127.0.0.66"
WRITES_PER_TURN = 8  # then back to the selector: reads and the clock


class Conn:
    __slots__ = ("closed", "connected", "next_stream", "next_tick", "opened",
                 "out", "pending_units", "scanner", "sock")  # fmt: skip

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.opened = now
        self.connected = False
        self.closed = False
        self.out = memoryview(b"")
        self.pending_units = 0
        self.scanner = Scanner()
        self.next_stream = 1
        self.next_tick = 0.0


class Attack:
    """One attack's behaviour; subclasses override what they need."""

    name = ""
    unit = "bytes"  # what `units` counts in the report
    default_conns = 1
    opening_units = 0  # units the opening counts for
    tick_s: float | None = None  # call `tick` this often per connection
    flood = False  # sends without pause; a new connection when the server closes one

    def opening(self, conn: Conn) -> bytes:
        return b""

    def refill(self, conn: Conn) -> tuple[bytes, int]:
        """More to send once the output drained: (bytes, units); b"" holds."""
        return b"", 0

    def tick(self, conn: Conn) -> tuple[bytes, int]:
        return b"", 0


@dataclass
class Stats:
    attack: str
    conns: int
    unit: str
    opened: int = 0  # connections opened, reconnections included
    connected_at_ready: int = 0
    ready_after_s: float = 0.0
    duration_s: float = 0.0
    bytes_sent: int = 0
    units: int = 0
    connect_errors: int = 0
    closed_by_server: int = 0
    open_at_end: int = 0
    first_close_s: float | None = None  # since the attack started (ready)
    lifetimes_s: dict[str, float] = field(default_factory=dict)  # min/median/max of closed
    goaway: dict[str, int] = field(default_factory=dict)  # error code -> count
    frames_received: int = 0
    cpu_s: float = 0.0  # the attacker's own CPU time


class Swarm:
    def __init__(
        self, attack: Attack, port: int, conns: int, duration_s: float, setup_s: float = 15.0
    ) -> None:
        self.attack, self.port, self.conns = attack, port, conns
        self.duration_s, self.setup_s = duration_s, setup_s
        self.sel = selectors.DefaultSelector()
        self.live: list[Conn] = []
        self.lifetimes: list[float] = []
        self.start = 0.0  # when the attack proper began (after setup)
        self.stats = Stats(attack.name, conns, attack.unit)

    def open(self, now: float) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.bind((SOURCE, 0))
        err = sock.connect_ex(("127.0.0.1", self.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self.stats.connect_errors += 1
            return
        conn = Conn(sock, now)
        conn.out = memoryview(self.attack.opening(conn))
        conn.pending_units = self.attack.opening_units
        if self.attack.tick_s is not None:
            conn.next_tick = now + self.attack.tick_s * (len(self.live) % 97 + 1) / 97
        self.live.append(conn)
        self.stats.opened += 1
        self.sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def close(self, conn: Conn, now: float, by_server: bool) -> None:
        if conn.closed:
            return
        conn.closed = True
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn.sock)
        conn.sock.close()
        self.live.remove(conn)
        self._account(conn)
        if by_server:
            self.stats.closed_by_server += 1
            self.lifetimes.append(now - conn.opened)
            if self.start and self.stats.first_close_s is None:
                self.stats.first_close_s = max(0.0, now - self.start)
            if self.attack.flood and self.start:
                self.open(now)

    def _interest(self, conn: Conn) -> None:
        events = selectors.EVENT_READ
        if len(conn.out) or not conn.connected or (self.attack.flood and self.start):
            events |= selectors.EVENT_WRITE
        self.sel.modify(conn.sock, events, conn)

    def _write(self, conn: Conn, now: float) -> None:
        if not conn.connected:
            if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.stats.connect_errors += 1
                self.close(conn, now, by_server=False)
                return
            conn.connected = True
        for _ in range(WRITES_PER_TURN):
            if not len(conn.out):
                self.stats.units += conn.pending_units
                conn.pending_units = 0
                data, units = self.attack.refill(conn) if self.start else (b"", 0)
                if not data:
                    break
                conn.out, conn.pending_units = memoryview(data), units
            try:
                sent = conn.sock.send(conn.out)
            except BlockingIOError:
                break
            except OSError:
                self.close(conn, now, by_server=True)
                return
            self.stats.bytes_sent += sent
            conn.out = conn.out[sent:]
        self._interest(conn)

    def _read(self, conn: Conn, now: float) -> None:
        try:
            data = conn.sock.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close(conn, now, by_server=True)
        else:
            conn.scanner.feed(data)

    def _ticks(self, now: float) -> float:
        """Send what is due; the time until the next tick."""
        tick_s = self.attack.tick_s
        if tick_s is None:
            return 0.1
        soonest = now + tick_s
        for conn in list(self.live):
            if conn.connected and conn.next_tick <= now and self.start:
                data, units = self.attack.tick(conn)
                conn.out = memoryview(bytes(conn.out) + data)
                conn.pending_units += units
                conn.next_tick = now + tick_s
                self._write(conn, now)
            soonest = min(soonest, conn.next_tick)
        return max(0.0, min(0.1, soonest - now))

    def _step(self, timeout: float) -> None:
        for key, events in self.sel.select(timeout):
            conn: Conn = key.data
            now = time.monotonic()
            if events & selectors.EVENT_READ:
                self._read(conn, now)
            if events & selectors.EVENT_WRITE and not conn.closed:
                self._write(conn, now)

    def _set_up(self) -> bool:
        """All connected with their opening sent, or setup time over."""
        return all(c.connected and not len(c.out) for c in self.live)

    def run(self, ready: Callable[[], None]) -> Stats:
        began = time.monotonic()
        try:
            for _ in range(self.conns):
                self.open(began)
            while not self._set_up() and time.monotonic() - began < self.setup_s:
                self._step(0.05)
            self.start = time.monotonic()
            self.stats.ready_after_s = self.start - began
            self.stats.connected_at_ready = sum(c.connected for c in self.live)
            ready()
            for conn in list(self.live):  # floods start sending
                if conn.connected:
                    self._write(conn, self.start)
            deadline = self.start + self.duration_s
            while (now := time.monotonic()) < deadline:
                self._step(min(self._ticks(now), deadline - now))
            self.stats.duration_s = time.monotonic() - self.start
            return self._finish()
        finally:
            for conn in list(self.live):
                conn.sock.close()
            self.sel.close()

    def _account(self, conn: Conn) -> None:
        self.stats.frames_received += conn.scanner.frames
        for code in conn.scanner.goaway:
            self.stats.goaway[str(code)] = self.stats.goaway.get(str(code), 0) + 1

    def _finish(self) -> Stats:
        stats = self.stats
        stats.open_at_end = len(self.live)
        for conn in self.live:
            self._account(conn)
        if self.lifetimes:
            stats.lifetimes_s = {
                "min": min(self.lifetimes),
                "median": statistics.median(self.lifetimes),
                "max": max(self.lifetimes),
            }
        return stats
