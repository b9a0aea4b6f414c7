"""Servers under test, each started on loopback and pinned to a CPU core."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

START_TIMEOUT_S = 20.0


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    """Prefix `argv` with taskset when a core is given and taskset exists."""
    if cpu is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(cpu), *argv]


def free_port(udp: bool = False) -> int:
    """A TCP port free on 127.0.0.1 and, with `udp`, free over UDP too (HTTP/3 servers
    take the same number)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not udp:
            return port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagrams:
            try:
                datagrams.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not listen on {port}")


def udp_bound(port: int) -> bool:
    """Something is bound to 127.0.0.1:`port` over UDP (/proc/net/udp). There is
    nothing to accept, so bound is ready: datagrams wait in its buffer."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1] == local for line in list(table)[1:])


def wait_udp_bound(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not udp_bound(port):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.args!r} did not bind UDP port {port}")
        time.sleep(0.05)


class Target(Protocol):
    name: str
    port: int

    @property
    def pid(self) -> int: ...

    def start(self, root: Path, work: Path, cpu: int | None) -> None: ...
    def stop(self) -> None: ...


class Process:
    name = ""
    port = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass(frozen=True)
class Tls:
    """A certificate and key every target serves HTTPS with (`--tls`)."""

    cert: Path
    key: Path


def make_certificate(work: Path) -> Tls:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1, made with openssl(1). It
    also names localhost: the SNI gtlsclient sends when given an address, which Caddy
    picks its certificate by."""
    tls = Tls(work / "bench-cert.pem", work / "bench-key.pem")
    argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(tls.key), "-out", str(tls.cert)]  # fmt: skip
    try:
        subprocess.run(argv, capture_output=True, check=True, timeout=60)
    except FileNotFoundError:
        raise SystemExit("lanthorn bench: openssl is missing (apt-get install openssl)") from None
    for path in (tls.cert, tls.key):
        path.chmod(0o644)  # nginx workers read as nobody
    return tls


class Lanthorn(Process):
    def __init__(
        self,
        model: str = "asyncio",
        workers: int = 1,
        profile: Path | None = None,
        tls: Tls | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.model = model
        self.workers = workers
        self.extra_args = extra_args  # more lanthorn options (timeouts for `--attack`)
        self.profile = profile  # write a pyinstrument HTML profile of the run here
        self.tls = tls
        self.name = f"lanthorn {model}" + (f" -w {workers}" if workers > 1 else "")

    def start(self, root: Path, work: Path, cpu: int | None) -> None:
        ready = work / f"ready-{self.model}-{self.workers}.json"
        ready.unlink(missing_ok=True)
        runner = [sys.executable, "-m"]
        if self.profile is not None:
            runner += ["pyinstrument", "-r", "html", "-o", str(self.profile), "-m"]
        argv = [
            *runner, "lanthorn", str(root), "--host", "127.0.0.1", "-p", "0",
            "--model", self.model, "-w", str(self.workers), "--access-log", "off",
            "--log-level", "warning", "--ready-file", str(ready), *self.extra_args,
        ]  # fmt: skip
        if self.tls is not None:
            argv += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        env = None
        if self.profile is not None:  # the profiler sees Python frames only: run pure
            env = {**os.environ, "LANTHORN_PURE": "1"}
        self.proc = subprocess.Popen(pinned(cpu, argv), env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.05)
        self.port = json.loads(ready.read_text())["addresses"][0]["port"]


NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    include {mime};
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    client_body_temp_path {work}/nginx-body;
    server {{ listen 127.0.0.1:{port} reuseport{ssl}{http2}; root {root}; {certificate} }}
}}
"""


class Nginx(Process):
    """nginx as Debian ships it, one worker, logging off (as lanthorn in the runs), with
    `open_file_cache`: the descriptor cache its users turn on for static files, so the
    baseline is nginx as it is run, not as it ships; `http2=True` makes its port speak
    HTTP/2 (h2c, or h2 by ALPN with `tls`) for h2load."""

    def __init__(self, workers: int = 1, http2: bool = False, tls: Tls | None = None) -> None:
        self.workers = workers
        self.http2 = http2
        self.tls = tls
        self.name = "nginx" + (f" x{workers}" if workers > 1 else "")

    def start(self, root: Path, work: Path, cpu: int | None) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(binary):
            raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
        self.port = free_port()
        conf = work / f"nginx-{self.workers}.conf"
        conf.write_text(
            NGINX_CONF.format(
                workers=self.workers,
                work=work,
                port=self.port,
                root=root,
                mime="/etc/nginx/mime.types",
                http2=" http2" if self.http2 else "",
                ssl=" ssl" if self.tls else "",
                certificate=(
                    f"ssl_certificate {self.tls.cert}; ssl_certificate_key {self.tls.key};"
                    if self.tls
                    else ""
                ),
            )
        )
        self.proc = subprocess.Popen(
            pinned(cpu, [binary, "-c", str(conf), "-p", str(work), "-e", str(work / "e.log")])
        )
        wait_listening(self.port, self.proc)


class HttpServer(Process):
    """`python -m http.server`: the baseline lanthorn replaces."""

    name = "python -m http.server"

    def start(self, root: Path, work: Path, cpu: int | None) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                "--directory", str(root)]  # fmt: skip
        self.proc = subprocess.Popen(
            pinned(cpu, argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_listening(self.port, self.proc)


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (prefork workers, nginx workers)."""
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                queue += [int(child) for child in task.read_text().split()]
    return pids


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _status_bytes(pids: list[int], field: str) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1]) * 1024
    return total


