"""Timeouts and connection caps, on every model, with short limits."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MODELS
from tests.integration import observe, rawhttp
from tests.servers import Server


@pytest.fixture(scope="module", params=MODELS)
def quick(request: pytest.FixtureRequest, site: Path, scratch: Path) -> Iterator[Server]:
    """A server with one-second timeouts."""
    model, workers = request.param
    with Server(
        site,
        *("--model", model, "--workers", str(workers), "--access-log", "off"),
        *("--header-timeout", "1", "--keepalive-timeout", "1", "--send-timeout", "2"),
        tmp=scratch,
    ) as srv:
        yield srv
    assert "Traceback" not in srv.output(), srv.output()


def test_slowloris_gets_408_and_close(quick: Server) -> None:
    """A head that trickles in is cut at the header timeout, counted from its start."""
    with rawhttp.connect(quick.port) as sock:
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        buffer = bytearray()
        for _ in range(6):  # keep trickling: must not extend the deadline
            time.sleep(0.25)
            try:
                sock.sendall(b"X-a: b\r\n")
            except OSError:
                break
        response = rawhttp.read_response(sock, buffer)
        elapsed = time.monotonic() - start
        assert response.status == 408
        assert response.headers["connection"] == "close"
        assert rawhttp.read_until_closed(sock) == b""
    assert 0.9 <= elapsed < 4


def test_idle_keep_alive_closed(quick: Server) -> None:
    with rawhttp.connect(quick.port) as sock:
        sock.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        assert rawhttp.read_response(sock, bytearray()).status == 200
        start = time.monotonic()
        assert rawhttp.read_until_closed(sock) == b""  # closed without a response
        assert time.monotonic() - start < 4


def test_silent_connection_closed_without_response(quick: Server) -> None:
    with rawhttp.connect(quick.port) as sock:
        assert rawhttp.read_until_closed(sock) == b""


def test_client_that_never_reads_is_dropped(quick: Server) -> None:
    """A client pipelining large downloads without reading holds bounded memory and is
    dropped after the send timeout (2 s here); others are still served meanwhile."""
    with rawhttp.connect(quick.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # before any data
        sock.sendall(b"GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\n" * 20)
        accepted = observe.wait_for(
            lambda: observe.server_socket_inode(quick.port, sock), 10, "server accepts"
        )
        if "single" not in quick.args:
            assert rawhttp.get(quick.port, "/notes.txt").status == 200
        # The behaviour under test: the client reads nothing, and the server lets go of
        # its end of the connection once it has made no progress for 2 s.
        dropped = observe.wait_for(
            lambda: observe.closed_by_server(quick.port, sock), 10, "server closes"
        )
        assert 1.8 <= dropped - accepted < 3
        total = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(1 << 20):
                total += len(chunk)
        assert total < 2 * 3 * 1024 * 1024  # cut in the first response, nowhere near 60 MiB
    assert rawhttp.get(quick.port, "/notes.txt").status == 200


def test_slow_reader_is_not_cut(quick: Server) -> None:
    """The send timeout counts from the last progress: a client that reads slowly but
    steadily gets the whole body even though it takes longer than the timeout."""
    with rawhttp.connect(quick.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /large.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        total = 0
        start = time.monotonic()
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
            if time.monotonic() - start < 3:
                time.sleep(0.05)
        assert total > 3 * 1024 * 1024


@pytest.mark.parametrize("model", ["asyncio", "events", "threads"])
def test_connection_cap_stops_accepting(model: str, site: Path, scratch: Path) -> None:
    """At --max-connections the worker stops accepting; the kernel queues the rest, which
    are served as soon as a place frees."""
    with Server(
        site,
        *("--model", model, "--access-log", "off", "--max-connections", "2"),
        tmp=scratch,
    ) as srv:
        held = [rawhttp.connect(srv.port) for _ in range(2)]
        for sock in held:
            sock.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            assert rawhttp.read_response(sock, bytearray()).status == 200
        waiting = rawhttp.connect(srv.port)  # completes in the kernel's backlog
        waiting.settimeout(1.0)
        waiting.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        with pytest.raises(TimeoutError):
            waiting.recv(1)  # not accepted, so not answered
        held[0].close()
        waiting.settimeout(10)
        assert rawhttp.read_response(waiting, bytearray()).status == 200
        waiting.close()
        held[1].close()
        assert "Traceback" not in srv.output()


def test_pipelined_head_waiting_behind_a_long_download_is_not_408(quick: Server) -> None:
    """The next request's header clock starts when we can read it again, not while we
    were busy writing the previous response (header timeout is 1 s here)."""
    with rawhttp.connect(quick.port) as sock:
        sock.sendall(b"GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /notes.txt HTTP/1.1\r\nHo")
        assert sock.recv(1, socket.MSG_PEEK)  # the first response has begun...
        sock.sendall(b"st: t\r\n\r\n")  # ...before the rest of the second head is sent
        buffer = bytearray()
        while len(buffer) < 1_500_000:  # read the first body slowly: well past 1 s
            chunk = sock.recv(100_000)
            if not chunk:
                raise ConnectionError(f"closed after {len(buffer)} bytes")
            buffer += chunk
            time.sleep(0.1)  # pacing: a slow reader, not a wait
        first = rawhttp.read_response(sock, buffer)
        second = rawhttp.read_response(sock, buffer)
    assert first.status == 200 and second.status == 200 and second.body == b"plain text\n"


@pytest.mark.parametrize("model", ["threads", "single"])
def test_descriptors_above_1024(model: str, site: Path, scratch: Path) -> None:
    """Connections whose descriptor number passes FD_SETSIZE (1024) are served too. The
    test and the server it starts (which inherits the limit) each hold 1030 sockets."""
    with (
        observe.descriptor_limit(1200),
        Server(
            site,
            *("--model", model, "--threads", "4", "--access-log", "off"),
            *("--max-connections", "3000"),
            tmp=scratch,
        ) as srv,
    ):
        idle = [rawhttp.connect(srv.port) for _ in range(1030)]
        try:
            last = idle[-1]
            last.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            assert rawhttp.read_response(last, bytearray()).body == b"plain text\n"
        finally:
            for sock in idle:
                sock.close()
        assert rawhttp.get(srv.port, "/notes.txt").status == 200
        assert "Traceback" not in srv.output()


def test_threads_resume_accepting_at_once_below_the_cap(site: Path, scratch: Path) -> None:
    with Server(
        site,
        *("--model", "threads", "--threads", "4", "--max-connections", "2"),
        *("--access-log", "off"),
        tmp=scratch,
    ) as srv:
        start = time.monotonic()
        out = subprocess.run(
            ["ab", "-q", "-n", "200", "-c", "10", "-s", "20", srv.url("/notes.txt")],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0 and re.search(r"Failed requests:\s+0\b", out.stdout)
        assert time.monotonic() - start < 10  # was 0.5 s per connection at the cap


@pytest.mark.parametrize("model", ["asyncio", "events", "threads", "single"])
def test_out_of_descriptors_is_503_then_recovers(model: str, site: Path, scratch: Path) -> None:
    """A file that cannot be opened for want of a descriptor is a 503 (try again later),
    not a 404. The server's own RLIMIT_NOFILE is lowered (prlimit) once it holds our
    connection, so that opening the file is the first thing to fail; then restored."""
    with Server(site, "--model", model, "--access-log", "off", tmp=scratch) as srv:
        pid = int(str(srv.info["pid"]))
        limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        with rawhttp.connect(srv.port) as sock:
            inode = observe.wait_for_value(lambda: observe.server_socket_inode(srv.port, sock))
            observe.wait_for(lambda: f"socket:[{inode}]" in observe.descriptors(pid).values())
            held = set(observe.descriptors(pid))
            lowest_free = min(set(range(len(held) + 1)) - held)
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest_free, limits[1]))
            try:
                sock.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                response = rawhttp.read_response(sock, bytearray())
            finally:
                resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
        assert response.status == 503
        assert rawhttp.get(srv.port, "/notes.txt").body == b"plain text\n"
    assert "Traceback" not in srv.output()


def _cpu_s(pid: int) -> float:
    """User + system CPU time a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("model", ["asyncio", "events", "threads", "single"])
