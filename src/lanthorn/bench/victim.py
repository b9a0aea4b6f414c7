"""The other clients while an attack runs: wrk (keep-alive GETs of a small file, as many
as the server answers) and a probe (one keep-alive GET every 50 ms) whose worst latency
counts a request still unanswered when the window ends — wrk never reports those —
plus a sampler of the server's resident memory."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

from lanthorn.bench import load
from lanthorn.bench.targets import pinned, process_tree, rss_bytes

PROBE_INTERVAL_S = 0.05
PROBE_GRACE_S = 1.0  # the last request, sent before the window closed, may finish this late


@dataclass(frozen=True)
class Victim:
    requests_per_s: float
    requests: int
    errors: int  # wrk's socket errors and timeouts, non-2xx answers
    latency_max_s: float  # wrk's worst completed request
    probe_requests: int
    probe_max_s: float  # the probe's worst, an unanswered request counted until given up
    probe_unanswered: bool  # a probe request had no answer PROBE_GRACE_S after the window

    @property
    def worst_latency_s(self) -> float:
        return max(self.latency_max_s, self.probe_max_s)


def _wrk_max(out: str) -> float:
    match = re.search(r"Latency\s+\S+\s+\S+\s+(\d[\d.]*(?:us|ms|s|m))", out)
    return load._seconds(match.group(1)) if match else 0.0


class Probe(threading.Thread):
    """Sequential keep-alive GETs until `stop_at` (reconnecting when closed); the last
    one is waited for until `deadline`."""

    def __init__(self, port: int, path: str, stop_at: float) -> None:
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.stop_at, self.deadline = stop_at, stop_at + PROBE_GRACE_S
        self.latencies: list[float] = []
        self.unanswered = False

    def _exchange(self, sock: socket.socket) -> bool:
        """One request; False when time ran out first."""
        sock.sendall(f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if length is None or len(body) >= int(length.group(1)):
                    return True
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return False
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return False
            if not chunk:
                raise ConnectionError("closed")
            data += chunk

    def run(self) -> None:
        sock: socket.socket | None = None
        while (now := time.monotonic()) < self.stop_at:
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), self.deadline - now)
                answered = self._exchange(sock)
            except OSError as exc:  # refused, reset, closed; or not even accepted in time
                answered = not isinstance(exc, TimeoutError)
                if sock is not None:
                    sock.close()
                sock = None
            self.latencies.append(time.monotonic() - now)
            if not answered:
                self.unanswered = True
                break
            time.sleep(max(0.0, PROBE_INTERVAL_S - (time.monotonic() - now)))
        if sock is not None:
            sock.close()


def run_victim(port: int, path: str, conns: int, duration_s: float, cpu: int | None) -> Victim:
    """wrk and the probe side by side for `duration_s` (whole seconds for wrk)."""
    seconds = max(1, round(duration_s))
    probe = Probe(port, path, time.monotonic() + seconds)
    probe.start()
    argv = [load.require("wrk", "wrk"), "-t1", f"-c{conns}", f"-d{seconds}s",
            "--timeout", "30s", "--latency", f"http://127.0.0.1:{port}{path}"]  # fmt: skip
    out = subprocess.run(
        pinned(cpu, argv), capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    probe.join()
    result = load.parse_wrk(out, " ".join(argv))
    return Victim(
        result.requests_per_s,
        result.requests,
        result.errors,
        _wrk_max(out),
        len(probe.latencies),
        max(probe.latencies, default=0.0),
        probe.unanswered,
    )


class RssSampler(threading.Thread):
    """The server's resident memory (all its processes) every 0.1 s; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_bytes(process_tree(self.pid)))
            self.stopping.wait(0.1)

    def stop(self) -> int:
        self.stopping.set()
        if self.is_alive():
            self.join()
        return self.peak
