"""`lanthorn bench --attack`, the instrument of issue 9's "Measure": a quick run against
lanthorn and nginx checks the shape and sanity of what it reports — never whether a
server resists (the hardening tests do that) — and the attack frames are checked
against hyperframe and hpack, the parsers h2 itself uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hpack import Decoder
from hyperframe.frame import HeadersFrame, PingFrame, SettingsFrame

from lanthorn.bench import h2wire
from lanthorn.bench.attack_report import SCHEMA
from lanthorn.protocol import h2wire as wire
from tests.h2client import frames

ATTACKS = ("ping-flood", "slowloris")
TARGETS = ("lanthorn asyncio", "nginx")


def _bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "lanthorn", "bench", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def attack_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("attacks")
    proc = _bench(
        "--quick", "--attack", ",".join(ATTACKS), "--models", "asyncio", "--peers", "nginx",
        "--attack-conns", "20", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def _runs(out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    document = json.loads((out / "results.json").read_text())
    assert document["schema"] == SCHEMA and document["machine"]["cores"] >= 1
    assert document["plan"]["attacks"] == list(ATTACKS)
    return {(run["attack"], run["target"]): run for run in document["runs"]}


def test_every_attack_against_every_target(attack_out: Path) -> None:
    runs = _runs(attack_out)
    assert set(runs) == {(a, t) for a in ATTACKS for t in TARGETS}
    for run in runs.values():
        baseline, attacked = run["baseline"], run["attacked"]
        assert baseline["requests_per_s"] > 0 and baseline["requests"] > 0
        assert baseline["worst_latency_s"] > 0 and baseline["probe_requests"] > 0
        assert attacked["requests_per_s"] >= 0 and attacked["worst_latency_s"] > 0
        assert run["rate_ratio"] == pytest.approx(
            attacked["requests_per_s"] / baseline["requests_per_s"]
        )
        assert run["server_cpu_attack_s"] > 0 and run["server_cpu_solo_s"] >= 0
        assert run["attack_wall_s"] >= run["solo_s"] > 0
        for key in ("rss_before_bytes", "rss_peak_bytes", "rss_after_bytes"):
            assert run[key] > 1_000_000
        assert run["server_alive"] is True and run["recovered"]["requests"] >= 0
        assert run["recovered_ratio"] == pytest.approx(
            run["recovered"]["requests_per_s"] / baseline["requests_per_s"]
        )
        assert 0 <= run["loadavg_1m"] < 1000
        assert run["stop_s"] is None or run["stop_s"] >= 0
        assert run["server_wait_solo_s"] >= 0
        assert isinstance(run["attacker_closed"], bool)


def test_attacker_statistics(attack_out: Path) -> None:
    runs = _runs(attack_out)
    for (attack, _), run in runs.items():
        stats = run["attacker"]
        assert stats["attack"] == attack and stats["conns"] == 20
        assert stats["opened"] >= 20 and stats["connected_at_ready"] == 20
        assert stats["bytes_sent"] > 0 and stats["units"] > 0 and stats["cpu_s"] > 0
        assert stats["closed_by_server"] + stats["open_at_end"] <= stats["opened"]
        assert run["attacker_closed"] == (stats["closed_by_server"] > 0)
        if stats["closed_by_server"]:
            assert stats["lifetimes_s"]["min"] <= stats["lifetimes_s"]["max"]
    assert runs[("slowloris", "nginx")]["attacker"]["unit"] == "bytes trickled"


def test_report_and_compare(attack_out: Path) -> None:
    report = (attack_out / "report.md").read_text()
    assert report.startswith("# lanthorn bench --attack")
    for attack in ATTACKS:
        for target in TARGETS:
            assert f"| {attack} | {target} |" in report
    results = str(attack_out / "results.json")
    proc = _bench("compare", results, results, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "| ping-flood | lanthorn asyncio |" in proc.stdout and " → " in proc.stdout


def test_unknown_attack_is_refused() -> None:
    proc = _bench("--attack", "ping-flood,teardrop", timeout=60)
    assert proc.returncode == 2 and "'teardrop' is not one of" in proc.stderr


def test_frames_parse_as_h2_parses_them() -> None:
    ping, settings = frames(h2wire.PING_FRAME + wire.settings({wire.INITIAL_WINDOW_SIZE: 0}))
    assert isinstance(ping, PingFrame) and ping.opaque_data == b"lanthorn" and not ping.flags
    assert isinstance(settings, SettingsFrame)
    assert settings.settings == {SettingsFrame.INITIAL_WINDOW_SIZE: 0}
    (headers,) = frames(h2wire.get(7, h2wire.request_block("/large.bin")))
    assert isinstance(headers, HeadersFrame) and headers.stream_id == 7
    assert set(headers.flags) == {"END_STREAM", "END_HEADERS"}
    fields = {str(name): str(value) for name, value in Decoder().decode(headers.data)}
    assert fields[":path"] == "/large.bin" and fields[":method"] == "GET"


def test_scanner_finds_goaway_across_reads() -> None:
    goaway = wire.goaway(5, wire.ErrorCode.ENHANCE_YOUR_CALM)
    data = h2wire.EMPTY_SETTINGS + h2wire.PING_FRAME + goaway
    scanner = h2wire.Scanner()
    for i in range(0, len(data), 5):
        scanner.feed(data[i : i + 5])
    assert scanner.frames == 3 and scanner.goaway == [11] and not scanner.buffer
