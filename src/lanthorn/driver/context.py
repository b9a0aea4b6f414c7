"""What every connection driver of one worker shares, whatever the protocol: the site,
limits, clocks, access log, TLS context and certificate, and drain state."""

from __future__ import annotations

import copy
import logging
import math
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from lanthorn.clock import DateCache
from lanthorn.config import Config, fixed_changes
from lanthorn.core.pages import page_plan
from lanthorn.core.redirects import to_https
from lanthorn.core.request import Request
from lanthorn.core.respond import Site
from lanthorn.core.response import ResponsePlan
from lanthorn.driver.admission import Admission, ClientTable, MemoryBudget, PenaltyBox
from lanthorn.driver.realip import RealClient
from lanthorn.errors import ConfigError
from lanthorn.logs import AccessLog
from lanthorn.metrics import Tally

log_error = logging.getLogger("lanthorn")
NO_BODY_STATUSES = frozenset((204, 304))  # RFC 9110 §6.4.1


class Changes:
    """Files changed under the root, as the watcher (engines/watch.py) reports them: a
    report count and the URL paths of the last report. Written by the watcher's thread,
    read by the drivers; `latest` is replaced whole, so a reader sees a consistent pair."""

    def __init__(self) -> None:
        self.latest: tuple[int, tuple[str, ...]] = (0, ())

    def notify(self, paths: tuple[str, ...]) -> None:
        self.latest = (self.latest[0] + 1, paths)


# What takes a certificate in: (PEM chain file, PEM key file or None), as
# ssl.SSLContext.load_cert_chain and qh3's QuicConfiguration.load_cert_chain do.
Load = Callable[[str, str | None], None]


class Certificate(Protocol):
    """The server's certificate, as each TLS endpoint of a worker loads it: the TLS
    context of its TCP connections, the QUIC configuration of each UDP socket. A new
    certificate applies to the handshakes that begin after it is loaded."""

    def load(self, into: Load) -> None:
        """`into(cert, key)` now, and again each time the certificate is renewed."""

    def tick(self, now: float) -> None:
        """Housekeeping (`now` monotonic): renew when it is time; cheap when not.
        Called on the thread that makes new connections' TLS sessions, so a load never
        races a handshake's start."""

    def renew(self) -> None:
        """Now (SIGHUP to a server of one process): files read again, or a new leaf;
        on failure the old certificate stays, and the log says why."""


class CertificateFiles:
    """A certificate the user gave (--tls-cert, --tls-key): loaded as it is, and read
    again only when asked (`renew`, on SIGHUP: certbot's deploy hook)."""

    def __init__(self, cert: str, key: str | None) -> None:
        self.cert = cert
        self.key = key
        self._loaders: list[Load] = []

    def load(self, into: Load) -> None:
        into(self.cert, self.key)
        self._loaders.append(into)

    def tick(self, now: float) -> None:
        return

    def renew(self) -> None:
        """The files read again into every endpoint, once a scratch context has shown
        they are a usable pair (a live context half-loaded would break handshakes)."""
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert, self.key)
            for into in self._loaders:
                into(self.cert, self.key)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log_error.error("certificate not re-read, the old one stays: %s", exc)
            return
        log_error.info("certificate re-read from %s", self.cert)


@dataclass(frozen=True)
class Worker:
    """Which worker of the server this process is, and what all its workers share."""

    row: int = 0  # 0 .. count-1; QUIC connection IDs begin with it
    count: int = 1
    # With several workers serving HTTP/3, the file descriptors of a (receive, send)
    # datagram socket pair per row, made before they fork: what one worker passes to
    # another (engines/datagrams).
    mesh: tuple[tuple[int, int], ...] = ()
    # The workers read one UDP socket between them (passed by systemd), not one each.
    shared_udp: bool = False
    # The key of what any worker must accept from another (QUIC Retry tokens), made once
    # per server before the workers fork.
    secret: bytes = field(default_factory=lambda: os.urandom(32))
    # With --metrics, the private directory each worker publishes its counts to.
    metrics_dir: str | None = None


@dataclass(frozen=True)
class Door:
    """What one listener speaks: HTTPS or cleartext, after a PROXY protocol header or
    not, and whether it sends every request to HTTPS (at that port)."""

    tls: bool = False
    proxied: bool = False
    https_port: int | None = None


