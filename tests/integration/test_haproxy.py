"""Scale-out behind HAProxy, for real: deploy/haproxy.cfg in front of two lanthorn
instances (PROXY protocol v2 to each, health checks on /readyz). wrk through HAProxy
sees no failed request while one instance is killed outright, nor across a rolling
restart; the client's own address reaches lanthorn's access log."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from lanthorn.bench.load import parse_wrk
from tests.servers import Server

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free now (the probes are held until all are drawn)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


class Instance:
    """One lanthorn behind the balancer, on fixed ports so it can be restarted there."""

    def __init__(self, site: Path, tmp: Path, name: str, ports: tuple[int, int]) -> None:
        self.site, self.tmp, self.name = site, tmp, name
        self.port, self.check = ports
        self.log = tmp / f"access-{name}.log"
        self.server: Server | None = None

    def start(self) -> None:
        self.server = Server(
            self.site, "--listen", f"proxy:127.0.0.1:{self.port}", "--metrics",
            f"127.0.0.1:{self.check}", "--access-log", str(self.log), "-w", "2",
            "--grace", "5", tmp=self.tmp,
        )  # fmt: skip

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.server is not None
        self.server.signal(sig)
        self.server.proc.wait(20)
        self.server.stop()
        assert "Traceback" not in self.server.output(), self.server.output()

    def kill(self) -> None:
        """SIGKILL to every process of the instance: nothing drains, nothing says goodbye."""
        assert self.server is not None
        pids = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.server.proc.pid)],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        for pid in [self.server.proc.pid, *map(int, pids)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.server.proc.wait(10)
        self.server.stop()

    def env(self, letter: str) -> dict[str, str]:
        return {f"LANTHORN_{letter}": f"127.0.0.1:{self.port}",
                f"LANTHORN_{letter}_CHECK": str(self.check)}  # fmt: skip


@pytest.fixture
def balanced(site: Path, tmp_path: Path) -> Iterator[tuple[str, Instance, Instance]]:
    """HAProxy with deploy/haproxy.cfg before two instances; its front URL."""
    ports = _free_ports(5)
    a = Instance(site, tmp_path, "a", (ports[0], ports[1]))
    b = Instance(site, tmp_path, "b", (ports[2], ports[3]))
    front = f"127.0.0.1:{ports[4]}"
    env = {**os.environ, "LANTHORN_FRONT": front, **a.env("A"), **b.env("B")}
    a.start()
    b.start()
    haproxy = subprocess.Popen(
        ["haproxy", "-db", "-f", str(CONFIG)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = f"http://{front}/notes.txt"
        _wait(lambda: _status(url) == 200)
        time.sleep(1.5)  # both servers up (rise: 2 checks, 500 ms apart)
        yield url, a, b
    finally:
        haproxy.terminate()
        out, _ = haproxy.communicate(timeout=10)
        for instance in (a, b):
            if instance.server is not None and instance.server.proc.poll() is None:
                instance.server.stop()
    assert "ALERT" not in out, out


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return 0


def _wait(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _wrk(url: str, seconds: int) -> subprocess.Popen[str]:
    argv = ["wrk", "-t2", "-c20", f"-d{seconds}s", "--timeout", "5s", url]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def _clean(load: subprocess.Popen[str]) -> None:
    out, _ = load.communicate(timeout=60)
    result = parse_wrk(out, "wrk")
    assert result.requests > 500 and result.errors == 0, out


def test_an_instance_killed_outright_fails_no_request(
    balanced: tuple[str, Instance, Instance],
) -> None:
    url, a, _ = balanced
    load = _wrk(url, 4)
    time.sleep(1.5)
    a.kill()  # the supervisor and its workers, with their connections
    _clean(load)


def test_a_rolling_restart_fails_no_request(balanced: tuple[str, Instance, Instance]) -> None:
    url, a, b = balanced
    load = _wrk(url, 8)
    time.sleep(1.0)
    for instance in (a, b):
        instance.stop()  # /readyz says 503 at once; in-flight requests finish
        instance.start()
        _wait(lambda i=instance: _status(f"http://127.0.0.1:{i.check}/readyz") == 200)
        time.sleep(1.2)  # the balancer sees it up again (rise: 2 checks, 500 ms apart)
    _clean(load)


def test_the_client_address_reaches_the_access_log(
    balanced: tuple[str, Instance, Instance],
) -> None:
    url, a, b = balanced
    for _ in range(4):  # round robin: both instances get some
        subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "--interface", "127.0.0.2", url + "?via"],
            check=True, timeout=10,
        )  # fmt: skip
    deadline = time.monotonic() + 10  # the access log is flushed about once a second
    lines: list[str] = []
    while time.monotonic() < deadline and len(lines) < 4:
        lines = [
            line
            for log in (a.log, b.log)
            if log.exists()
            for line in log.read_text().splitlines()
            if "?via" in line
        ]
        time.sleep(0.1)
    assert len(lines) == 4 and all(line.startswith("127.0.0.2 ") for line in lines), lines
