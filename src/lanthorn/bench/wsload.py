"""A WebSocket echo load generator: N connections, each sending one message and waiting
for its echo, again and again (ping-pong, so latency is a round trip).

    python -m lanthorn.bench.wsload URL --conns 10 --size 64 --duration 5

Built to stay out of the way: uvloop, raw sockets, one pre-masked frame per size (the
mask is fixed: the server unmasks whatever it is), and echoes checked by length only.
Prints one JSON line: messages/s, latency percentiles, errors, and the generator's own
CPU use per second of the run (near 1.0: the generator, not the server, was the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import struct
import time
from urllib.parse import urlsplit

import uvloop

_MASK = b"\x11\x22\x33\x44"


def client_frame(payload: bytes) -> bytes:
    """A masked binary frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        head = bytes([0x82, 0x80 | size])
    elif size < 65536:
        head = bytes([0x82, 0x80 | 126]) + struct.pack("!H", size)
    else:
        head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", size)
    mask = _MASK * (size // 4 + 1)
    return head + _MASK + bytes(a ^ b for a, b in zip(payload, mask, strict=False))


def server_frame_size(size: int) -> int:
    """The length of an unmasked echo of `size` payload bytes."""
    return size + (2 if size < 126 else 4 if size < 65536 else 10)


async def _open(
    host: str, port: int, path: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return reader, writer


async def _client(
    url: str, frame: bytes, echo_size: int, until: float, latencies: list[float]
) -> int:
    parts = urlsplit(url)
    reader, writer = await _open(parts.hostname or "127.0.0.1", parts.port or 80, parts.path)
    errors = 0
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(frame)
            await reader.readexactly(echo_size)
            latencies.append(time.perf_counter() - started)
    except (OSError, asyncio.IncompleteReadError):
        errors += 1
    writer.close()
    return errors


async def _run(url: str, conns: int, size: int, duration_s: float) -> dict[str, float]:
    frame = client_frame(os.urandom(size))
    latencies: list[float] = []
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    until = started + duration_s
    results = await asyncio.gather(
        *(_client(url, frame, server_frame_size(size), until, latencies) for _ in range(conns)),
        return_exceptions=True,
    )
    wall = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    errors = sum(r if isinstance(r, int) else 1 for r in results)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    return {
        "messages_per_s": len(latencies) / wall,
        "p50_ms": pct(0.50) * 1000,
        "p99_ms": pct(0.99) * 1000,
        "errors": errors,
        "generator_cpu_per_s": cpu_s / wall,
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m lanthorn.bench.wsload")
    p.add_argument("url")
    p.add_argument("--conns", type=int, default=10)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--duration", type=float, default=5.0)
    args = p.parse_args()
    result = uvloop.run(_run(args.url, args.conns, args.size, args.duration))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