class Service:
    """What every connection of one worker shares: the site, limits, clocks and logs.

    A listener other than the first speaks through a view (`open_door`): a shallow copy
    that differs only in `tls`, `proxied` and `https_port`, and shares every object. Its
    plain values that change while serving (`draining`, `stop_at`) are set by `drain`
    on the service and every view alike."""

    def __init__(
        self,
        config: Config,
        tls: ssl.SSLContext | None = None,
        admission: Admission | None = None,
        worker: Worker | None = None,
        certificate: Certificate | None = None,
    ) -> None:
        self.config = config
        self.worker = worker if worker is not None else Worker()
        self.limits = config.limits
        # Per-client limits; a prefork worker gets its view of the server's shared table.
        self.admission = admission if admission is not None else Service.admission_for(config)
        self._too_many: dict[int, ResponsePlan] = {}  # 429 plans by Retry-After seconds
        self.memory = MemoryBudget(config.limits.memory_budget_bytes)
        self.penalties = PenaltyBox(config.limits.abuse_penalty_s)
        self.h2c = config.server.h2c
        # HTTPS when given (engines/tlscontext builds it once, before workers fork),
        # with the certificate loaded into it (and into each QUIC configuration).
        self.tls = tls
        self.certificate = certificate
        self.site = Site(config.site)
        # WebSocket endpoints by path, and what live-reload sockets watch for.
        self.endpoints = config.websocket.endpoints(config.site.live_reload)
        self.changes = Changes()
        directory = self.worker.metrics_dir
        self.tally = Tally(directory) if directory is not None else None
        self.access_log = AccessLog.open(
            config.server.access_log,
            config.server.access_log_format,
            self.tally.count if self.tally is not None else None,
        )
        self.dates = DateCache()
        self.clients = RealClient(config.server.trusted_networks())
        self.proxied = False  # a PROXY protocol header comes first (engines/launch sets it)
        self.https_port: int | None = None  # every request gets 308 to HTTPS on this port
        self._doors: dict[int, Service] = {}  # listening socket → the view spoken there
        self._views: list[Service] = []
        self.draining = False  # set on graceful shutdown: answer, then close
        self.reopen_logs = False  # SIGUSR1 came: the next tick opens the log files anew
        self.renew_certificate = False  # SIGHUP came to the one process: re-read it then
        # The configuration read again (engines/launch sets it for a server of one
        # process), and whether SIGHUP asked for it: applied at the next tick.
        self.reread: Callable[[], Config] | None = None
        self.reload_config = False
        self.stop_at = math.inf  # monotonic time when draining connections are cut

    @staticmethod
    def client_table(config: Config) -> ClientTable | None:
        """The per-client counters the workers share, if any per-client limit is set
        (made before the workers fork)."""
        limits = config.limits
        if not (limits.max_conns_per_ip or limits.rate_per_s()):
            return None
        return ClientTable(config.server.workers, limits.max_connections)

    @staticmethod
    def admission_for(
        config: Config, table: ClientTable | None = None, row: int = 0
    ) -> Admission | None:
        """Worker `row`'s view of the per-client limits (None when they are off); the
        table is made here for a server of one worker."""
        table = table if table is not None else Service.client_table(config)
        if table is None:
            return None
        limits = config.limits
        rate = limits.rate_per_s()
        return Admission(table, row, limits.max_conns_per_ip, rate, limits.rate_burst)

    def admit(self, peer: str) -> bool:
        """A new connection from `peer`: False when that client has too many open, or
        the worker's memory budget is spent (then it was not counted)."""
        if self.memory.exceeded:
            self.refused("memory")
            return False
        if self.admission is None or self.admission.admit(peer):
            return True
        self.refused("client_limit")
        return False

    def connected(self, protocol: str) -> None:
        """A connection now speaks `protocol` (for the metrics)."""
        if self.tally is not None:
            self.tally.opened(protocol)

    def disconnected(self, protocol: str) -> None:
        """A connection that spoke `protocol` is closed, or speaks another now."""
        if self.tally is not None:
            self.tally.closed(protocol)

    def handshake(self, ok: bool) -> None:
        """A TLS handshake (over TCP) completed, or failed (for the metrics)."""
        if self.tally is not None:
            self.tally.handshake(ok)

    def refused(self, why: str) -> None:
        """A connection was refused (for the metrics)."""
        if self.tally is not None:
            self.tally.refuse(why)

    def penalise(self, peer: str, now: float, why: str) -> None:
        """`peer` was cut off for protocol abuse: its next connections are refused."""
        penalty = self.penalties.penalise(peer, now)
        if penalty:
            log_error.warning(
                "%s cut off (%s); its connections are refused for %.0f s", peer, why, penalty
            )

    def release(self, peer: str) -> None:
        """A connection `admit` let in has closed."""
        if self.admission is not None:
            self.admission.release(peer)

    def _reload(self) -> None:
        """SIGHUP to a server of one process: the configuration read again applies to
        every request from now on, on every listener; what cannot change in place is
        kept, and the log names it. A configuration that does not load changes nothing."""
        if self.reread is None:
            return
        try:
            new = self.reread()
        except (ConfigError, OSError) as exc:
            log_error.error("reload failed, the old configuration keeps serving: %s", exc)
            return
        kept = fixed_changes(self.config, new)
        site = Site(new.site)
        endpoints = new.websocket.endpoints(new.site.live_reload)
        held = [k.removeprefix("limits.") for k in kept if k.startswith("limits.")]
        limits = replace(new.limits, **{name: getattr(self.limits, name) for name in held})
        for one in (self, *self._views):
            one.config, one.limits, one.site, one.endpoints = new, limits, site, endpoints
            one.h2c = new.server.h2c
            one._too_many = {}
        logging.getLogger().setLevel(new.server.log_level.upper())
        log_error.info("reloaded in place (the site, timeouts and sizes, WebSockets)")
        if kept:
            log_error.warning("changed, but only a restart (or -w 2) applies: %s", ", ".join(kept))

    def open_door(self, listener: int, door: Door) -> None:
        """Connections accepted on the socket `listener` (a file descriptor) are spoken
        to as `door` says."""
        view = copy.copy(self)
        view.tls = self.tls if door.tls else None
        view.proxied, view.https_port = door.proxied, door.https_port
        self._views.append(view)
        self._doors[listener] = view

    def door(self, listener: int) -> Service:
        """The service as connections accepted on `listener` see it."""
        return self._doors.get(listener, self)

    def drain(self, now: float, connections: int | None = None) -> None:
        """Graceful shutdown begins: finish what is in flight within the grace period
        (the server log says so, with how many `connections` are open, when known)."""
        grace = self.limits.grace_s
        if connections is None:
            log_error.info("stopping: draining, what is left is cut in %g s", grace)
        else:
            log_error.info(
                "stopping: %d connection%s draining, what is left is cut in %g s",
                connections,
                "" if connections == 1 else "s",
                grace,
            )
        for one in (self, *self._views):
            one.draining = True
            one.stop_at = now + grace

    def decide(
        self, request: Request, now: float, wall: float, peer: str, admitted: bool = True
    ) -> ResponsePlan:
        """The core's answer; `now` is monotonic, `wall` the time the answer is dated.
        503 on a connection that was not `admitted` (past its client's connection limit)
        and while the worker is over its memory budget; past `peer`'s request rate, 429
        with Retry-After (RFC 6585 §4)."""
        if not admitted or self.memory.exceeded:
            return self.site.errors[503]
        if self.https_port is not None:
            moved = to_https(request, self.https_port, self.site.common)
            if moved is not None:
                return moved
        if self.admission is not None:
            retry = self.admission.throttle(self.clients.of(peer, request), now)
            if retry:
                return self._throttled(retry)
        request.wall = wall
        try:
            return self.site.respond(request, now)
        except Exception:  # a bug must cost one request, never the server
            log_error.exception("error answering %r", request)
            return self.site.errors[500]

    def _throttled(self, retry_s: int) -> ResponsePlan:
        plan = self._too_many.get(retry_s)
        if plan is None:
            headers = [(b"retry-after", b"%d" % retry_s), *self.site.common]
            plan = page_plan(429, headers)
            if len(self._too_many) < 3600:
                self._too_many[retry_s] = plan
        return plan

    def tick(self, now: float) -> None:
        """Periodic housekeeping (about four times a second): flush the access log, and
        open it anew if SIGUSR1 asked for it (`reopen_logs`, set by engines/launch);
        renew the certificate when it is time; publish the metrics when due."""
        if self.reload_config:
            self.reload_config = False
            self._reload()
        if self.certificate is not None:
            if self.renew_certificate:
                self.renew_certificate = False
                self.certificate.renew()
            self.certificate.tick(now)
        if self.access_log is not None:
            if self.reopen_logs:
                self.reopen_logs = False
                self.access_log.reopen()
            self.access_log.tick(now)
        if self.tally is not None and self.tally.due(now):
            self._publish()

    def _publish(self) -> None:
        """Count what the access log holds, then publish (lanthorn.metrics)."""
        assert self.tally is not None and self.access_log is not None
        self.access_log.flush()
        cache = self.site.cache
        self.tally.cache = (cache.hits, cache.misses)
        self.tally.publish()

    def close(self) -> None:
        if self.tally is not None:
            self._publish()  # the last counts outlive the worker
        if self.access_log is not None:
            self.access_log.close()
