"""The benchmark matrix: targets x files x connection counts, alternating rounds.

Each run starts the target fresh (pinned to core 0), warms it up, loads it (load tool
pinned to core 1) and records throughput, latency, errors, and the server's CPU time
and peak RSS. Targets alternate order every round so drift (thermal, caches) spreads
evenly. Ctrl-C stops cleanly: what finished is returned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from lanthorn.bench import h3load, load
from lanthorn.bench.caddy import Caddy
from lanthorn.bench.targets import (
    HttpServer,
    Lanthorn,
    Nginx,
    PythonPeer,
    Target,
    Tls,
    cpu_seconds,
    make_certificate,
    peak_rss_bytes,
    process_tree,
    rss_bytes,
)
from lanthorn.config import QUIC_MODELS

FILES = {
    "small": ("index.html", 955),
    "medium": ("medium.bin", 100 * 1024),
    "large": ("large.bin", 10 * 2**20),
}
PEERS = ("nginx", "http.server", "uvicorn", "aiohttp", "granian", "hypercorn", "caddy")


@dataclass
class Run:
    target: str
    file: str
    conns: int
    round: int
    result: load.Result
    server_cpu_s: float
    server_peak_rss_bytes: int


@dataclass
class IdleMemory:
    """What `conns` idle keep-alive connections (one request answered on each) cost."""

    target: str
    conns: int
    rss_before_bytes: int
    rss_after_bytes: int
    still_open: int  # connections the server had not closed when memory was read

    @property
    def bytes_per_conn(self) -> float:
        return (self.rss_after_bytes - self.rss_before_bytes) / self.conns


@dataclass
class Plan:
    models: list[str]
    workers: list[int]
    peers: list[str]
    files: list[str]
    conns: list[int]
    duration_s: float
    rounds: int
    tool: str
    warmup_s: float = 1.0
    peer_python: str | None = None  # interpreter of a venv with uvicorn/aiohttp/granian
    streams: int = 10  # h2load: concurrent streams per connection
    idle_conns: int = 0  # > 0: also measure memory per idle keep-alive connection
    tls: bool = False  # every target serves HTTPS (a self-signed certificate)
    requests: int = 10000  # h3: GETs per connection (gtlsclient -n)
    runs: list[Run] = field(default_factory=list)
    idle: list[IdleMemory] = field(default_factory=list)


@contextlib.contextmanager
def scratch(
    root_arg: str | None, demo_index: Path | None, prefix: str
) -> Iterator[tuple[Path, Path]]:
    """(the document root to serve, a scratch directory): ROOT as given, or the generated
    one inside the scratch directory, which is removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)
    try:
        root = Path(root_arg).resolve() if root_arg else work / "root"
        if not root_arg:
            make_root(root, demo_index)
        yield root, work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def make_root(root: Path, demo_index: Path | None) -> None:
    """The generated document root every target serves."""
    root.mkdir(parents=True, exist_ok=True)
    small = demo_index.read_bytes() if demo_index and demo_index.exists() else b"x" * 955
    (root / FILES["small"][0]).write_bytes(small)
    for name in ("medium", "large"):
        path, size = FILES[name]
        with open(root / path, "wb") as fh:
            fh.write(os.urandom(size))
    for child in [root, *root.iterdir()]:
        child.chmod(0o755 if child.is_dir() else 0o644)  # nginx workers read as nobody


def lanthorn(
    plan: Plan, model: str, workers: int, tls: Tls | None, profile: Path | None = None
) -> Lanthorn:
    """A lanthorn target as the plan's tool needs it: over HTTP/3 too for h3."""
    extra = ("--http3",) if plan.tool == "h3" else ()
    return Lanthorn(model, workers, profile=profile, tls=tls, extra_args=extra)


def _python_peer(plan: Plan, peer: str, tls: Tls | None) -> PythonPeer | None:
    """The peer from --peer-python's environment, or None (and why) if it is not there."""
    python_peer = PythonPeer(peer, plan.peer_python or sys.executable, tls)
    if python_peer.available():
        return python_peer
    modules = " ".join(PythonPeer.MODULES[peer])
    print(
        f"lanthorn bench: peer {peer} skipped: not installed for "
        f"{python_peer.python} (pip install {modules}; see --peer-python)",
        file=sys.stderr,
    )
    return None


def _http3_targets(plan: Plan, tls: Tls) -> list[Target]:
    chosen: list[Target] = []
    for model in plan.models:
        if model in QUIC_MODELS:
            chosen += [lanthorn(plan, model, workers, tls) for workers in plan.workers]
        else:
            print(f"lanthorn bench: lanthorn {model} skipped: no HTTP/3 there", file=sys.stderr)
    for peer in plan.peers:
        if peer == "caddy" and not Caddy.available():
            print("lanthorn bench: peer caddy skipped: apt-get install caddy", file=sys.stderr)
        elif peer == "caddy":
            chosen.append(Caddy(tls))
        elif peer == "hypercorn":
            chosen += filter(None, [_python_peer(plan, peer, tls)])
        else:
            print(f"lanthorn bench: peer {peer} skipped: no HTTP/3 here", file=sys.stderr)
    return chosen