def peak_rss_bytes(pids: list[int]) -> int:
    return _status_bytes(pids, "VmHWM:")


def rss_bytes(pids: list[int]) -> int:
    return _status_bytes(pids, "VmRSS:")


STARLETTE_APP = """\
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

app = Starlette(routes=[Mount("/", app=StaticFiles(directory={root!r}, html=True))])
"""

AIOHTTP_APP = """\
import sys
from aiohttp import web

app = web.Application()
app.router.add_static("/", {root!r})
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


class PythonPeer(Process):
    """A Python server from another environment (`--peer-python`): uvicorn + Starlette
    StaticFiles, aiohttp's static route, or granian or hypercorn serving the same
    Starlette app; hypercorn given `tls` serves HTTPS and HTTP/3 (`--quic-bind`, on the
    TCP port's number). Detected, never required: `available()` says whether that
    interpreter has it."""

    MODULES: ClassVar[dict[str, tuple[str, ...]]] = {
        "uvicorn": ("uvicorn", "starlette"),
        "aiohttp": ("aiohttp",),
        "granian": ("granian", "starlette"),
        "hypercorn": ("hypercorn", "aioquic", "starlette"),
    }
    NAMES: ClassVar[dict[str, str]] = {
        "uvicorn": "uvicorn+starlette",
        "aiohttp": "aiohttp",
        "granian": "granian",
        "hypercorn": "hypercorn+starlette",
    }

    def __init__(self, kind: str, python: str, tls: Tls | None = None) -> None:
        self.kind = kind
        self.python = python
        self.tls = tls
        self.name = self.NAMES[kind]

    def available(self) -> bool:
        check = "import " + ", ".join(self.MODULES[self.kind])
        try:
            probe = subprocess.run(
                [self.python, "-c", check], capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return probe.returncode == 0

    def _argv(self, root: Path, work: Path) -> list[str]:
        port = str(self.port)
        if self.kind == "aiohttp":
            script = work / "peer_aiohttp.py"
            script.write_text(AIOHTTP_APP.format(root=str(root)))
            return [self.python, str(script), port]
        (work / "peer_starlette.py").write_text(STARLETTE_APP.format(root=str(root)))
        if self.kind == "uvicorn":
            return [self.python, "-m", "uvicorn", "peer_starlette:app", "--port", port,
                    "--log-level", "warning", "--no-access-log"]  # fmt: skip
        if self.kind == "granian":
            return [self.python, "-m", "granian", "--interface", "asgi", "--port", port,
                    "--log-level", "warning", "--no-access-log", "peer_starlette:app"]  # fmt: skip
        address = f"127.0.0.1:{port}"  # hypercorn logs no requests unless told to
        argv = [self.python, "-m", "hypercorn", "--bind", address, "--log-level", "warning"]
        if self.tls is not None:
            argv += ["--quic-bind", address, "--certfile", str(self.tls.cert),
                     "--keyfile", str(self.tls.key)]  # fmt: skip
        return [*argv, "peer_starlette:app"]

    def start(self, root: Path, work: Path, cpu: int | None) -> None:
        quic = self.kind == "hypercorn" and self.tls is not None
        self.port = free_port(udp=quic)
        self.proc = subprocess.Popen(
            pinned(cpu, self._argv(root, work)),
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_listening(self.port, self.proc)
        if quic:
            wait_udp_bound(self.port, self.proc)
