"""What one HTTP/1.1 keep-alive request for a small cached file costs the driver, in
process, without sockets: `python -m lanthorn.bench.perrequest` feeds a GET, takes the
answer, reports it written (`drained`), and prints µs per request, the best of ROUNDS,
with the access log off, to /dev/null, and with metrics counted too; then the same GET
over HTTP/2, ten streams a batch as `h2load -m10` sends them.
Records are formatted as they are in a server: in batches, at flush. A quick check of
the per-request work a change adds; `lanthorn bench` measures the server for real."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import hpack

from lanthorn.clock import monotonic
from lanthorn.config import Config, ServerConfig, SiteConfig
from lanthorn.driver import connect
from lanthorn.driver.context import Service, Worker
from lanthorn.driver.http1 import HttpConnection
from lanthorn.protocol import h2wire
from lanthorn.protocol.http2 import PREFACE

REQUEST = b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nUser-Agent: perrequest/1\r\n\r\n"
COUNT = 100_000
ROUNDS = 5
STREAMS = 10  # per batch, as h2load -m10
FIELDS = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"localhost"),
          (b":path", b"/small.txt"), (b"user-agent", b"perrequest/1")]  # fmt: skip


def per_request(service: Service, count: int) -> float:
    """µs per request over `count` requests on one connection."""
    conn = HttpConnection(service, "127.0.0.1", monotonic())
    started = time.perf_counter()
    for _ in range(count):
        now = monotonic()
        conn.feed(REQUEST, now)
        conn.drained(now)
        service.tick(now)
    elapsed = time.perf_counter() - started
    conn.abort()
    return elapsed / count * 1e6


def per_stream(service: Service, count: int) -> float:
    """µs per HTTP/2 request over `count` requests on one connection, STREAMS at once;
    the client's field blocks are those of an HPACK encoder (indexed after the first),
    and with each batch it grants back the connection window the bodies used."""
    conn = connect(service, "127.0.0.1", monotonic())
    conn.feed(PREFACE + h2wire.settings({}), monotonic())
    # The client's blocks: literals that enter its dynamic table, then indexes only.
    encoder = hpack.Encoder()
    blocks = [encoder.encode(FIELDS), encoder.encode(FIELDS)]
    stream_id = 1
    body = (Path(service.config.site.root) / "small.txt").stat().st_size
    credit = h2wire.window_update(0, body * STREAMS)
    flags = h2wire.END_STREAM | h2wire.END_HEADERS
    started = time.perf_counter()
    for _ in range(count // STREAMS):
        frames = [credit]
        for _ in range(STREAMS):
            block = blocks[stream_id > 1]
            frames += [h2wire.head(len(block), h2wire.HEADERS, flags, stream_id), block]
            stream_id += 2
        now = monotonic()
        conn.feed(b"".join(frames), now)
        conn.drained(now)
        service.tick(now)
    elapsed = time.perf_counter() - started
    conn.abort()
    return elapsed / count * 1e6


def measure(
    config: Config,
    count: int,
    worker: Worker | None = None,
    run: Callable[[Service, int], float] = per_request,
) -> float:
    service = Service(config, worker=worker)
    try:
        run(service, count // 10)  # warm the cache and the date
        return min(run(service, count) for _ in range(ROUNDS))
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=COUNT, help="requests per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "small.txt").write_bytes(b"x" * 512)
        base = Config(site=SiteConfig(root=root))
        for label, server in (
            ("log off", ServerConfig(access_log="off")),
            ("log /dev/null", ServerConfig(access_log="/dev/null")),
        ):
            config = dataclasses.replace(base, server=server)
            print(f"{label:>16}: {measure(config, args.count):6.2f} µs/request")
        config = dataclasses.replace(base, server=ServerConfig(access_log="off"))
        worker = Worker(metrics_dir=root)
        print(f"{'log off, metrics':>16}: {measure(config, args.count, worker):6.2f} µs/request")
        http2 = measure(config, args.count, None, per_stream)
        print(f"{'HTTP/2, log off':>16}: {http2:6.2f} µs/request")


if __name__ == "__main__":
    main()
