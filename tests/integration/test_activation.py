"""systemd socket activation for real: sockets made here are passed to a server as
systemd passes them — as descriptors 3, 4, … with LISTEN_FDS and LISTEN_PID set to the
server's own pid (bash exports its `$$`, then `exec`s the server, which keeps that
pid) — and the server must serve on them, with one worker or several; when LISTEN_PID
names another process they are ignored. NOTIFY_SOCKET gets READY=1 (sd_notify)."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.conftest import INDEX
from tests.integration.h3client import H3Client
from tests.servers import Server

_HIGH_FD = 20  # the passed sockets wait here, above 3, 4, … where they are put (bash, not
# dash: dash reads one-digit descriptors only)


@contextlib.contextmanager
def systemd(
    *socks: socket.socket, pid: str = "$$", notify: Path | None = None
) -> Iterator[dict[str, object]]:
    """Server keyword arguments that pass `socks` as systemd would, in order."""
    fds = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, _HIGH_FD) for s in socks]
    names = ":".join(f"sock{i}" for i in range(len(socks)))
    moves = " ".join(f"{3 + i}<&{fd} {fd}<&-" for i, fd in enumerate(fds))
    env = f"LISTEN_FDS={len(fds)} LISTEN_FDNAMES={names} LISTEN_PID={pid}"
    if notify is not None:
        env += f" NOTIFY_SOCKET={shlex.quote(str(notify))}"
    script = f'export {env}; exec "$@" {moves}'
    try:
        yield {"launcher": ["bash", "-c", script, "bash"], "pass_fds": fds}
    finally:
        for fd in fds:
            os.close(fd)


def _get(port: int, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


@pytest.mark.parametrize(
    ("model", "workers"),
    [("asyncio", 1), ("asyncio", 2), ("events", 2), ("threads", 2), ("single", 1)],
)
def test_serves_on_the_passed_socket(
    site: Path, tmp_path: Path, listener: socket.socket, model: str, workers: int
) -> None:
    port = listener.getsockname()[1]
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify,
        systemd(listener, notify=tmp_path / "notify") as passing,
    ):
        notify.bind(str(tmp_path / "notify"))
        notify.settimeout(10)
        args = ("--model", model, "-w", str(workers), "--access-log", "off")
        with Server(site, *args, tmp=tmp_path, **passing) as srv:  # type: ignore[arg-type]
            assert srv.port == port  # the ready file names the passed socket, not port 0's
            for _ in range(3 * workers):  # connections spread over the workers
                assert _get(port) == (200, INDEX)
            assert notify.recv(1000).startswith(b"READY=1\n")
        assert srv.proc.returncode == 0
    log = srv.output()
    assert f"systemd passed (sock0: TCP 127.0.0.1:{port})" in log, log
    assert "Traceback" not in log, log


def test_passed_to_another_process_is_ignored(
    site: Path, tmp_path: Path, listener: socket.socket
) -> None:
    with (
        systemd(listener, pid="1") as passing,
        Server(site, "--access-log", "off", tmp=tmp_path, **passing) as srv,  # type: ignore[arg-type]
    ):
        assert srv.port != listener.getsockname()[1]  # bound --host/--port as usual
        assert _get(srv.port) == (200, INDEX)
    assert "systemd" not in srv.output()


@pytest.mark.parametrize("workers", [1, 2])
def test_http3_on_a_passed_udp_socket(site: Path, tmp_path: Path, workers: int) -> None:
    _, cert, key = certs.make(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        # TCP on another port than UDP: only a passed UDP socket can serve HTTP/3 there.
        with (
            socket.create_server(("127.0.0.1", 0)) as tcp,
            systemd(tcp, udp) as passing,
        ):
            args = ("--tls-cert", str(cert), "--tls-key", str(key), "--http3", "-w", str(workers))
            with Server(site, *args, tmp=tmp_path, **passing) as srv:  # type: ignore[arg-type]
                assert srv.port == tcp.getsockname()[1]
                # (30 s: with two workers on one passed socket, a client's first packets
                # sometimes go unanswered and are sent again after QUIC's growing
                # retransmission timeouts, up to 2.3 s measured alone and past 10 s in a
                # loaded full suite run; a known defect, docs/deploy.md.)
                client = H3Client(udp.getsockname()[1], timeout=30.0)
                try:
                    response = client.get("/")
                finally:
                    client.close()
                assert (response.status, response.body) == (200, INDEX)
    assert "Traceback" not in srv.output(), srv.output()
