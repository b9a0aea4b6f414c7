"""`--metrics HOST:PORT`: Prometheus text at /metrics, /healthz and /readyz, served by a
small threaded HTTP server in a daemon thread of the process that sees every worker —
the supervisor with several workers, else the only worker. It is not the hot path.

Each worker publishes its counts to its own file in a private runtime directory
(lanthorn.metrics); a scrape sums the files it finds (a worker that is gone keeps its
last counts; its open connections are not counted), so the totals are at most
lanthorn.metrics.PUBLISH_S plus a housekeeping tick behind the workers.

/healthz is 200 "ok" while the process lives; /readyz is 200 while the server takes
requests and 503 from the moment it begins to stop (SIGTERM: the supervisor's
`stopping`, or the only worker's `draining`), so a balancer stops sending before the
workers close. Anything else: 404.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lanthorn.config import metrics_address
from lanthorn.errors import ConfigError
from lanthorn.metrics import BUCKETS, total

log = logging.getLogger("lanthorn")
MISSING = "--metrics needs prometheus-client: pip install 'lanthorn[metrics]'"


class Exporter:
    """The endpoint, bound when made (before any worker forks); `adopt` serves it."""

    def __init__(self, address: str) -> None:
        try:
            from prometheus_client import CollectorRegistry
        except ImportError:
            raise ConfigError(MISSING) from None
        host, port = metrics_address(address)
        self.registry = CollectorRegistry(auto_describe=False)
        self.directory = tempfile.mkdtemp(prefix="lanthorn-metrics-")  # private: 0700
        self.registry.register(_Totals(self.directory))
        # Until the server takes requests, and again once it stops: not ready.
        self.ready: Callable[[], bool] = lambda: False
        try:
            self._http = _Server((host, port), self)
        except OSError as exc:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise ConfigError(f"cannot serve metrics at {address}: {exc.strerror}") from None
        self._thread: threading.Thread | None = None

    @property
    def bound(self) -> tuple[str, int]:
        host, port = self._http.socket.getsockname()[:2]
        return str(host), int(port)

    def share(self, uid: int, gid: int) -> None:
        """Workers that run as another user (--user) publish into the directory too."""
        os.chown(self.directory, uid, gid)

    def announce(self) -> dict[str, object]:
        """Say where it is; what the ready file gets to say it."""
        host, port = self.bound
        log.info("metrics at http://%s/metrics (and /healthz, /readyz)", _hostport(host, port))
        return {"metrics": {"host": host, "port": port}}

    def adopt(self, stopping: Callable[[], bool], here: bool = True) -> None:
        """Serve the endpoint from this process, ready until `stopping()`; or, `here`
        False (a forked worker), leave it to the supervisor: close its socket."""
        if not here:
            self._http.socket.close()
            return
        self.ready = lambda: not stopping()
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._http.shutdown()
        self._http.server_close()
        shutil.rmtree(self.directory, ignore_errors=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], exporter: Exporter) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.exporter = exporter
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: Any) -> None:
        """A client gone mid-answer (a balancer's check that resets, a probe that times
        out) is no error; anything else is logged, without ending the endpoint."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        log.exception("metrics endpoint: a request from %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "lanthorn-metrics"
    timeout = 10  # seconds a client may take to send its request: a stalled one ends

    def do_GET(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        exporter = self.server.exporter
        path = self.path.partition("?")[0]
        if path == "/metrics":
            self._answer(200, generate_latest(exporter.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            self._answer(200, b"ok\n")
        elif path == "/readyz":
            ready = exporter.ready()
            self._answer(200 if ready else 503, b"ready\n" if ready else b"stopping\n")
        else:
            self._answer(404, b"not found\n")

    def _answer(self, status: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes are not logged: they come every few seconds."""


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _snapshots(directory: str) -> Iterator[dict[str, Any]]:
    for path in glob.glob(os.path.join(directory, "*.json")):
        # (gone meanwhile, or not ours)
        with contextlib.suppress(OSError, ValueError), open(path, encoding="utf-8") as fh:
            yield json.load(fh)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a worker running as another user
        return True
    return True


class _Totals:
    """A prometheus_client collector: every worker's last snapshot, summed."""

    def __init__(self, directory: str) -> None:
        self._directory = directory

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        snaps = list(_snapshots(self._directory))
        t = total(snaps, (s["pid"] for s in snaps if _alive(s["pid"])))
        requests = CounterMetricFamily(
            "lanthorn_http_requests",
            "Requests answered (WebSockets when they close), by status class, method and protocol.",
            labels=["status_class", "method", "protocol"],
        )
        for (status_class, method, protocol), n in sorted(t["requests"].items()):
            requests.add_metric([status_class, method, protocol], n)
        yield requests
        errors = CounterMetricFamily(
            "lanthorn_http_errors",
            "Answers with a status of 400 or more, by status (400, 404, 408, 413, 429, 503, ...).",
            labels=["status"],
        )
        for status, n in sorted(t["errors"].items()):
            errors.add_metric([status], n)
        yield errors
        yield CounterMetricFamily(
            "lanthorn_http_response_body_bytes",
            "Response body bytes sent (as the access log counts them).",
            value=t["body_bytes"],
        )
        cumulative, running = [], 0
        for bound, n in zip((*map(str, BUCKETS), "+Inf"), t["buckets"], strict=True):
            running += n
            cumulative.append((bound, running))
        yield HistogramMetricFamily(
            "lanthorn_http_request_duration_seconds",
            "From the request head taken up to the last byte handed to the kernel.",
            buckets=cumulative,
            sum_value=t["duration_sum"],
        )
        connections = GaugeMetricFamily(
            "lanthorn_open_connections",
            "Connections open now, by protocol (HTTP/1.1, HTTP/2, HTTP/3, WebSocket).",
            labels=["protocol"],
        )
        for protocol, n in sorted(t["open"].items()):
            connections.add_metric([protocol], n)
        yield connections
        yield CounterMetricFamily(
            "lanthorn_tls_handshakes", "TLS handshakes (TCP and QUIC), completed or failed.",
            value=t["handshakes"],
        )  # fmt: skip
        yield CounterMetricFamily(
            "lanthorn_tls_handshake_failures", "TLS handshakes (TCP and QUIC) that failed.",
            value=t["handshake_failures"],
        )  # fmt: skip
        refused = CounterMetricFamily(
            "lanthorn_connections_refused",
            "Connections refused: client_limit (--max-conns-per-ip), memory (the worker's "
            "budget), penalty (a client cut off for abuse).",
            labels=["reason"],
        )
        for reason, n in sorted(t["refused"].items()):
            refused.add_metric([reason], n)
        yield refused
        hits, misses = t["cache"]
        yield CounterMetricFamily(
            "lanthorn_cache_hits", "Small-file cache lookups answered from it.", value=hits
        )
        yield CounterMetricFamily(
            "lanthorn_cache_misses", "Small-file cache lookups not answered from it.", value=misses
        )
