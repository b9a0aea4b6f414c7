"""What `lanthorn bench --attack` produced: results.json, a Markdown table, and the
comparison of two such files (before / after a fix)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from lanthorn.bench.attack_run import AttackPlan, AttackRun
from lanthorn.bench.report import fingerprint

SCHEMA = "lanthorn-bench-attacks/1"
MIB = 2**20


def run_record(run: AttackRun) -> dict[str, Any]:
    record = asdict(run)
    record["rate_ratio"] = run.rate_ratio
    record["recovered_ratio"] = run.recovered_ratio
    record["baseline"]["worst_latency_s"] = run.baseline.worst_latency_s
    record["attacked"]["worst_latency_s"] = run.attacked.worst_latency_s
    if run.recovered is not None:
        record["recovered"]["worst_latency_s"] = run.recovered.worst_latency_s
    record["attacker_closed"] = run.attacker["closed_by_server"] > 0
    return record


def results_document(plan: AttackPlan, argv: list[str]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        **fingerprint(),
        "argv": argv,
        "plan": {k: v for k, v in asdict(plan).items() if k != "runs"},
        "runs": [run_record(run) for run in plan.runs],
    }


def _latency(victim: dict[str, Any]) -> str:
    worst = f"{victim['worst_latency_s'] * 1000:,.0f}"
    return f"≥{worst}" if victim["probe_unanswered"] else worst


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def closed_cell(attacker: dict[str, Any]) -> str:
    """`no`, or how many of the connections opened the server closed and the first when."""
    closed = attacker["closed_by_server"]
    if not closed:
        return f"no ({attacker['open_at_end']} open)"
    first = attacker["first_close_s"]
    when = f", first at {first:.1f} s" if first is not None else ", during setup"
    return f"{closed}/{attacker['opened']}{when}"


def _goaway(attacker: dict[str, Any]) -> str:
    names = {"0": "NO_ERROR", "1": "PROTOCOL_ERROR", "11": "ENHANCE_YOUR_CALM"}
    return ", ".join(f"{names.get(c, c)} x{n}" for c, n in attacker["goaway"].items()) or "—"


def markdown(document: dict[str, Any]) -> str:
    machine, plan = document["machine"], document["plan"]
    lines = [
        f"# lanthorn bench --attack — {machine['cores']} cores, {machine['cpu']}",
        "",
        f"revision `{document['git_revision'][:12]}`; victim: wrk -c{plan['victim_conns']} "
        f"keep-alive GETs of a small file plus a probe (one GET every 50 ms), "
        f"{plan['duration_s']:g} s alone then {plan['duration_s']:g} s under attack, after "
        f"{plan['solo_s']:g} s of attack alone (the server's CPU per second, and the time "
        "it was runnable but waited for its core: others' load), and "
        f"{plan['recovery_s']:g} s once the attacker has gone (after); server on core 0, "
        "victim and attacker (nice 10) on core 1. ≥: a probe request was still unanswered "
        "(given up 1 s after the window). ‡: still busy 3 s after SIGTERM, killed.",
        "",
        "| attack | server | req/s alone | req/s attacked | ratio | ratio after "
        "| worst ms alone | worst ms attacked | CPU / wait s/s, attack alone "
        "| RSS MiB before / peak / after | attacker sent | attacker closed | GOAWAY |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for r in document["runs"]:
        a, sent = r["attacker"], r["attacker"]["units"]
        rss = " / ".join(f"{r[k] / MIB:.0f}" for k in
                         ("rss_before_bytes", "rss_peak_bytes", "rss_after_bytes"))  # fmt: skip
        dead = "" if r["server_alive"] else " ✝ server died"
        killed = " ‡" if r["stop_s"] is None else ""
        lines.append(
            f"| {r['attack']} | {r['target']}{dead} | {r['baseline']['requests_per_s']:,.0f} "
            f"| {r['attacked']['requests_per_s']:,.0f} | {r['rate_ratio']:.2f} "
            f"| {_ratio(r['recovered_ratio'])}{killed} | {_latency(r['baseline'])} "
            f"| {_latency(r['attacked'])} "
            f"| {r['server_cpu_solo_s'] / r['solo_s']:.2f} "
            f"/ {r['server_wait_solo_s'] / r['solo_s']:.2f} | {rss} "
            f"| {sent:,} {a['unit']} | {closed_cell(a)} | {_goaway(a)} |"
        )
    return "\n".join(lines) + "\n"


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """B against A for every (attack, server) both measured."""
    before = {(r["attack"], r["target"]): r for r in a["runs"]}
    lines = [
        f"A = {a.get('git_revision', '?')[:12]}, B = {b.get('git_revision', '?')[:12]}",
        "",
        "| attack | server | ratio A → B | worst ms A → B | CPU s/s A → B "
        "| peak RSS MiB A → B | closed A → B |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in b["runs"]:
        old = before.get((r["attack"], r["target"]))
        if old is None:
            continue
        lines.append(
            f"| {r['attack']} | {r['target']} | {old['rate_ratio']:.2f} → {r['rate_ratio']:.2f} "
            f"| {_latency(old['attacked'])} → {_latency(r['attacked'])} "
            f"| {old['server_cpu_solo_s'] / old['solo_s']:.2f} → "
            f"{r['server_cpu_solo_s'] / r['solo_s']:.2f} "
            f"| {old['rss_peak_bytes'] / MIB:.0f} → {r['rss_peak_bytes'] / MIB:.0f} "
            f"| {closed_cell(old['attacker'])} → {closed_cell(r['attacker'])} |"
        )
    return "\n".join(lines) + "\n"


def chart(document: dict[str, Any], path: Path) -> Path:
    """attacks.png: per attack and server, the other clients' rate ratio and worst latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = document["runs"]
    attacks = list(dict.fromkeys(r["attack"] for r in runs))
    targets = list(dict.fromkeys(r["target"] for r in runs))
    cell = {(r["attack"], r["target"]): r for r in runs}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    width = 0.8 / max(1, len(targets))
    for i, target in enumerate(targets):
        xs = [x + i * width for x in range(len(attacks))]
        found = [cell.get((a, target)) for a in attacks]
        top.bar(xs, [r["rate_ratio"] if r else 0 for r in found], width, label=target)
        worst = [r["attacked"]["worst_latency_s"] * 1000 if r else 0 for r in found]
        bottom.bar(xs, worst, width, label=target)
    top.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    top.set_ylabel("other clients' req/s, attacked / alone")
    bottom.axhline(1000, color="grey", linestyle="--", linewidth=1)
    bottom.set_yscale("log")
    bottom.set_ylabel("other clients' worst latency, ms")
    bottom.set_xticks([x + width * (len(targets) - 1) / 2 for x in range(len(attacks))])
    bottom.set_xticklabels(attacks, rotation=20)
    top.legend(fontsize="small", ncol=len(targets))
    top.set_title(f"lanthorn bench --attack, revision {document['git_revision'][:12]}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
