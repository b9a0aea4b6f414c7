"""Prefork supervisor: N worker processes of any engine, one port (SO_REUSEPORT).

The supervisor binds the addresses first (to learn the port when it is 0) and keeps
those sockets bound but not listening, which reserves the port. Each worker opens its own
listening socket on it with SO_REUSEPORT, so the kernel spreads new connections across
workers (nginx `reuseport`). With HTTP/3, each worker also opens a UDP socket on the
port the same way; the supervisor holds none (a bound UDP socket in the group would get
its share of datagrams), and connections that move between workers' sockets are handed
over by connection ID (driver/quic, engines/datagrams). A worker that dies is
replaced; SIGTERM/SIGINT is passed to every worker, which drain within the grace
period; stragglers are killed after it.

SIGHUP reloads, as nginx does: the configuration is read again and, if it is valid,
a new generation of workers starts on it beside the old one (their SO_REUSEPORT
sockets join the same ports); once every new worker is ready, the old ones get SIGTERM
and drain. An invalid configuration, or new workers that do not start, leave the old
generation serving. Listeners cannot change on a reload (the supervisor holds them).

With sockets passed by systemd (engines/activation), nothing is bound: the supervisor
holds the passed sockets and every worker accepts from them, inherited over fork.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from lanthorn.config import Config
from lanthorn.driver.admission import ClientTable
from lanthorn.engines import listeners as listening
from lanthorn.errors import ConfigError

log = logging.getLogger("lanthorn")

# (its listening sockets, "I am ready", its row in the shared per-client table)
WorkerMain = Callable[[list[listening.Opened], Callable[[], None], int], None]
RESPAWN_BACKOFF_S = 1.0
START_TIMEOUT_S = 30.0
# Linux ≥ 5.14: connections queued on a closing SO_REUSEPORT listener move to another.
_MIGRATE = Path("/proc/sys/net/ipv4/tcp_migrate_req")


@dataclass(frozen=True)
class Generation:
    """Workers of one configuration and what they share, made before they fork: the
    per-client table and the QUIC mesh's descriptors (closed once they are gone)."""

    config: Config
    worker_main: WorkerMain
    announce: Callable[[list[listening.Bound]], None]  # where it serves (log, ready file)
    clients: ClientTable | None = None
    mesh: tuple[tuple[int, int], ...] = ()

    def close(self) -> None:
        for pair in self.mesh:
            for fd in pair:
                with contextlib.suppress(OSError):
                    os.close(fd)


@dataclass(frozen=True)
class _Child:
    generation: Generation
    row: int  # its row in the per-client table and the QUIC mesh
    started: float


