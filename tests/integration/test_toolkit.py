"""The socket toolkit on loopback: echo servers, clients, and the lecture's examples."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import lanthorn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Echo:
    def __init__(self, kind: str, tmp: Path, *extra: str) -> None:
        ready = tmp / f"echo-{kind}-{time.monotonic_ns()}.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lanthorn", "echo", kind, "-p", "0", "--ready-file",
             str(ready), *extra],
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert self.proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        self.port = json.loads(ready.read_text())["addresses"][0]["port"]
        self.address = f"127.0.0.1:{self.port}"

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(10)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read().decode()
        self.proc.stderr.close()
        return err


@pytest.fixture(params=["threads", "asyncio"])
def tcp_echo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Echo]:
    echo = Echo("tcp", tmp_path, "--model", request.param)
    yield echo
    assert "Traceback" not in echo.stop()


@pytest.fixture
def udp_echo(tmp_path: Path) -> Iterator[Echo]:
    echo = Echo("udp", tmp_path, "--max-size", "1000")
    yield echo
    assert "Traceback" not in echo.stop()


def test_tcp_large_message_and_rtt(tcp_echo: Echo) -> None:
    # 16 MiB: far more than the socket buffers, so sending and receiving must overlap
    message = bytes(range(256)) * 65536
    out = lanthorn("send", "tcp", tcp_echo.address, "-", "--repeat", "3", stdin=message)
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip(b"\n") == message
    assert b"3 replies, rtt min/median/max = " in out.stderr


def test_tcp_partial_writes(tcp_echo: Echo) -> None:
    with socket.create_connection(("127.0.0.1", tcp_echo.port), timeout=5) as sock:
        for piece in (b"he", b"llo ", b"wor", b"ld"):
            sock.sendall(piece)
            time.sleep(0.01)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(4):
            reply += chunk
    assert reply == b"hello world"


def test_tcp_many_concurrent_clients(tcp_echo: Echo) -> None:
    errors: list[str] = []

    def client(n: int) -> None:
        try:
            with socket.create_connection(("127.0.0.1", tcp_echo.port), timeout=10) as sock:
                message = f"client {n} ".encode() * 1000
                sock.sendall(message)
                sock.shutdown(socket.SHUT_WR)
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
                if reply != message:
                    errors.append(f"client {n}: {len(reply)} bytes")
        except OSError as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_udp_round_trips(udp_echo: Echo) -> None:
    out = lanthorn("send", "udp", udp_echo.address, "ping", "--repeat", "5")
    assert out.returncode == 0 and out.stdout == b"ping\n"
    assert b"5 replies" in out.stderr and b"lost" not in out.stderr


def test_udp_datagram_boundaries(udp_echo: Echo) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for message in (b"a", b"bb" * 100, b"ccc"):
            sock.sendto(message, ("127.0.0.1", udp_echo.port))
            assert sock.recv(65536) == message  # one datagram in, the same one out


def test_udp_oversize_datagram_dropped_and_client_times_out(udp_echo: Echo) -> None:
    out = lanthorn("send", "udp", udp_echo.address, "x" * 2000, "--timeout", "0.5")
    assert out.returncode == 1
    assert b"no reply from 127.0.0.1:" in out.stderr and b"(1 of 1 datagrams lost)" in out.stderr
    err = udp_echo.stop()
    assert "larger than 1000 bytes" in err
    udp_echo.proc = subprocess.Popen(["true"], stderr=subprocess.PIPE)  # already stopped


def test_clear_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # bound, not listening: connections are refused
        refused = lanthorn("send", "tcp", f"127.0.0.1:{closed_port}", "hi")
        udp_refused = lanthorn("send", "udp", f"127.0.0.1:{closed_port}", "hi")
    assert refused.returncode == 1
    assert b"connection refused by 127.0.0.1:" in refused.stderr
    assert udp_refused.returncode == 1 and b"refused" in udp_refused.stderr
    bad = lanthorn("send", "tcp", "nocolon", "hi")
    assert bad.returncode == 2 and b"bad address 'nocolon'" in bad.stderr
    superscript = lanthorn("send", "tcp", "127.0.0.1:\u00b2", "hi")
    assert superscript.returncode == 2 and b"bad address" in superscript.stderr
    negative = lanthorn("send", "udp", "127.0.0.1:9", "hi", "--timeout", "-1")
    assert negative.returncode == 2 and b"must be positive" in negative.stderr
    unknown = lanthorn("send", "tcp", "no-such-host.invalid:80", "hi")
    assert unknown.returncode == 1 and b"cannot resolve 'no-such-host.invalid'" in unknown.stderr
    for result in (refused, udp_refused, bad, superscript, negative, unknown):
        assert b"Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("server", "client"),
    [
        ("tcp_echo_server.py", "tcp_echo_client.py"),
        ("udp_echo_server.py", "udp_echo_client.py"),
        ("thread_per_client_server.py", "tcp_echo_client.py"),
        ("process_per_client_server.py", "tcp_echo_client.py"),
        ("asyncio_echo_server.py", "asyncio_echo_client.py"),
    ],
)
def test_examples(server: str, client: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / server), "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on ")
        port = line.split()[-1]
        for message in ("hello", "привет, сеть"):
            out = subprocess.run(
                [sys.executable, str(EXAMPLES / client), port, message],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            assert out.stdout == message + "\n"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
