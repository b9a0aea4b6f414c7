"""Start-up, readiness, graceful shutdown, worker supervision, logs, the CLI entry points."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration import observe, rawhttp
from tests.servers import Server

MODEL_NAMES = ["asyncio", "events", "threads", "single"]


def _children(pid: int) -> set[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return {int(x) for x in out.stdout.split()}


def _wait_for(predicate: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _small_window_client(port: int) -> socket.socket:
    """A connection whose receive buffer cannot take a large response at once, so the
    server is still sending it for as long as the client does not read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # before connecting
    sock.settimeout(rawhttp.TIMEOUT_S)
    sock.connect(("127.0.0.1", port))
    return sock


DRAIN_SIZE = 64 << 20  # far more than the kernel's socket buffers can hold (4 MiB here)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_sigterm_finishes_in_flight_and_closes_idle(model: str, site: Path, scratch: Path) -> None:
    drain = site / "drain.bin"
    if not drain.exists():
        with open(drain, "wb") as fh:
            fh.truncate(DRAIN_SIZE)  # sparse
    srv = Server(site, "--model", model, "--access-log", "off", "--grace", "10", tmp=scratch)
    try:
        with contextlib.ExitStack() as sockets:
            idle = None
            if model != "single":
                idle = sockets.enter_context(rawhttp.connect(srv.port))
                idle.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
                assert rawhttp.read_response(idle, bytearray()).status == 200
            busy = sockets.enter_context(_small_window_client(srv.port))
            busy.sendall(b"GET /drain.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            head = bytearray()
            while b"\r\n\r\n" not in head:  # the response has started
                chunk = busy.recv(1000)
                assert chunk, bytes(head)
                head += chunk
            # Sent before the signal, to a request that did not ask to close: keep-alive.
            assert b"\r\nConnection: keep-alive\r\n" in head
            srv.signal(signal.SIGTERM)
            observe.wait_for(lambda: not observe.signal_pending(srv.proc.pid, signal.SIGTERM))
            if idle is not None:  # the server has begun draining: idle connections close
                idle.settimeout(5)
                assert idle.recv(10) == b""
            received = len(head)
            while chunk := busy.recv(1 << 16):  # the download is still in flight
                received += len(chunk)
            head_end = bytes(head).index(b"\r\n\r\n") + 4
            assert received - head_end == DRAIN_SIZE  # finished whole, then closed
        assert srv.proc.wait(15) == 0
        assert not srv.ready_file.exists()  # removed on exit
    finally:
        srv.stop()
    assert "Traceback" not in srv.output()


def test_sigterm_grace_cuts_a_stuck_download(site: Path, scratch: Path) -> None:
    srv = Server(site, "--access-log", "off", "--grace", "1", tmp=scratch)
    try:
        with _small_window_client(srv.port) as stuck:
            stuck.sendall(b"GET /large.bin HTTP/1.1\r\nHost: t\r\n\r\n" * 5)  # never read
            assert stuck.recv(1, socket.MSG_PEEK)  # the download has begun
            start = time.monotonic()
            srv.signal(signal.SIGTERM)
            assert srv.proc.wait(10) == 0
            assert 0.9 <= time.monotonic() - start < 5  # the grace period, then no longer
    finally:
        srv.stop()


def test_prefork_restarts_dead_worker_and_drains(site: Path, scratch: Path) -> None:
    srv = Server(site, "-w", "2", "--access-log", "off", tmp=scratch)
    try:
        assert srv.info["workers"] == 2
        _wait_for(lambda: len(_children(srv.proc.pid)) == 2)
        workers = _children(srv.proc.pid)
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: len(_children(srv.proc.pid) - {victim}) == 2)
        for _ in range(20):  # every connection lands on a live worker
            assert rawhttp.get(srv.port, "/notes.txt").status == 200
        assert "exited" in srv.output()
        srv.signal(signal.SIGTERM)
        assert srv.proc.wait(15) == 0
        _wait_for(lambda: not _children(srv.proc.pid))
    finally:
        srv.stop()


def test_prefork_backs_off_a_crash_loop(site: Path, scratch: Path) -> None:
    """A worker that dies within a second of starting is replaced only after a pause
    (RESPAWN_BACKOFF_S), so a crash loop cannot spin the supervisor."""
    srv = Server(site, "-w", "2", "--access-log", "off", tmp=scratch)
    try:
        _wait_for(lambda: len(_children(srv.proc.pid)) == 2)
        seen = _children(srv.proc.pid)
        os.kill(min(seen), signal.SIGKILL)
        fresh: set[int] = set()

        def replaced() -> bool:
            fresh.update(_children(srv.proc.pid) - seen)
            return bool(fresh)

        observe.wait_for(replaced, 15, "a replacement worker")
        young = fresh.pop()
        seen |= {young}
        os.kill(young, signal.SIGKILL)  # dies at once: a crash loop
        killed = time.monotonic()
        respawned = observe.wait_for(
            lambda: bool(_children(srv.proc.pid) - seen), 15, "the next replacement"
        )
        assert respawned - killed >= 0.9  # RESPAWN_BACKOFF_S is 1 s
        _wait_for(lambda: len(_children(srv.proc.pid)) == 2)
        assert rawhttp.get(srv.port, "/notes.txt").status == 200
    finally:
        srv.stop()


