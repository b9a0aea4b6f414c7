"""The benchmark matrix: targets x files x connection counts, alternating rounds.

Each run starts the target fresh (pinned to core 0), warms it up, loads it (load tool
pinned to core 1) and records throughput, latency, errors, and the server's CPU time
and peak RSS. Targets alternate order every round so drift (thermal, caches) spreads
evenly. Ctrl-C stops cleanly: what finished is returned.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lanthorn.bench import load
from lanthorn.bench.targets import (
    HttpServer,
    Lanthorn,
    Nginx,
    PythonPeer,
    Target,
    cpu_seconds,
    peak_rss_bytes,
    process_tree,
)

FILES = {
    "small": ("index.html", 955),
    "medium": ("medium.bin", 100 * 1024),
    "large": ("large.bin", 10 * 2**20),
}
PEERS = ("nginx", "http.server", "uvicorn", "aiohttp", "granian")


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
    runs: list[Run] = field(default_factory=list)


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


def targets(plan: Plan) -> list[Target]:
    chosen: list[Target] = [Lanthorn(m, w) for w in plan.workers for m in plan.models]
    http2 = plan.tool == "h2load"
    for peer in plan.peers:
        if http2 and peer != "nginx":
            print(f"lanthorn bench: peer {peer} skipped: it does not speak h2c", file=sys.stderr)
        elif peer == "nginx":
            if shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"):
                chosen.append(Nginx(max(plan.workers), http2=http2))
        elif peer == "http.server":
            chosen.append(HttpServer())
        elif peer in PythonPeer.MODULES:
            python_peer = PythonPeer(peer, plan.peer_python or sys.executable)
            if python_peer.available():
                chosen.append(python_peer)
            else:
                modules = " ".join(PythonPeer.MODULES[peer])
                print(
                    f"lanthorn bench: peer {peer} skipped: not installed for "
                    f"{python_peer.python} (pip install {modules}; see --peer-python)",
                    file=sys.stderr,
                )
        else:
            raise SystemExit(f"lanthorn bench: unknown peer {peer!r} (known: {', '.join(PEERS)})")
    return chosen


def measure(
    target: Target, root: Path, work: Path, url_path: str, *, conns: int, plan: Plan
) -> tuple[load.Result, float, int]:
    cores = os.cpu_count() or 1
    server_cpu, client_cpu = (0, 1) if cores >= 2 else (None, None)
    target.start(root, work, server_cpu)
    try:
        url = f"http://127.0.0.1:{target.port}/{url_path}"
        if plan.tool == "wrk":
            load.wrk(url, conns, plan.warmup_s, client_cpu)
        elif plan.tool == "h2load":
            load.h2load(url, conns, plan.streams, plan.warmup_s, client_cpu)
        pids = process_tree(target.pid)
        before = cpu_seconds(pids)
        if plan.tool == "wrk":
            result = load.wrk(url, conns, plan.duration_s, client_cpu)
        elif plan.tool == "h2load":
            result = load.h2load(url, conns, plan.streams, plan.duration_s, client_cpu)
        else:
            requests = max(1000, int(2000 * plan.duration_s))
            result = load.ab(url, requests, conns, client_cpu, keep_alive=True)
        pids = process_tree(target.pid)
        return result, cpu_seconds(pids) - before, peak_rss_bytes(pids)
    finally:
        target.stop()


def execute(
    plan: Plan, root: Path, work: Path, progress: Callable[[Run | None, str], None]
) -> Plan:
    """Run the whole matrix; `progress(run, label)` is told before and after each run."""
    pool = targets(plan)
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
    except KeyboardInterrupt:
        pass  # report what finished
    finally:
        for target in pool:
            target.stop()
    return plan
