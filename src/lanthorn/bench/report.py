"""What a benchmark run produced: summary rows, results.json, Markdown, PNG charts, and
the comparison of two result files."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lanthorn import __version__, native
from lanthorn.bench.runner import Plan

SCHEMA = "lanthorn-bench/1"


@dataclass(frozen=True)
class Row:
    target: str
    file: str
    conns: int
    rounds: int
    requests_per_s: float
    mib_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    errors: int
    server_cpu_s: float
    server_peak_rss_mib: float
    server_cpu_us_per_request: float
    handshake_ms: float  # h3 (h3load.handshakes), else 0
    early_answer_ms: float  # h3 (h3load.resumed), else 0
    ratio: float | None  # req/s (bytes/s for the large file) over the baseline's
    baseline: str


def baseline(tool: str) -> str:
    """The server every other is compared with: Caddy over HTTP/3 (Debian's nginx 1.22
    has none), nginx otherwise."""
    return "caddy" if tool == "h3" else "nginx"


def summarize(plan: Plan) -> list[Row]:
    groups: dict[tuple[str, str, int], list[Any]] = {}
    for run in plan.runs:
        groups.setdefault((run.target, run.file, run.conns), []).append(run)
    rows = []
    for (target, file, conns), runs in groups.items():

        def med(attr: str, runs: list[Any] = runs) -> float:
            return float(statistics.median(getattr(r.result, attr) for r in runs))

        rows.append(
            Row(
                target,
                file,
                conns,
                len(runs),
                med("requests_per_s"),
                med("bytes_per_s") / 2**20,
                med("latency_p50_s") * 1000,
                med("latency_p99_s") * 1000,
                sum(r.result.errors for r in runs),
                float(statistics.median(r.server_cpu_s for r in runs)),
                max(r.server_peak_rss_bytes for r in runs) / 2**20,
                float(
                    statistics.median(
                        r.server_cpu_s / r.result.requests * 1e6 if r.result.requests else 0.0
                        for r in runs
                    )
                ),
                med("handshake_s") * 1000,
                med("early_answer_s") * 1000,
                None,
                baseline(plan.tool),
            )
        )
    bases = {(r.file, r.conns): r for r in rows if r.target.startswith(baseline(plan.tool))}
    out = []
    for row in rows:
        base = bases.get((row.file, row.conns))
        ratio = None
        if base is not None:
            ours, theirs = (
                (row.mib_per_s, base.mib_per_s)
                if row.file == "large"
                else (row.requests_per_s, base.requests_per_s)
            )
            ratio = ours / theirs if theirs else None
        out.append(Row(**{**asdict(row), "ratio": ratio}))
    return sorted(out, key=lambda r: (r.file, r.conns, -r.requests_per_s))


def _command(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (out.stdout + out.stderr).strip().splitlines()[0] if out.stdout + out.stderr else "?"


def fingerprint() -> dict[str, Any]:
    cpu = "unknown"
    for line in (
        Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    ):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = {"python": sys.version.split()[0], "lanthorn": __version__}
    for module in ("uvloop", "httptools", "h2"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "missing"
    versions["wrk"] = _command(["wrk", "-v"]) if shutil.which("wrk") else "missing"
    versions["h2load"] = _command(["h2load", "--version"]) if shutil.which("h2load") else "missing"
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    versions["nginx"] = _command([nginx, "-v"]) if os.path.exists(nginx) else "missing"
    revision = _command(["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"])
    return {
        "machine": {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "platform": platform.platform(),
        },
        "versions": versions,
        "git_revision": revision,
        "lanthorn": native.describe(),  # compiled or pure Python (lanthorn/native.py)
    }


def results_document(plan: Plan, argv: list[str]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        **fingerprint(),
        "argv": argv,
        "plan": {k: v for k, v in asdict(plan).items() if k not in ("runs", "idle")},
        "runs": [asdict(run) for run in plan.runs],
        "idle_memory": [
            {**asdict(idle), "bytes_per_conn": idle.bytes_per_conn} for idle in plan.idle
        ],
        "summary": [asdict(row) for row in summarize(plan)],
    }


def _http3_table(rows: list[Row], plan: dict[str, Any]) -> list[str]:
    lines = [
        f"HTTP/3: gtlsclient connections of {plan['requests']:,} requests (no more than "
        "100 MiB of answers each), as many at once as `conns`, repeated for the duration; "
        "handshake: median of 5 new connections, from gtlsclient's log (1 ms resolution); "
        "0-RTT answer: median time to the first bytes of the answer on 5 connections that "
        "resume a session and send their request as early data (— : no 0-RTT offered).",
        "",
        "| file | conns | server | req/s | MiB/s | handshake ms | 0-RTT answer ms | errors "
        "| CPU µs/req | CPU s | peak RSS MiB | vs caddy |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        early = f"{r.early_answer_ms:.1f}" if r.early_answer_ms else "—"
        flag = " ⚠" if r.errors else ""
        lines.append(
            f"| {r.file} | {r.conns} | {r.target} | {r.requests_per_s:,.0f} | {r.mib_per_s:,.1f} "
            f"| {r.handshake_ms:.1f} | {early} | {r.errors}{flag} "
            f"| {r.server_cpu_us_per_request:,.0f} | {r.server_cpu_s:.2f} "
            f"| {r.server_peak_rss_mib:.1f} | {ratio} |"
        )
    return lines


def _table(rows: list[Row]) -> list[str]:
    lines = [
        "| file | conns | server | req/s | MiB/s | p50 ms | p99 ms | errors | CPU µs/req "
        "| CPU s | peak RSS MiB | vs nginx |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        flag = " ⚠" if r.errors else ""
        # wrk omits percentiles it could not record (a handful of very long responses)
        p50 = f"{r.latency_p50_ms:.2f}" if r.latency_p50_ms else "—"
        p99 = f"{r.latency_p99_ms:.2f}" if r.latency_p99_ms else "—"
        lines.append(
            f"| {r.file} | {r.conns} | {r.target} | {r.requests_per_s:,.0f} | {r.mib_per_s:,.1f} "
            f"| {p50} | {p99} | {r.errors}{flag} | {r.server_cpu_us_per_request:,.1f} "
            f"| {r.server_cpu_s:.2f} | {r.server_peak_rss_mib:.1f} | {ratio} |"
        )
    return lines


def markdown(rows: list[Row], document: dict[str, Any]) -> str:
    machine = document["machine"]
    plan = document["plan"]
    lines = [
        f"# lanthorn bench — {machine['cores']} cores, {machine['cpu']}",
        "",
        f"revision `{document['git_revision'][:12]}` "
        f"({document.get('lanthorn', 'pure Python')}), tool {plan['tool']}, "
        f"{plan['rounds']} round(s) of {plan['duration_s']:g} s, "
        "median per cell; servers pinned to core 0, load generator to core 1.",
        "",
        *(_http3_table(rows, plan) if plan["tool"] == "h3" else _table(rows)),
    ]
    if any(r.errors for r in rows):
        lines += ["", "⚠ rows with errors are not clean numbers: see results.json."]
    idle = document.get("idle_memory") or []
    if idle:
        lines += [
            "",
            "Idle keep-alive connections (one request answered on each, then held open); "
            "resident memory of the server's processes:",
            "",
            "| server | conns | still open | RSS before MiB | RSS after MiB | KiB per connection |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {m['target']} | {m['conns']} | {m['still_open']} "
            f"| {m['rss_before_bytes'] / 2**20:.1f} | {m['rss_after_bytes'] / 2**20:.1f} "
            f"| {m['bytes_per_conn'] / 1024:.1f} |"
            for m in idle
        ]
    return "\n".join(lines) + "\n"


def charts(rows: list[Row], out: Path) -> list[Path]:
    """throughput.png (by target x connections, per file), latency.png (p99) when the
    tool measures latency and, when the baseline (nginx or caddy) ran, ratio.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    files = sorted({r.file for r in rows})
    targets = sorted({r.target for r in rows})
    conns = sorted({r.conns for r in rows})

    def grouped(metric: str, title: str, ylabel: str, name: str) -> None:
        fig, axes = plt.subplots(1, len(files), figsize=(6 * len(files), 4.5), squeeze=False)
        for ax, file in zip(axes[0], files, strict=True):
            width = 0.8 / max(1, len(targets))
            for i, target in enumerate(targets):
                values = [
                    next((getattr(r, metric) or 0 for r in rows
                          if r.file == file and r.conns == c and r.target == target), 0)
                    for c in conns
                ]  # fmt: skip
                ax.bar([x + i * width for x in range(len(conns))], values, width, label=target)
            ax.set_xticks([x + width * (len(targets) - 1) / 2 for x in range(len(conns))])
            ax.set_xticklabels([f"{c} conns" for c in conns])
            ax.set_title(f"{title}: {file} file")
            ax.set_ylabel(ylabel)
        axes[0][0].legend(fontsize="small")
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    grouped("requests_per_s", "Throughput", "requests/s", "throughput.png")
    if any(r.latency_p99_ms for r in rows):  # gtlsclient measures none
        grouped("latency_p99_ms", "p99 latency", "ms", "latency.png")
    if any(r.ratio is not None for r in rows):
        base = rows[0].baseline  # the plan's, on every row
        grouped("ratio", f"Ratio to {base}", f"x {base}", "ratio.png")
    return written


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Markdown: B's throughput over A's for every cell both measured."""
    before = {(r["target"], r["file"], r["conns"]): r for r in a["summary"]}
    lines = [
        f"A = {a.get('git_revision', '?')[:12]}, B = {b.get('git_revision', '?')[:12]}",
        "",
        "| file | conns | server | A req/s | B req/s | B/A |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in b["summary"]:
        old = before.get((r["target"], r["file"], r["conns"]))
        if old is None:
            continue
        ratio = r["requests_per_s"] / old["requests_per_s"] if old["requests_per_s"] else 0.0
        lines.append(
            f"| {r['file']} | {r['conns']} | {r['target']} | {old['requests_per_s']:,.0f} "
            f"| {r['requests_per_s']:,.0f} | {ratio:.2f} |"
        )
    return "\n".join(lines) + "\n"


def load_results(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    if document.get("schema") != SCHEMA:
        raise ValueError(f"{path} has no schema {SCHEMA!r}")
    return document
