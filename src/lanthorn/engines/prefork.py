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
from types import FrameType

from lanthorn.config import Config
from lanthorn.driver.admission import ClientTable
from lanthorn.engines import listeners as listening

log = logging.getLogger("lanthorn")

# (its listening sockets, "I am ready", its row in the shared per-client table)
WorkerMain = Callable[[list[listening.Opened], Callable[[], None], int], None]
RESPAWN_BACKOFF_S = 1.0


class Supervisor:
    def __init__(
        self,
        config: Config,
        worker_main: WorkerMain,
        clients: ClientTable | None = None,
        shared: list[listening.Opened] | None = None,
    ) -> None:
        self.config = config
        self.shared = shared or []  # listening sockets every worker serves, if any
        self.worker_main = worker_main
        self.clients = clients
        self.workers: dict[int, float] = {}  # pid → start time
        self.rows: dict[int, int] = {}  # pid → its row in the per-client table
        self.stopping = False

    def _spawn(self, addresses: list[listening.Bound], row: int) -> int:
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # worker
            os.close(ready_r)
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until the worker's own
                opened = self.shared or self._bind(addresses)

                def ready() -> None:
                    os.write(ready_w, b"1")
                    os.close(ready_w)

                self.worker_main(opened, ready, row)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        os.close(ready_w)
        with contextlib.closing(open(ready_r, "rb", buffering=0)) as pipe:
            readable, _, _ = select.select([pipe], [], [], 30)
            if not readable or not pipe.read(1):
                log.error("worker %d did not start", pid)
        self.workers[pid] = time.monotonic()
        self.rows[pid] = row
        return pid

    @staticmethod
    def _bind(addresses: list[listening.Bound]) -> list[listening.Opened]:
        """A worker's own listening sockets on the supervisor's addresses."""
        return [
            (sock, one)
            for host, port, one in addresses
            for sock in listening.bind(host, port, reuse_port=True)
        ]

    def run(self, on_ready: Callable[[list[listening.Bound]], None]) -> None:
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

        def reopen(signum: int, frame: FrameType | None) -> None:
            for pid in self.workers:  # each worker reopens its own log files
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGUSR1)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGUSR1, reopen)
        for row in range(server.workers):
            self._spawn(addresses, row)
        on_ready(addresses)
        try:
            while not self.stopping:
                time.sleep(0.1)
                self._reap(addresses)
        finally:
            self._stop_all()
            for sock in reserved:
                sock.close()

    def _reap(self, addresses: list[listening.Bound]) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            started = self.workers.pop(pid, time.monotonic())
            row = self.rows.pop(pid, 0)
            if self.clients is not None:
                self.clients.clear_worker(row)  # its connections died with it
            if self.stopping:
                continue
            log.warning("worker %d exited (status %d); starting a new one", pid, status)
            if time.monotonic() - started < RESPAWN_BACKOFF_S:
                time.sleep(RESPAWN_BACKOFF_S)  # a crash loop must not spin
            self._spawn(addresses, row)

    def _stop_all(self) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
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
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        self.workers.clear()
