"""One worker's metrics, kept in plain dicts off the hot path, and the snapshots the
process serving /metrics sums (engines/exporter).

Requests, bytes, durations and errors are counted from the access records, a batch at a
time, when the access log flushes (so a request costs nothing more here); drivers bump
the few things records do not show: connections open by protocol, TLS handshakes,
connections refused. Every PUBLISH_S the worker writes a snapshot — JSON, written to a
temporary name and renamed, so a reader never sees half of one — to its own file in the
server's private runtime directory (`<dir>/<pid>.json`), and a last one when it stops,
so its counts outlive it. A scrape is therefore at most PUBLISH_S plus one housekeeping
tick (a quarter of a second) behind.

Counts are bumped under a lock: the threads model flushes and connects from many threads.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
from collections.abc import Iterable
from typing import Any

from lanthorn.logs import Record

PUBLISH_S = 0.5
# Request duration buckets (seconds): a static server answers in well under a
# millisecond from its cache; large downloads to slow clients take seconds to minutes.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0, 60.0)  # fmt: skip
METHODS = frozenset({"GET", "HEAD", "POST", "OPTIONS"})  # any other is "other"
PROTOCOLS = {"1.0": "HTTP/1.0", "1.1": "HTTP/1.1", "2.0": "HTTP/2", "3.0": "HTTP/3"}

Snapshot = dict[str, Any]


class Tally:
    """One worker's counts. Labels are bounded: status class, a method among METHODS or
    "other", a protocol among PROTOCOLS' values or "unknown", an error status."""

    def __init__(self, directory: str) -> None:
        self._path = os.path.join(directory, f"{os.getpid()}.json")
        self._lock = threading.Lock()
        self._published_at = 0.0
        # (status class, method, protocol) → count; WebSockets count at their close.
        self.requests: dict[tuple[str, str, str], int] = {}
        self.errors: dict[int, int] = {}  # status ≥ 400 → count
        self.body_bytes = 0
        # Requests' durations (WebSockets excluded: a lifetime is not a latency).
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last is +Inf
        self.duration_sum = 0.0
        self.open: dict[str, int] = {}  # protocol → connections open now
        self.handshakes = 0
        self.handshake_failures = 0
        self.refused: dict[str, int] = {}  # why → count
        self.cache = (0, 0)  # small-file cache (hits, misses), as the core counts them

    def count(self, records: list[Record]) -> None:
        """A batch of access records (AccessLog's `count`)."""
        requests, errors, buckets = self.requests, self.errors, self.buckets
        with self._lock:
            for record in records:
                method = record[1].decode("latin-1")
                status = record[4]
                key = (
                    f"{status // 100}xx",
                    method if method in METHODS else "other",
                    PROTOCOLS.get(record[3], "unknown"),
                )
                requests[key] = requests.get(key, 0) + 1
                if status >= 400:
                    errors[status] = errors.get(status, 0) + 1
                self.body_bytes += record[5]
                if record[9] is None:
                    took = record[11]
                    buckets[bisect.bisect_left(BUCKETS, took)] += 1
                    self.duration_sum += took

    def opened(self, protocol: str) -> None:
        with self._lock:
            self.open[protocol] = self.open.get(protocol, 0) + 1

    def closed(self, protocol: str) -> None:
        with self._lock:
            self.open[protocol] -= 1

    def handshake(self, ok: bool) -> None:
        with self._lock:
            self.handshakes += 1
            self.handshake_failures += not ok

    def refuse(self, why: str) -> None:
        with self._lock:
            self.refused[why] = self.refused.get(why, 0) + 1

    def snapshot(self) -> Snapshot:
        with self._lock:
            return {
                "pid": os.getpid(),
                "requests": [[*key, n] for key, n in self.requests.items()],
                "errors": {str(status): n for status, n in self.errors.items()},
                "body_bytes": self.body_bytes,
                "buckets": list(self.buckets),
                "duration_sum": self.duration_sum,
                "open": dict(self.open),
                "handshakes": self.handshakes,
                "handshake_failures": self.handshake_failures,
                "refused": dict(self.refused),
                "cache": list(self.cache),
            }

    def due(self, now: float) -> bool:
        """Time to publish (`now` monotonic): at most every PUBLISH_S."""
        if now - self._published_at < PUBLISH_S:
            return False
        self._published_at = now
        return True

    def publish(self) -> None:
        """Write the snapshot, atomically, where the exporter reads it."""
        tmp = f"{self._path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.snapshot(), fh)
            os.replace(tmp, self._path)
        except OSError:  # the directory went with the server: nothing to publish to
            pass


def total(snapshots: Iterable[Snapshot], alive: Iterable[int]) -> Snapshot:
    """The server's counts: every worker's summed (a gone worker's last counts stay in
    the totals; its open connections, being gone, are not counted)."""
    living = set(alive)
    requests: dict[tuple[str, str, str], int] = {}
    errors: dict[str, int] = {}
    buckets = [0] * (len(BUCKETS) + 1)
    open_: dict[str, int] = {}
    refused: dict[str, int] = {}
    sums = {"body_bytes": 0, "duration_sum": 0.0, "handshakes": 0, "handshake_failures": 0}
    hits = misses = 0
    for snap in snapshots:
        for status_class, method, protocol, n in snap["requests"]:
            key = (status_class, method, protocol)
            requests[key] = requests.get(key, 0) + n
        _add(errors, snap["errors"])
        _add(refused, snap["refused"])
        if snap["pid"] in living:
            _add(open_, snap["open"])
        for i, n in enumerate(snap["buckets"]):
            buckets[i] += n
        for name in sums:
            sums[name] += snap[name]
        hits += snap["cache"][0]
        misses += snap["cache"][1]
    return {
        "requests": requests,
        "errors": errors,
        "buckets": buckets,
        "open": open_,
        "refused": refused,
        "cache": (hits, misses),
        **sums,
    }


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for key, n in more.items():
        into[key] = into.get(key, 0) + n
