"""The `--attack` side of `lanthorn bench`:

lanthorn bench --attack NAME[,NAME...]|all [--models ...] [--workers N] [--peers nginx|none]
               [--duration 5s] [--attack-solo 2s] [--attack-conns N] [--victim-conns 10]
               [--idle-timeout 2s] [--out DIR] [--quick]
lanthorn bench compare A/results.json B/results.json   (either kind of results)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lanthorn.bench import attack_report
from lanthorn.bench.attack_run import AttackPlan, AttackRun, execute
from lanthorn.bench.attackers import ATTACKS
from lanthorn.bench.runner import scratch


def add_arguments(p: argparse.ArgumentParser, names: Callable[[str], list[Any]]) -> None:
    g = p.add_argument_group("attacks (issue 9: hostile clients, loopback only)")
    g.add_argument(
        "--attack",
        type=names,
        metavar="NAME[,NAME...]",
        help=f"measure other clients under attack instead: {', '.join(ATTACKS)} or all",
    )
    g.add_argument("--attack-conns", type=int, metavar="N", help="attacker connections")
    g.add_argument(
        "--attack-solo", type=float, default=2.0, metavar="S", help="attack alone first (2 s)"
    )
    g.add_argument("--victim-conns", type=int, default=10, metavar="N", help="wrk -c (10)")
    g.add_argument(
        "--idle-timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="idle-ping: the servers' header and keep-alive timeouts (2 s)",
    )


def _progress(run: AttackRun | None, label: str) -> None:
    if run is None:
        print(f"{label} …", file=sys.stderr, flush=True)
        return
    closed = attack_report.closed_cell(run.attacker)
    print(
        f"{label}: {run.baseline.requests_per_s:,.0f} → {run.attacked.requests_per_s:,.0f} "
        f"req/s ({run.rate_ratio:.2f}), worst {run.attacked.worst_latency_s * 1000:,.0f} ms, "
        f"server CPU {run.server_cpu_solo_s / run.solo_s:.2f} s/s, "
        f"peak RSS {run.rss_peak_bytes / 2**20:.0f} MiB, attacker closed: {closed}",
        file=sys.stderr,
        flush=True,
    )


def run(args: argparse.Namespace, argv: list[str], demo_index: Path) -> int:
    if shutil.which("wrk") is None:
        print("lanthorn bench: wrk is missing (apt-get install wrk)", file=sys.stderr)
        return 2
    attacks = list(ATTACKS) if "all" in args.attack else args.attack
    plan = AttackPlan(attacks, args.models, args.workers, "nginx" in args.peers,
                      duration_s=args.duration, solo_s=args.attack_solo,
                      victim_conns=args.victim_conns, conns=args.attack_conns,
                      idle_timeout_s=args.idle_timeout)  # fmt: skip
    if args.quick:
        plan.duration_s, plan.solo_s, plan.warmup_s = 1.0, 1.0, 0.0
        plan.settle_s, plan.recovery_s = 0.3, 1.0
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with scratch(args.root, demo_index, "lanthorn-attack-") as (root, work):
        execute(plan, root, work, _progress)
    document = attack_report.results_document(plan, argv)
    (out / "results.json").write_text(json.dumps(document, indent=2))
    text = attack_report.markdown(document)
    (out / "report.md").write_text(text)
    if plan.runs:
        attack_report.chart(document, out / "attacks.png")
    print(text)
    print(f"written: {out}/results.json, report.md, attacks.png", file=sys.stderr)
    return 0 if plan.runs else 1


def compare(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """The comparison when both are attack results, else None."""
    if a.get("schema") == b.get("schema") == attack_report.SCHEMA:
        return attack_report.compare(a, b)
    return None
