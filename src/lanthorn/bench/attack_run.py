"""`lanthorn bench --attack`: each attack of issue 9 against each server, the other
clients measured alone and then while it runs.

Per (attack, server): a fresh server pinned to core 0; wrk warms it up; the victim
(wrk + probe, core 1) runs alone (baseline); the attacker starts (core 1), sets up its
connections and says `ready`; the attack runs alone for `solo_s` (server CPU per second
spent on the attacker), then with the victim for `duration_s`; the attacker closes
everything, and after `settle_s` the server's memory is read again.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanthorn.bench.attackers import HTTP1
from lanthorn.bench.targets import (
    Lanthorn,
    Nginx,
    Target,
    cpu_seconds,
    free_port,
    pinned,
    process_tree,
    rss_bytes,
    wait_listening,
)
from lanthorn.bench.victim import RssSampler, Victim, run_victim

VICTIM_PATH = "/index.html"


@dataclass
class AttackPlan:
    attacks: list[str]
    models: list[str]
    workers: list[int]
    nginx: bool
    duration_s: float = 5.0  # the victim's window under attack (and alone)
    solo_s: float = 2.0  # the attack alone first: the server CPU it costs
    victim_conns: int = 10
    conns: int | None = None  # attacker connections; None: each attack's own default
    idle_timeout_s: float = 2.0  # idle-ping: --header-timeout and --keepalive-timeout
    warmup_s: float = 1.0
    settle_s: float = 1.0
    recovery_s: float = 2.0  # the victim once more, after the attacker has gone
    setup_s: float = 15.0
    runs: list[AttackRun] = field(default_factory=list)


@dataclass
class AttackRun:
    attack: str
    target: str
    server_args: list[str]
    baseline: Victim
    attacked: Victim
    solo_s: float
    server_cpu_solo_s: float  # during the attack alone
    attack_wall_s: float  # from `ready` to the attacker's exit
    server_cpu_attack_s: float  # over attack_wall_s, the victim's share included
    rss_before_bytes: int
    rss_peak_bytes: int
    rss_after_bytes: int  # settle_s after the attacker closed everything
    server_alive: bool
    attacker: dict[str, Any]
    recovered: Victim | None  # the victim after the attack (None: the server died)
    loadavg_1m: float  # the machine's load when the run began: others' work skews it
    stop_s: float | None = None  # SIGTERM to exit; None: still running 3 s later, killed
    server_wait_solo_s: float = 0.0  # runnable but waiting for its core, attack alone

    @property
    def rate_ratio(self) -> float:
        base = self.baseline.requests_per_s
        return self.attacked.requests_per_s / base if base else 0.0

    @property
    def recovered_ratio(self) -> float | None:
        base = self.baseline.requests_per_s
        return self.recovered.requests_per_s / base if base and self.recovered else None


NGINX_ATTACK_CONF = """\
worker_processes {workers};
worker_rlimit_nofile 8192;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=1000 inactive=60s;
    client_body_temp_path {work}/nginx-body;
    {extra}
    server {{ listen 127.0.0.1:{port} reuseport; listen 127.0.0.1:{h2_port} http2; root {root}; }}
}}
"""


class AttackNginx(Nginx):
    """nginx with open_file_cache and its per-connection defaults, HTTP/1.1 on `port`
    and h2c (prior knowledge; 1.22 cannot share a cleartext port) on `h2_port`."""

    def __init__(self, workers: int, extra: str = "") -> None:
        super().__init__(workers, http2=True)
        self.extra = extra
        self.h2_port = 0

    def start(self, root: Path, work: Path, cpu: int | None) -> None:
        binary = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx"
        self.port, self.h2_port = free_port(), free_port()
        conf = work / "nginx-attack.conf"
        conf.write_text(NGINX_ATTACK_CONF.format(
            workers=self.workers, work=work, port=self.port, h2_port=self.h2_port,
            root=root, extra=self.extra))  # fmt: skip
        argv = [binary, "-c", str(conf), "-p", str(work), "-e", str(work / "e.log")]
        self.proc = subprocess.Popen(pinned(cpu, argv))
        wait_listening(self.port, self.proc)
        wait_listening(self.h2_port, self.proc)


def make_targets(plan: AttackPlan, attack: str) -> list[Target]:
    timeout = f"{plan.idle_timeout_s:g}"
    args = ("--header-timeout", timeout, "--keepalive-timeout", timeout)
    extra = f"client_header_timeout {timeout}s; keepalive_timeout {timeout}s;"
    idle = attack == "idle-ping"
    chosen: list[Target] = [
        Lanthorn(m, w, extra_args=args if idle else ()) for w in plan.workers for m in plan.models
    ]
    if plan.nginx:
        chosen.append(AttackNginx(max(plan.workers), extra if idle else ""))
    return chosen


def attack_port(target: Target, attack: str) -> int:
    return target.port if attack in HTTP1 else int(getattr(target, "h2_port", target.port))


def run_delay_s(pids: list[int]) -> float:
    """Seconds the processes' threads were runnable but waited for a CPU (schedstat):
    how much of the server's core others took."""
    total = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int(stat.read_text().split()[1])
    return total / 1e9


def _cores() -> tuple[int | None, int | None]:
    return (0, 1) if (os.cpu_count() or 1) >= 2 else (None, None)


