"""The WebSocket echo benchmark: lanthorn's --ws-echo beside the `websockets` library's
own echo server and aiohttp's, one run, server on core 0 and the load generator
(lanthorn.bench.wsload) on core 1.

    python -m lanthorn.bench.wsecho [--duration S] [--peer-python .venv-peers/bin/python]

Prints a markdown table: messages/s and p99 for 64-byte and 64 KiB messages at 10 and 100
connections, the ratio to the `websockets` server, and the generator's CPU per second
(near 1.0 would mean the generator, not the server, set the pace).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from lanthorn.bench.targets import free_port, pinned, wait_listening

HERE = Path(__file__).resolve().parent
SIZES = (64, 65536)
CONNS = (10, 100)


def _servers(root: str, peer_python: str | None) -> dict[str, list[str]]:
    """Name → argv with a PORT placeholder (lanthorn serves the empty `root`)."""
    lanthorn = [sys.executable, "-m", "lanthorn", root, "--host", "127.0.0.1", "-p", "PORT",
                "--ws-echo", "/echo", "--ws-max-message", "1M", "--access-log", "off"]  # fmt: skip
    servers = {
        "lanthorn asyncio": [*lanthorn, "--model", "asyncio"],
        "lanthorn events": [*lanthorn, "--model", "events"],
        "websockets": [sys.executable, str(HERE / "wspeers.py"), "websockets", "PORT"],
    }
    if peer_python:
        servers["aiohttp"] = [peer_python, str(HERE / "wspeers.py"), "aiohttp", "PORT"]
    return servers


def measure(argv: list[str], duration_s: float) -> dict[tuple[int, int], dict[str, float]]:
    port = free_port()
    argv = [a.replace("PORT", str(port)) for a in argv]
    proc = subprocess.Popen(pinned(0, argv), stderr=subprocess.DEVNULL)  # peers log each drop
    try:
        wait_listening(port, proc)
        found = {}
        for size in SIZES:
            for conns in CONNS:
                load = [sys.executable, "-m", "lanthorn.bench.wsload",
                        f"ws://127.0.0.1:{port}/echo", "--conns", str(conns),
                        "--size", str(size), "--duration", str(duration_s)]  # fmt: skip
                out = subprocess.run(pinned(1, load), capture_output=True, text=True, check=True)
                found[size, conns] = json.loads(out.stdout)
        return found
    finally:
        proc.terminate()
        proc.wait(10)


def table(results: dict[str, dict[tuple[int, int], dict[str, float]]]) -> str:
    rows = ["| message | conns | server | messages/s | p99 ms | vs websockets | generator CPU/s |",
            "|---:|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    for size in SIZES:
        for conns in CONNS:
            base = results["websockets"][size, conns]["messages_per_s"]
            for name, found in results.items():
                r = found[size, conns]
                rows.append(
                    f"| {size:,} B | {conns} | {name} | {r['messages_per_s']:,.0f} | "
                    f"{r['p99_ms']:.2f} | {r['messages_per_s'] / base:.2f} | "
                    f"{r['generator_cpu_per_s']:.2f} |"
                )
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m lanthorn.bench.wsecho")
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--peer-python", help="an interpreter with aiohttp (.venv-peers/bin/python)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="lanthorn-wsecho-") as root:
        servers = _servers(root, args.peer_python)
        results = {name: measure(argv, args.duration) for name, argv in servers.items()}
    print(table(results))


if __name__ == "__main__":
    main()
