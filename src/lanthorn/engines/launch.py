"""Start a server from a Config: bind, pick the engine, report readiness, run."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

from lanthorn.config import QUIC_MODELS, Config, ServerConfig
from lanthorn.driver import Service
from lanthorn.driver.context import Certificate, Door, Worker
from lanthorn.engines import activation, datagrams, watch
from lanthorn.engines import listeners as listening
from lanthorn.engines.exporter import Exporter
from lanthorn.engines.identity import account, become
from lanthorn.engines.notify import notify
from lanthorn.engines.prefork import Generation, Supervisor
from lanthorn.engines.tlscontext import server_tls

log = logging.getLogger("lanthorn")

EngineRun = Callable[[list[socket.socket], Service, Callable[[], None]], None]


def engine(model: str) -> EngineRun:
    module = importlib.import_module(f"lanthorn.engines.{model}")
    run: EngineRun = module.run
    return run


def alt_svc(config: Config, sockets: list[socket.socket]) -> Config:
    """With UDP sockets among `sockets`, every response advertises HTTP/3 on their port
    (RFC 7838), so browsers switch."""
    ports = [s.getsockname()[1] for s in sockets if s.type == socket.SOCK_DGRAM]
    if not ports:
        return config
    header = f'Alt-Svc: h3=":{ports[0]}"; ma=86400'
    site = dataclasses.replace(config.site, headers=(*config.site.headers, header))
    return dataclasses.replace(config, site=site)


def _reopen_on_sigusr1(service: Service) -> None:
    """SIGUSR1 (logrotate's postrotate, as nginx): the log files are opened anew at the
    next housekeeping tick (a quarter of a second), not in the handler."""

    def reopen(signum: int, frame: FrameType | None) -> None:
        service.reopen_logs = True

    signal.signal(signal.SIGUSR1, reopen)


def _exporter(server: ServerConfig) -> Exporter | None:
    """The metrics endpoint, if asked for, bound before anything else (a missing extra
    or a taken port fails here), its directory writable by the workers' user."""
    if server.metrics is None:
        return None
    exporter = Exporter(server.metrics)
    if server.user is not None:
        user = account(server.user)
        exporter.share(user.pw_uid, user.pw_gid)
    return exporter


def _https_port(where: list[listening.Bound]) -> int | None:
    """The port of the first HTTPS listener, if any."""
    return next((port for _, port, one in where if one.tls), None)


def doors(where: list[listening.Bound]) -> list[Door]:
    """What each listener speaks; a redirecting one sends clients to the first HTTPS
    listener's port."""
    https = _https_port(where)
    return [Door(one.tls, one.proxy, https if one.redirect else None) for _, _, one in where]


def _advise_trust(certificate: Certificate | None, where: list[listening.Bound]) -> None:
    """With --tls internal: how to make clients trust the local CA, with the first
    HTTPS listener's URL."""
    from lanthorn.engines.localtls import LocalCertificate  # (cryptography: only for it)

    https = _https_port(where)
    if https is None or not isinstance(certificate, LocalCertificate):
        return
    log.info("to trust the local CA (once per machine and user):")
    for command in certificate.trust_commands(listening.url("localhost", https, "https")):
        log.info("  %s", command)


def prepare(
    config: Config,
    shared_udp: bool = False,
    exporter: Exporter | None = None,
    reload: Callable[[], Config] | None = None,
) -> Generation:
    """What serving `config` needs before its workers fork: the TLS context and
    certificate (an unusable one fails here, before binding or forking), the
    per-client table, the QUIC mesh, and the worker's main function (which, serving alone,
    applies `reload()`'s configuration in place on SIGHUP)."""
    server = config.server
    run = engine(server.model)
    tls = server_tls(config)
    context, certificate = tls if tls is not None else (None, None)
    if server.user is not None:
        account(server.user)  # an unknown user fails before binding too
    table = Service.client_table(config)  # per-client limits, shared by the workers
    # Which worker is which, and the key they share (drawn here, before they fork).
    pairs = datagrams.mesh(server.workers) if server.quic and server.workers > 1 else ()
    metrics_dir = exporter.directory if exporter is not None else None
    group = Worker(count=server.workers, mesh=pairs, shared_udp=shared_udp, metrics_dir=metrics_dir)

    def announce(where: list[listening.Bound]) -> None:
        """Say where the server is serving (the log, the ready file, systemd)."""
        for host, port, one in where:
            log.info(
                "serving %s at %s (model %s, %d worker%s%s%s)",
                config.site.root,
                listening.url(host, port, listening.scheme(one)),
                server.model,
                server.workers,
                "" if server.workers == 1 else "s",
                ", HTTP/3 on UDP too" if server.quic_on(one) else "",
                ", after a PROXY protocol header" if one.proxy else "",
            )
        if server.tls == "internal":
            _advise_trust(certificate, where)
        extra = exporter.announce() if exporter is not None else {}
        if server.ready_file:
            urls = [(host, port, listening.scheme(one)) for host, port, one in where]
            listening.write_ready_file(
                server.ready_file, urls, model=server.model, workers=server.workers, **extra
            )
        notify(f"READY=1\nSTATUS=serving {config.site.root}")

    def worker_main(opened: list[listening.Opened], ready: Callable[[], None], row: int) -> None:
        """Worker `row` (the only one, or one of the supervisor's) on its listeners."""
        sockets = [sock for sock, _ in opened]
        streams = listening.streams(opened)
        if len(streams) == len(opened):  # no UDP socket was passed: one beside each TLS one
            quic = [sock for sock, one in streams if server.quic_on(one)]
            sockets += listening.datagrams(quic, reuse_port=server.workers > 1)
        admission = Service.admission_for(config, table, row)
        worker = dataclasses.replace(group, row=row)
        service = Service(alt_svc(config, sockets), context, admission, worker, certificate)
        if certificate is not None:  # forked later than the first, it may be due already
            certificate.tick(time.monotonic())
        for (sock, _), door in zip(streams, doors(listening.bound(streams)), strict=True):
            if door != Door(context is not None):  # the service itself speaks as that one
                service.open_door(sock.fileno(), door)
        if exporter is not None and server.workers == 1:  # else the supervisor serves it
            exporter.adopt(lambda: service.draining, here=True)
        _reopen_on_sigusr1(service)
        if server.workers == 1 and reload is not None:
            service.reread = lambda: alt_svc(reload(), sockets)
            _reload_on_sighup(service)
        watch.start(service)
        become(server.user)  # the ports are bound and the log is open
        run(sockets, service, ready)

    return Generation(config, worker_main, announce, table, pairs)


def serve(config: Config, reload: Callable[[], Config] | None = None) -> None:
    """Run until SIGTERM/SIGINT and a graceful drain. With several workers, SIGHUP
    starts workers on `reload()`'s configuration and drains the old ones."""
    server = config.server
    passed = activation.inherited(server)  # by systemd: served instead of the listeners
    shared_udp = len(listening.streams(passed)) < len(passed)
    exporter = _exporter(server)
    generation = prepare(config, shared_udp, exporter, reload if server.workers == 1 else None)
    if server.https and not server.quic and server.http3 is None:
        log.info(
            "HTTP/3 is off: the %s model has no UDP path (--model %s has one)",
            server.model,
            " or ".join(QUIC_MODELS),
        )
    try:
        if server.workers == 1:
            opened = passed or listening.bind_each(server.listeners())
            streams = listening.bound(listening.streams(opened))
            generation.worker_main(opened, lambda: generation.announce(streams), 0)
            log.info("stopped")
        else:
            renew = None if reload is None else lambda: prepare(reload(), shared_udp, exporter)
            supervisor = Supervisor(generation, passed, renew)

            def started() -> None:
                """The first workers are up: serve the endpoint from here (its thread
                starts after those forks), ready until the supervisor stops."""
                if exporter is not None:
                    exporter.adopt(lambda: supervisor.stopping)

            supervisor.run(started)
    finally:
        listening.remove_ready_file(server.ready_file)
        if exporter is not None:
            exporter.close()


def _reload_on_sighup(service: Service) -> None:
    """SIGHUP to a server of one process, which cannot replace itself: the configuration
    is read again and applied in place, and the certificate re-read, at the next
    housekeeping tick (not in the handler)."""

    def reload(signum: int, frame: FrameType | None) -> None:
        service.reload_config = True
        service.renew_certificate = service.certificate is not None

    signal.signal(signal.SIGHUP, reload)
