"""`python -m lanthorn.bench` (`make bench`): lanthorn against nginx on this machine.

Method: one generated document root; each server pinned to core 0, wrk to core 1 (when
the machine has two cores); every scenario runs all targets round-robin for several
rounds, alternating, and reports the median of the rounds and the ratio to nginx.
Access logs are off everywhere. Then the course's own commands (ab -n 1000 -c 10; wrk
with many connections) run against lanthorn and must show zero failures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from lanthorn import __version__
from lanthorn.bench.load import Result, ab, wrk
from lanthorn.bench.targets import HttpServer, Lanthorn, Nginx, Target

SMALL = "index.html"
LARGE = "large.bin"
LARGE_BYTES = 10 * 2**20


def make_root(path: Path) -> None:
    """The demo site's index page (~1 KB) and a 10 MiB file."""
    demo = Path(__file__).resolve().parents[3] / "www" / "index.html"
    small = demo.read_bytes() if demo.exists() else b"<!doctype html><p>" + b"x" * 800
    (path / SMALL).write_bytes(small)
    with open(path / LARGE, "wb") as fh:
        fh.write(os.urandom(LARGE_BYTES))
    for child in path.iterdir():
        child.chmod(0o644)


SCENARIOS = [
    # name, file, connections, targets (by key)
    (
        "small file, 100 connections",
        SMALL,
        100,
        ["nginx", "nginx-cached", "asyncio", "events", "threads"],
    ),
    ("10 MiB file, 10 connections", LARGE, 10, ["nginx", "asyncio", "events"]),
    ("small file, 10 connections", SMALL, 10, ["http.server", "threads", "single"]),
]


def targets() -> dict[str, Target]:
    return {
        "nginx": Nginx(),
        "nginx-cached": Nginx(open_file_cache=True),
        "asyncio": Lanthorn("asyncio"),
        "events": Lanthorn("events"),
        "threads": Lanthorn("threads"),
        "single": Lanthorn("single"),
        "http.server": HttpServer(),
    }


def run(args: argparse.Namespace) -> dict[str, object]:
    cores = os.cpu_count() or 1
    server_cpu, client_cpu = (0, 1) if cores >= 2 else (None, None)
    work = Path(tempfile.mkdtemp(prefix="lanthorn-bench-"))
    work.chmod(0o755)  # nginx workers run as an unprivileged user and must read the root
    root = work / "root"
    root.mkdir(mode=0o755)
    make_root(root)
    pool = targets()
    results: dict[str, dict[str, list[Result]]] = {}
    try:
        for scenario, path, conns, keys in SCENARIOS:
            if args.only and args.only not in scenario:
                continue
            runs: dict[str, list[Result]] = {pool[k].name: [] for k in keys}
            results[scenario] = runs
            for round_ in range(args.rounds):
                for key in keys if round_ % 2 == 0 else reversed(keys):
                    target = pool[key]
                    target.start(root, work, server_cpu)
                    try:
                        url = f"http://127.0.0.1:{target.port}/{path}"
                        wrk(url, conns, 1, client_cpu)  # warm-up
                        result = wrk(url, conns, args.duration, client_cpu)
                    finally:
                        target.stop()
                    runs[target.name].append(result)
                    print(
                        f"  [{scenario}] round {round_ + 1}: {target.name:24} "
                        f"{result.requests_per_s:10.0f} req/s {result.bytes_per_s / 2**20:9.1f} "
                        f"MiB/s errors={result.errors}",
                        file=sys.stderr,
                    )
        course = course_commands(pool["asyncio"], root, work, server_cpu, client_cpu)
    finally:
        for target in pool.values():
            target.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"results": results, "course": course}


def course_commands(
    target: Target, root: Path, work: Path, server_cpu: int | None, client_cpu: int | None
) -> list[Result]:
    """The lecture's `ab -n 1000 -c 10` and `wrk -t12 -c400 -d30s`, scaled to 2 cores."""
    target.start(root, work, server_cpu)
    try:
        url = f"http://127.0.0.1:{target.port}/{SMALL}"
        return [ab(url, 1000, 10, client_cpu), wrk(url, 400, 10, client_cpu, threads=2)]
    finally:
        target.stop()


def median(runs: list[Result], field: str) -> float:
    return float(statistics.median(float(getattr(r, field)) for r in runs))


def report(data: dict[str, object], rounds: int, duration: float) -> str:
    lines = [
        f"lanthorn {__version__} — {os.cpu_count()} cores, median of {rounds} alternating "
        f"rounds of {duration:g} s (wrk -t1, pinned: server core 0, wrk core 1)",
        "",
        "| scenario | server | req/s | MiB/s | errors | ratio |",
        "|---|---|---:|---:|---:|---:|",
    ]
    results = data["results"]
    assert isinstance(results, dict)
    for scenario, runs in results.items():
        base_name = next(iter(runs))
        base_rps = median(runs[base_name], "requests_per_s")
        base_bps = median(runs[base_name], "bytes_per_s")
        large = "10 MiB" in scenario
        for name, rs in runs.items():
            rps = median(rs, "requests_per_s")
            bps = median(rs, "bytes_per_s")
            ratio = (bps / base_bps) if large else (rps / base_rps)
            errors = sum(r.errors for r in rs)
            lines.append(
                f"| {scenario} | {name} | {rps:,.0f} | {bps / 2**20:,.1f} | {errors} "
                f"| {ratio:.2f} of {base_name} |"
            )
    lines += ["", "Course commands against lanthorn (asyncio, 1 worker):", ""]
    course = data["course"]
    assert isinstance(course, list)
    for result in course:
        lines.append(
            f"- `{result.command}` → "
            f"{result.requests} requests, {result.requests_per_s:,.0f} req/s, "
            f"{result.errors} failed"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lanthorn.bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s (smoke test)")
    parser.add_argument("--out", type=Path, help="write results JSON here")
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 2.0
    started = time.time()
    data = run(args)
    text = report(data, args.rounds, args.duration)
    print(text)
    if args.out:
        serialisable = {
            "version": __version__,
            "started": started,
            "rounds": args.rounds,
            "duration_s": args.duration,
            "results": {
                scenario: {name: [asdict(r) for r in rs] for name, rs in runs.items()}
                for scenario, runs in data["results"].items()  # type: ignore[attr-defined]
            },
            "course": [asdict(r) for r in data["course"]],  # type: ignore[attr-defined]
            "report": text,
        }
        args.out.write_text(json.dumps(serialisable, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