def test_no_descriptor_to_accept_backs_off_then_accepts(
    model: str, site: Path, scratch: Path
) -> None:
    """With no descriptor free, a waiting connection cannot be accepted: the server must
    not spin on its readable listener meanwhile, and accepts it once one frees up."""
    with Server(site, "--model", model, "--access-log", "off", tmp=scratch) as srv:
        pid = int(str(srv.info["pid"]))
        limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        held = set(observe.descriptors(pid))
        resource.prlimit(
            pid, resource.RLIMIT_NOFILE, (min(set(range(len(held) + 1)) - held), limits[1])
        )
        try:
            with rawhttp.connect(srv.port) as sock:  # completes in the kernel's backlog
                sock.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                cpu_before, started = _cpu_s(pid), time.monotonic()
                window = 1.0  # a measurement window, not a wait for an event
                while time.monotonic() - started < window:
                    assert observe.server_socket_inode(srv.port, sock) == 0  # not accepted
                    time.sleep(0.05)
                busy = (_cpu_s(pid) - cpu_before) / (time.monotonic() - started)
                resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
                assert rawhttp.read_response(sock, bytearray()).status == 200  # accepted now
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
        assert busy < 0.3, f"the server used {busy:.0%} of a CPU while it could not accept"
    assert "Traceback" not in srv.output()
