"""Start a server from a Config: bind, pick the engine, report readiness, run."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType

from lanthorn.config import QUIC_MODELS, Config, ServerConfig
from lanthorn.driver import Service
from lanthorn.driver.context import Worker
from lanthorn.engines import datagrams, watch
from lanthorn.engines import listeners as listening
from lanthorn.engines.exporter import Exporter
from lanthorn.engines.identity import account, become
from lanthorn.engines.prefork import Supervisor
from lanthorn.engines.tlscontext import server_context

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


def serve(config: Config) -> None:
    """Run until SIGTERM/SIGINT and a graceful drain."""
    server = config.server
    run = engine(server.model)
    tls = server_context(config)  # fails early, before binding or forking
    if server.user is not None:
        account(server.user)  # an unknown user fails before binding too
    exporter = _exporter(server)
    table = Service.client_table(config)  # per-client limits, shared by the workers
    # Which worker is which, and the key they share (drawn here, before they fork).
    pairs = datagrams.mesh(server.workers) if server.quic and server.workers > 1 else ()
    metrics_dir = exporter.directory if exporter is not None else None
    group = Worker(count=server.workers, mesh=pairs, metrics_dir=metrics_dir)
    scheme = "http" if tls is None else "https"
    if tls is not None and not server.quic and server.http3 is None:
        log.info(
            "HTTP/3 is off: the %s model has no UDP path (--model %s has one)",
            server.model,
            " or ".join(QUIC_MODELS),
        )

    def announce(addresses: list[tuple[str, int]]) -> None:
        for host, port in addresses:
            log.info(
                "serving %s at %s (model %s, %d worker%s%s)",
                config.site.root,
                listening.url(host, port, scheme),
                server.model,
                server.workers,
                "" if server.workers == 1 else "s",
                ", HTTP/3 on UDP too" if server.quic else "",
            )
        extra = exporter.announce() if exporter is not None else {}
        if server.ready_file:
            listening.write_ready_file(
                server.ready_file,
                addresses,
                scheme,
                model=server.model,
                workers=server.workers,
                **extra,
            )

    def worker_main(sockets: list[socket.socket], ready: Callable[[], None], row: int) -> None:
        """Worker `row` (the only one, or one of the supervisor's) on its bound sockets."""
        admission = Service.admission_for(config, table, row)
        worker = dataclasses.replace(group, row=row)
        service = Service(alt_svc(config, sockets), tls, admission, worker)
        if exporter is not None:  # served here by the only worker, else by the supervisor
            exporter.adopt(lambda: service.draining, here=server.workers == 1)
        _reopen_on_sigusr1(service)
        watch.start(service)
        become(server.user)  # the ports are bound and the log is open
        run(sockets, service, ready)

    try:
        if server.workers == 1:
            sockets = listening.bind(server.host, server.port)
            if server.quic:
                sockets += listening.datagrams(sockets)
            streams = [s for s in sockets if s.type == socket.SOCK_STREAM]
            worker_main(sockets, lambda: announce(listening.addresses(streams)), 0)
        else:
            supervisor = Supervisor(config, worker_main, table)

            def started(addresses: list[tuple[str, int]]) -> None:
                """Every worker is up: serve the endpoint (the threads start after the
                first forks), ready until the supervisor stops."""
                if exporter is not None:
                    exporter.adopt(lambda: supervisor.stopping)
                announce(addresses)

            supervisor.run(started)
    finally:
        listening.remove_ready_file(server.ready_file)
        if exporter is not None:
            exporter.close()