def test_prefork_kills_stragglers_after_the_grace_period(site: Path, scratch: Path) -> None:
    """A worker that does not stop on SIGTERM (here: a stopped process) is killed once
    the grace period (plus the supervisor's 2 s margin) has passed, not before."""
    srv = Server(site, "-w", "2", "--access-log", "off", "--grace", "1", tmp=scratch)
    straggler = None
    try:
        _wait_for(lambda: len(_children(srv.proc.pid)) == 2)
        straggler = min(_children(srv.proc.pid))
        os.kill(straggler, signal.SIGSTOP)  # cannot act on SIGTERM while stopped
        observe.wait_for(lambda: observe.process_state(straggler) == "T")
        start = time.monotonic()
        srv.signal(signal.SIGTERM)
        assert srv.proc.wait(15) == 0
        assert 2.5 <= time.monotonic() - start < 8  # grace 1 s + 2 s, then SIGKILL
        assert observe.process_state(straggler) in (None, "Z")  # killed and reaped
    finally:
        if straggler is not None and observe.process_state(straggler) == "T":
            os.kill(straggler, signal.SIGKILL)  # only if the test failed
        srv.stop()


def test_access_log_file_in_combined_format(site: Path, scratch: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    with Server(site, "--access-log", str(log), tmp=scratch) as srv:
        rawhttp.get(srv.port, "/notes.txt", extra="User-Agent: tester/1\r\nReferer: http://r/\r\n")
        rawhttp.get(srv.port, "/nope")
        rawhttp.exchange(srv.port, b"BAD\r\n\r\n")
    lines = log.read_text().splitlines()
    assert len(lines) == 3
    assert re.match(
        r'^127\.0\.0\.1 - - \[[^]]+\] "GET /notes.txt HTTP/1.1" 200 11 "http://r/" "tester/1"$',
        lines[0],
    )
    assert '"GET /nope HTTP/1.1" 404' in lines[1]
    assert '"-" 400' in lines[2]


@pytest.mark.parametrize(
    ("model", "workers"), [("asyncio", "1"), ("threads", "1"), ("events", "2")]
)
def test_sigusr1_reopens_the_access_log(
    site: Path, scratch: Path, tmp_path: Path, model: str, workers: str
) -> None:
    """logrotate moves the file away and sends SIGUSR1 (to the supervisor with -w N,
    which passes it on): what came before stays in the old file, what comes after goes
    to a new one at the same path; nothing is lost."""
    log = tmp_path / "access.log"
    args = ("--access-log", str(log), "--model", model, "-w", workers)
    with Server(site, *args, tmp=scratch) as srv:
        rawhttp.get(srv.port, "/notes.txt?before")
        deadline = time.monotonic() + 10  # written about once a second
        while "before" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        log.rename(tmp_path / "access.log.1")
        srv.signal(signal.SIGUSR1)
        while not log.exists():
            assert time.monotonic() < deadline + 5, "no new file"
            time.sleep(0.05)
        time.sleep(0.6)  # every worker reopens at its next tick (a quarter of a second)
        for n in range(4):  # (with -w 2, across both workers)
            rawhttp.get(srv.port, f"/notes.txt?after{n}")
    rotated = (tmp_path / "access.log.1").read_text()
    fresh = log.read_text()
    assert "?before" in rotated and "?after" not in rotated
    assert all(f"?after{n} " in fresh for n in range(4)) and "?before" not in fresh
    assert "Traceback" not in srv.output()


def test_access_log_to_stdout_by_default(site: Path, scratch: Path) -> None:
    with Server(site, tmp=scratch) as srv:
        rawhttp.get(srv.port, "/notes.txt")
    assert '"GET /notes.txt HTTP/1.1" 200 11' in srv.output()


def test_default_root_is_www(tmp_path: Path, scratch: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_bytes(b"from www")
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lanthorn",
            "-p",
            "0",
            "--host",
            "127.0.0.1",
            "--ready-file",
            str(ready),
            "--access-log",
            "off",
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(ready.exists)
        port = json.loads(ready.read_text())["addresses"][0]["port"]
        assert rawhttp.get(port, "/").body == b"from www"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        assert proc.stderr is not None
        assert b"serving www at http://127.0.0.1:" in proc.stderr.read()
        proc.stderr.close()


def test_localhost_binds_loopback(site: Path, scratch: Path) -> None:
    ready = scratch / "lo.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lanthorn",
            str(site),
            "-p",
            "0",
            "--ready-file",
            str(ready),
            "--access-log",
            "off",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(ready.exists)
        hosts = {a["host"] for a in json.loads(ready.read_text())["addresses"]}
        assert "127.0.0.1" in hosts
        port = json.loads(ready.read_text())["addresses"][0]["port"]
        assert rawhttp.get(port, "/notes.txt").status == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_version_and_console_script() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lanthorn", "--version"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0 and re.fullmatch(
        r"lanthorn \d+\.\d+\.\d+ \((\d+ modules compiled|pure Python)\)\n", out.stdout
    )
    script = Path(sys.executable).parent / "lanthorn"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.startswith("lanthorn ")


def test_port_in_use_is_a_clear_error(site: Path, scratch: Path) -> None:
    with Server(site, "--access-log", "off", tmp=scratch) as srv:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "lanthorn",
                str(site),
                "--host",
                "127.0.0.1",
                "-p",
                str(srv.port),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        )
    assert out.returncode == 1
    assert "lanthorn: error: cannot listen on 127.0.0.1" in out.stderr
    assert "Traceback" not in out.stderr


def test_concurrent_clients(site: Path, scratch: Path) -> None:
    """Many clients at once on the default model: all answered, all correct."""
    with Server(site, "--access-log", "off", tmp=scratch) as srv:
        errors: list[str] = []

        def client() -> None:
            try:
                for _ in range(10):
                    r = rawhttp.get(srv.port, "/notes.txt")
                    if r.body != b"plain text\n":
                        errors.append(repr(r))
            except OSError as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=client) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