class Supervisor:
    def __init__(
        self,
        generation: Generation,
        shared: list[listening.Opened] | None = None,
        reload: Callable[[], Generation] | None = None,
    ) -> None:
        self.generation = generation
        self.shared = shared or []  # listening sockets every worker serves, if any
        self.reload = reload  # a new generation from the configuration read again
        self.workers: dict[int, _Child] = {}
        self.stopping = False
        self.reloading = False

    @property
    def config(self) -> Config:
        return self.generation.config

    def _spawn(self, addresses: list[listening.Bound], row: int) -> int | None:
        """A worker of the current generation; its pid, or None if it did not start."""
        generation = self.generation
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # worker
            os.close(ready_r)
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor reloads
                signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until the worker's own
                opened = self.shared or self._bind(addresses)

                def ready() -> None:
                    os.write(ready_w, b"1")
                    os.close(ready_w)

                generation.worker_main(opened, ready, row)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        os.close(ready_w)
        self.workers[pid] = _Child(generation, row, time.monotonic())
        with contextlib.closing(open(ready_r, "rb", buffering=0)) as pipe:
            readable, _, _ = select.select([pipe], [], [], START_TIMEOUT_S)
            if not readable or not pipe.read(1):
                log.error("worker %d did not start", pid)
                return None
        return pid

    @staticmethod
    def _bind(addresses: list[listening.Bound]) -> list[listening.Opened]:
        """A worker's own listening sockets on the supervisor's addresses."""
        return [
            (sock, one)
            for host, port, one in addresses
            for sock in listening.bind(host, port, reuse_port=True)
        ]

    def run(self, started: Callable[[], None] | None = None) -> None:
        """Serve until SIGTERM/SIGINT; `started` runs once the first workers are up."""
        server = self.config.server
        if self.shared:
            addresses = listening.bound(listening.streams(self.shared))
            reserved = [sock for sock, _ in self.shared]
        else:  # Bound but not listening: the ports are ours, every connection goes to a worker.
            opened = listening.bind_each(server.listeners(), reuse_port=True, listen=False)
            reserved = [sock for sock, _ in opened]
            addresses = listening.bound(opened)
            # A UDP port taken by another program fails here, not in each worker.
            quic = [sock for sock, one in opened if server.quic_on(one)]
            for sock in listening.datagrams(quic, reuse_port=True):
                sock.close()

        def stop(signum: int, frame: FrameType | None) -> None:
            self.stopping = True

        def reload(signum: int, frame: FrameType | None) -> None:
            self.reloading = True

        def reopen(signum: int, frame: FrameType | None) -> None:
            self._signal_all(signal.SIGUSR1)  # each worker reopens its own log files

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)
        signal.signal(signal.SIGUSR1, reopen)
        for row in range(server.workers):
            self._spawn(addresses, row)
        if started is not None:
            started()
        self.generation.announce(addresses)
        try:
            while not self.stopping:
                time.sleep(0.1)
                if self.reloading:
                    self.reloading = False
                    if self._reload(addresses):
                        self.generation.announce(addresses)
                self._reap(addresses)
        finally:
            self._stop_all()
            for sock in reserved:
                sock.close()

    def _reload(self, addresses: list[listening.Bound]) -> bool:
        """SIGHUP: a new generation on the configuration read again, then the old one
        drains; True once the new one serves."""
        if self.reload is None:
            log.warning("SIGHUP: this server has no configuration to read again")
            return False
        try:
            fresh = self.reload()
        except (ConfigError, OSError) as exc:
            log.error("reload failed, the old configuration keeps serving: %s", exc)
            return False
        if fresh.config.server.listeners() != self.config.server.listeners():
            fresh.close()
            log.error("reload refused: listeners change only with a restart")
            return False
        old, self.generation = self.generation, fresh
        started = [self._spawn(addresses, row) for row in range(fresh.config.server.workers)]
        if None in started:
            log.error("reload failed: new workers did not start; the old ones keep serving")
            self.generation = old
            self._signal_all(signal.SIGKILL, fresh)
            return False
        retiring = self._signal_all(signal.SIGTERM, old)
        log.info("reloaded: %d new workers serve, %d old ones drain", len(started), retiring)
        if not self.shared and _MIGRATE.exists() and _MIGRATE.read_text().strip() == "0":
            log.info(
                "a client connecting just as an old worker closes its listener is reset: "
                "sysctl net.ipv4.tcp_migrate_req=1 hands it to a new worker instead"
            )
        return True

    def _signal_all(self, signum: int, generation: Generation | None = None) -> int:
        """Send `signum` to every worker (of `generation`, if given); how many."""
        sent = 0
        for pid, child in list(self.workers.items()):
            if generation is None or child.generation is generation:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
                    sent += 1
        return sent

    def _reap(self, addresses: list[listening.Bound]) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.workers.pop(pid, None)
            if child is None:
                continue
            if child.generation.clients is not None:
                child.generation.clients.clear_worker(child.row)  # its connections died
            if child.generation is not self.generation:  # an old worker has drained
                if not any(c.generation is child.generation for c in self.workers.values()):
                    child.generation.close()
                continue
            if self.stopping:
                continue
            log.warning("worker %d exited (status %d); starting a new one", pid, status)
            if time.monotonic() - child.started < RESPAWN_BACKOFF_S:
                time.sleep(RESPAWN_BACKOFF_S)  # a crash loop must not spin
            self._spawn(addresses, child.row)

    def _stop_all(self) -> None:
        count = self._signal_all(signal.SIGTERM)
        log.info("stopping: %d worker%s draining", count, "" if count == 1 else "s")
        deadline = time.monotonic() + self.config.limits.grace_s + 2.0
        while self.workers and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                self.workers.pop(pid, None)
            else:
                time.sleep(0.05)
        if self.workers:
            log.warning(
                "%d workers still running after the grace period: killed", len(self.workers)
            )
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        self.workers.clear()
        log.info("stopped")