def targets(plan: Plan, tls: Tls | None = None) -> list[Target]:
    if plan.tool == "h3":
        assert tls is not None, "HTTP/3 is served over TLS only"
        return _http3_targets(plan, tls)
    chosen: list[Target] = [lanthorn(plan, m, w, tls) for w in plan.workers for m in plan.models]
    http2 = plan.tool == "h2load"
    for peer in plan.peers:
        if (http2 or tls) and peer != "nginx":
            why = "not set up for TLS" if tls else "it does not speak h2c"
            print(f"lanthorn bench: peer {peer} skipped: {why}", file=sys.stderr)
        elif peer == "nginx":
            if shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"):
                chosen.append(Nginx(max(plan.workers), http2=http2, tls=tls))
        elif peer == "http.server":
            chosen.append(HttpServer())
        elif peer == "caddy":
            print("lanthorn bench: peer caddy skipped: set up for --tool h3 only", file=sys.stderr)
        elif peer in PythonPeer.MODULES:
            chosen += filter(None, [_python_peer(plan, peer, tls)])
        else:
            raise SystemExit(f"lanthorn bench: unknown peer {peer!r} (known: {', '.join(PEERS)})")
    return chosen


def _load(plan: Plan, url: str, conns: int, duration_s: float, cpu: int | None) -> load.Result:
    """One run of the plan's TCP load tool (wrk, h2load or ab)."""
    if plan.tool == "wrk":
        return load.wrk(url, conns, duration_s, cpu)
    if plan.tool == "h2load":
        return load.h2load(url, conns, plan.streams, duration_s, cpu)
    requests = max(1000, int(2000 * duration_s))
    return load.ab(url, requests, conns, cpu, keep_alive=True)


def measure(
    target: Target, root: Path, work: Path, url_path: str, *, conns: int, plan: Plan
) -> tuple[load.Result, float, int]:
    cores = os.cpu_count() or 1
    server_cpu, client_cpu = (0, 1) if cores >= 2 else (None, None)
    target.start(root, work, server_cpu)
    try:
        scheme = "https" if plan.tls else "http"
        url = f"{scheme}://127.0.0.1:{target.port}/{url_path}"
        if plan.tool == "h3":
            asked = h3load.Resource(url, (root / url_path).stat().st_size)
            handshake, failed = h3load.handshakes(asked, client_cpu)  # the warm-up, timed
            early, not_early = h3load.resumed(asked, client_cpu)
            result, cpu, rss = _server_cost(
                target,
                lambda: h3load.h3load(asked, conns, plan.requests, plan.duration_s, client_cpu),
            )
            errors = result.errors + failed + not_early
            timed = replace(result, handshake_s=handshake, early_answer_s=early)
            return replace(timed, errors=errors), cpu, rss
        if plan.tool != "ab":
            _load(plan, url, conns, plan.warmup_s, client_cpu)
        return _server_cost(target, lambda: _load(plan, url, conns, plan.duration_s, client_cpu))
    finally:
        target.stop()


def _server_cost(target: Target, run: Callable[[], load.Result]) -> tuple[load.Result, float, int]:
    """`run()`'s result, the CPU seconds the server's processes spent meanwhile, and
    their peak RSS."""
    before = cpu_seconds(process_tree(target.pid))
    result = run()
    pids = process_tree(target.pid)
    return result, cpu_seconds(pids) - before, peak_rss_bytes(pids)


def _get(sock: socket.socket, path: str) -> None:
    """One keep-alive request; returns once the whole response has been read."""
    sock.sendall(f"GET /{path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk


def _open(sock: socket.socket) -> bool:
    """The server has not closed the connection (nothing to read, no EOF)."""
    sock.setblocking(False)  # with a timeout, recv would wait for it first
    try:
        if isinstance(sock, ssl.SSLSocket):  # no peeking through TLS; we are done anyway
            return sock.recv(1) != b""
        return sock.recv(1, socket.MSG_PEEK) != b""
    except (BlockingIOError, ssl.SSLWantReadError):
        return True
    except OSError:
        return False


def measure_idle(target: Target, root: Path, work: Path, conns: int, tls: bool) -> IdleMemory:
    """Open `conns` connections, answer one request on each, keep them open, and read
    the server's resident memory (all its processes) before and after."""
    target.start(root, work, 0 if (os.cpu_count() or 1) >= 2 else None)
    sockets: list[socket.socket] = []
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # our own throwaway certificate
    context.set_alpn_protocols(["http/1.1"])

    def connected() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", target.port), timeout=10)
        if tls:
            sock = context.wrap_socket(sock)
        sockets.append(sock)
        _get(sock, FILES["small"][0])
        return sock

    try:
        connected()
        time.sleep(0.2)
        before = rss_bytes(process_tree(target.pid))
        for _ in range(conns):
            connected()
        time.sleep(0.2)
        after = rss_bytes(process_tree(target.pid))
        return IdleMemory(target.name, conns, before, after, sum(map(_open, sockets[1:])))
    finally:
        for sock in sockets:
            sock.close()
        target.stop()


def execute(
    plan: Plan, root: Path, work: Path, progress: Callable[[Run | None, str], None]
) -> Plan:
    """Run the whole matrix; `progress(run, label)` is told before and after each run."""
    pool = targets(plan, make_certificate(work) if plan.tls else None)
    try:
        for round_ in range(plan.rounds):
            for file in plan.files:
                for conns in plan.conns:
                    order = pool if round_ % 2 == 0 else list(reversed(pool))
                    for target in order:
                        label = (
                            f"round {round_ + 1}/{plan.rounds} · {file} · c={conns} · {target.name}"
                        )
                        progress(None, label)
                        result, cpu, rss = measure(
                            target, root, work, FILES[file][0], conns=conns, plan=plan
                        )
                        run = Run(target.name, file, conns, round_ + 1, result, cpu, rss)
                        plan.runs.append(run)
                        progress(run, label)
        if plan.idle_conns:
            for target in pool:
                progress(None, f"idle memory · c={plan.idle_conns} · {target.name}")
                plan.idle.append(measure_idle(target, root, work, plan.idle_conns, plan.tls))
    except KeyboardInterrupt:
        pass  # report what finished
    finally:
        for target in pool:
            target.stop()
    return plan