def spawn_attacker(attack: str, port: int, plan: AttackPlan) -> subprocess.Popen[str]:
    """The attacker in a process of its own (core 1), past its `ready` line."""
    length = plan.solo_s + plan.duration_s + 0.5  # covers the victim's whole window
    argv = [sys.executable, "-m", "lanthorn.bench.attackers", attack, "--port", str(port),
            "--duration", f"{length:g}", "--setup", f"{plan.setup_s:g}"]  # fmt: skip
    if plan.conns:
        argv += ["--conns", str(plan.conns)]
    proc = subprocess.Popen(pinned(_cores()[1], argv), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], plan.setup_s + 10)
    line = proc.stdout.readline() if readable else ""
    if line.strip() != "ready":
        proc.kill()
        proc.wait()
        raise RuntimeError(f"attacker {attack} did not get ready ({line.strip()!r})")
    return proc


def attacker_stats(proc: subprocess.Popen[str], plan: AttackPlan) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=plan.solo_s + plan.duration_s + 30)
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"attacker exited with {proc.returncode}")
    stats: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return stats


def server_args(target: Target) -> list[str]:
    """What the server was started with beyond the bench's usual options."""
    extra = getattr(target, "extra_args", None) or getattr(target, "extra", "")
    return [extra] if isinstance(extra, str) and extra else list(extra or ())


def stop(target: Target, patience_s: float = 3.0) -> float | None:
    """SIGTERM, then SIGKILL to the whole tree after `patience_s` (a server still chewing
    on an attacker's backlog may not get round to its signal); the seconds it took to
    exit by itself, None if it had to be killed."""
    proc: subprocess.Popen[bytes] | None = getattr(target, "proc", None)
    if proc is None or proc.poll() is not None:
        return 0.0
    pids, began = process_tree(proc.pid), time.monotonic()
    proc.terminate()
    try:
        proc.wait(patience_s)
        return time.monotonic() - began
    except subprocess.TimeoutExpired:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        return None


def _alive(target: Target) -> bool:
    proc: subprocess.Popen[bytes] | None = getattr(target, "proc", None)
    return proc is not None and proc.poll() is None


def _under_attack(
    target: Target, attack: str, plan: AttackPlan
) -> tuple[float, float, Victim, dict[str, Any], float, float, int]:
    """Attack alone, then with the victim: (solo CPU, solo wait for the CPU, victim,
    attacker statistics, wall seconds, CPU seconds, peak RSS), from the attacker's `ready`."""
    proc = spawn_attacker(attack, attack_port(target, attack), plan)
    sampler = RssSampler(target.pid)
    sampler.start()
    try:
        started, before = time.monotonic(), cpu_seconds(process_tree(target.pid))
        waited = run_delay_s(process_tree(target.pid))
        time.sleep(plan.solo_s)
        solo_cpu = cpu_seconds(process_tree(target.pid)) - before
        waited = run_delay_s(process_tree(target.pid)) - waited
        victim = run_victim(
            target.port, VICTIM_PATH, plan.victim_conns, plan.duration_s, _cores()[1]
        )
        stats = attacker_stats(proc, plan)
        cpu = cpu_seconds(process_tree(target.pid)) - before
        wall = time.monotonic() - started
        return solo_cpu, waited, victim, stats, wall, cpu, sampler.stop()
    finally:
        sampler.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def measure_attack(
    target: Target, attack: str, plan: AttackPlan, root: Path, work: Path
) -> AttackRun:
    server_cpu, client_cpu = _cores()
    loadavg = os.getloadavg()[0]
    target.start(root, work, server_cpu)
    try:
        if plan.warmup_s:
            run_victim(target.port, VICTIM_PATH, plan.victim_conns, plan.warmup_s, client_cpu)
        baseline = run_victim(
            target.port, VICTIM_PATH, plan.victim_conns, plan.duration_s, client_cpu
        )
        rss_before = rss_bytes(process_tree(target.pid))
        solo_cpu, waited, attacked, stats, wall, cpu, peak = _under_attack(target, attack, plan)
        time.sleep(plan.settle_s)
        rss_after, alive = rss_bytes(process_tree(target.pid)), _alive(target)
        recovered = None
        if alive:
            recovered = run_victim(
                target.port, VICTIM_PATH, plan.victim_conns, plan.recovery_s, client_cpu
            )
        run = AttackRun(
            attack, target.name, server_args(target), baseline, attacked, plan.solo_s,
            solo_cpu, wall, cpu, rss_before, peak, rss_after, alive, stats, recovered, loadavg,
        )  # fmt: skip
    finally:
        stopped = stop(target)
    run.stop_s, run.server_wait_solo_s = stopped, waited
    return run


def execute(
    plan: AttackPlan, root: Path, work: Path, progress: Callable[[AttackRun | None, str], None]
) -> AttackPlan:
    """Every attack against every target; Ctrl-C stops, what finished is kept."""
    try:
        for attack in plan.attacks:
            for target in make_targets(plan, attack):
                label = f"{attack} · {target.name}"
                progress(None, label)
                try:
                    run = measure_attack(target, attack, plan, root, work)
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    print(f"lanthorn bench: {label}: {exc}", file=sys.stderr)
                    continue
                plan.runs.append(run)
                progress(run, label)
    except KeyboardInterrupt:
        pass
    return plan
