"""`lanthorn bench` end to end in --quick mode (seconds), against two lanthorn models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lanthorn.bench import h3load
from lanthorn.bench.report import SCHEMA
from lanthorn.bench.targets import Lanthorn, make_certificate


def _bench(
    *args: str, check: bool = False, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`lanthorn bench ARGS` as a user runs it, output captured."""
    argv = [sys.executable, "-m", "lanthorn", "bench", *args]
    return subprocess.run(
        argv, capture_output=True, text=True, check=check, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    proc = _bench(
        "--quick", "--models", "asyncio,threads",
        "--files", "small", "--conns", "10", "--peers", "nginx", "--idle-conns", "50",
        "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "| small | 10 | lanthorn asyncio |" in proc.stdout
    return out


def test_idle_memory_per_connection(bench_out: Path) -> None:
    idle = json.loads((bench_out / "results.json").read_text())["idle_memory"]
    assert {m["target"] for m in idle} == {"lanthorn asyncio", "lanthorn threads", "nginx"}
    for m in idle:
        assert m["conns"] == 50 and m["still_open"] == 50  # all keep-alive, all held
        assert m["rss_before_bytes"] > 1_000_000 and m["rss_after_bytes"] > 1_000_000
        assert m["bytes_per_conn"] == (m["rss_after_bytes"] - m["rss_before_bytes"]) / 50
    report = (bench_out / "report.md").read_text()
    assert "| lanthorn threads | 50 | 50 |" in report


def test_results_json_schema(bench_out: Path) -> None:
    document = json.loads((bench_out / "results.json").read_text())
    assert document["schema"] == SCHEMA
    assert document["machine"]["cores"] >= 1 and document["machine"]["cpu"]
    assert {"python", "lanthorn", "uvloop", "httptools", "wrk", "nginx"} <= set(
        document["versions"]
    )
    assert len(document["git_revision"]) == 40 or document["git_revision"] == "unavailable"
    targets = {run["target"] for run in document["runs"]}
    assert targets == {"lanthorn asyncio", "lanthorn threads", "nginx"}
    for run in document["runs"]:
        result = run["result"]
        assert result["requests_per_s"] > 0 and result["errors"] == 0
        assert result["latency_p99_s"] >= result["latency_p50_s"] > 0
        assert "wrk" in result["command"] and "--latency" in result["command"]
        assert run["server_cpu_s"] > 0 and run["server_peak_rss_bytes"] > 1_000_000
    ratios = {row["target"]: row["ratio"] for row in document["summary"]}
    assert {row["baseline"] for row in document["summary"]} == {"nginx"}
    assert ratios["nginx"] == 1.0 and ratios["lanthorn asyncio"] > 0


def test_report_and_charts(bench_out: Path) -> None:
    report = (bench_out / "report.md").read_text()
    assert report.startswith("# lanthorn bench") and "| lanthorn threads |" in report
    for name in ("throughput.png", "latency.png", "ratio.png"):
        data = (bench_out / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def test_compare(bench_out: Path) -> None:
    results = str(bench_out / "results.json")
    proc = _bench("compare", results, results, check=True, timeout=60)
    assert "| small | 10 | lanthorn asyncio |" in proc.stdout and "| 1.00 |" in proc.stdout


def test_compare_rejects_other_files(tmp_path: Path) -> None:
    """Another JSON file, one that is not JSON, one that is not there: one line each,
    exit 2, no traceback."""
    other, garbage = tmp_path / "x.json", tmp_path / "y.json"
    other.write_text("{}")
    garbage.write_text("not json")
    for a, b, said in [
        (other, other, "not results.json files of lanthorn bench"),
        (garbage, other, "not results.json files of lanthorn bench"),
        (tmp_path / "missing.json", other, "cannot read"),
    ]:
        proc = _bench("compare", str(a), str(b), timeout=60)
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr
        assert len(proc.stderr.splitlines()) == 1


def test_a_run_without_the_bench_extra_is_one_line(tmp_path: Path) -> None:
    """`pip install lanthorn` without [bench]: the run says what to install, and
    leaves no empty results directory behind."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import importlib.util, sys\n"
        "_find = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'rich' else _find(name, *a)\n"
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "lanthorn", "bench", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(hide)},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "lanthorn bench: rich missing: pip install 'lanthorn[bench]'"
    assert not out.exists()


def test_profile(tmp_path: Path) -> None:
    """--profile runs the first lanthorn target under pyinstrument during the load."""
    proc = _bench(
        "--quick", "--models", "asyncio",
        "--files", "small", "--conns", "10", "--peers", "none", "--profile",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    profile = (tmp_path / "profile.html").read_text()
    assert "pyinstrument" in profile.lower() and len(profile) > 10_000


def test_missing_tool_message(tmp_path: Path) -> None:
    env = {"PATH": "/nonexistent", "HOME": str(tmp_path)}
    proc = _bench("--quick", "--out", str(tmp_path), timeout=60, env=env)
    assert proc.returncode == 2
    assert "wrk is missing (apt-get install wrk)" in proc.stderr


def test_optional_peers_are_detected_never_required(tmp_path: Path) -> None:
    """A peer missing from --peer-python's environment is skipped with the install hint."""
    proc = _bench(
        "--quick", "--models", "asyncio",
        "--files", "small", "--conns", "10", "--peers", "aiohttp,uvicorn",
        "--peer-python", "/bin/false", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "peer aiohttp skipped: not installed for /bin/false (pip install aiohttp" in proc.stderr
    assert "peer uvicorn skipped" in proc.stderr
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert {run["target"] for run in runs} == {"lanthorn asyncio"}


def test_ctrl_c_reports_what_finished(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lanthorn", "bench", "--models", "asyncio,events",
         "--files", "small", "--conns", "10", "--peers", "none", "--rounds", "5",
         "--duration", "1", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the first run has finished
        if "req/s" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert 1 <= len(runs) < 10  # stopped early, and what finished is reported
    assert "| small | 10 | lanthorn asyncio |" in out


def test_h2load_tool(tmp_path: Path) -> None:
    """HTTP/2 over cleartext: lanthorn and nginx (listening with http2) under h2load;
    peers that speak no h2c are skipped with a message, never measured over HTTP/1."""
    proc = _bench(
        "--quick", "--tool", "h2load",
        "--models", "asyncio,events", "--files", "small", "--conns", "4", "--streams", "5",
        "--peers", "nginx,http.server", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "peer http.server skipped: it does not speak h2c" in proc.stderr
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["plan"]["tool"] == "h2load"
    runs = {run["target"]: run for run in document["runs"]}
    assert set(runs) == {"lanthorn asyncio", "lanthorn events", "nginx"}
    for run in runs.values():
        result = run["result"]
        assert result["errors"] == 0 and result["requests"] > 100
        assert (
            result["requests_per_s"] > 0 and result["latency_p99_s"] >= result["latency_p50_s"] > 0
        )
        assert "h2load -t1 -c4 -m5 -D1" in result["command"]


PEER_PYTHON = Path(__file__).resolve().parents[2] / ".venv-peers" / "bin" / "python"


def test_python_peers_from_their_own_venv(tmp_path: Path) -> None:
    """uvicorn+Starlette, aiohttp and granian, installed by `make peers` (part of
    `make test`) in a venv of their own, measured beside lanthorn."""
    assert PEER_PYTHON.exists(), f"{PEER_PYTHON} is missing: `make peers` creates it"
    proc = _bench(
        "--quick", "--models", "asyncio",
        "--files", "small", "--conns", "10", "--peers", "uvicorn,aiohttp,granian",
        "--peer-python", str(PEER_PYTHON), "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    targets = {run["target"]: run["result"] for run in runs}
    assert set(targets) == {"lanthorn asyncio", "uvicorn+starlette", "aiohttp", "granian"}
    for result in targets.values():
        assert result["errors"] == 0 and result["requests"] > 100


@pytest.mark.parametrize("tool", ["wrk", "h2load"])
def test_tls_targets(tool: str, tmp_path: Path) -> None:
    """--tls: a self-signed certificate, lanthorn and nginx serving HTTPS (HTTP/2 by ALPN
    under h2load); peers not set up for TLS are skipped with a message."""
    proc = _bench(
        "--quick", "--tls", "--tool", tool,
        "--models", "asyncio", "--files", "small", "--conns", "4", "--streams", "4",
        "--peers", "nginx,http.server", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "peer http.server skipped: not set up for TLS" in proc.stderr
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["plan"]["tls"] is True
    runs = {run["target"]: run["result"] for run in document["runs"]}
    assert set(runs) == {"lanthorn asyncio", "nginx"}
    for result in runs.values():
        assert result["errors"] == 0 and result["requests"] > 100
        assert "https://127.0.0.1:" in result["command"]


DEMO_INDEX = Path(__file__).resolve().parents[2] / "www" / "index.html"


def test_h3_tool(tmp_path: Path) -> None:
    """HTTP/3: lanthorn (asyncio, --http3, one and two workers) and Caddy, the baseline,
    each under gtlsclient connections of 300 requests for ~1 s; a model and a peer
    without HTTP/3 are skipped with a message."""
    proc = _bench(
        "--quick", "--tool", "h3", "--requests", "300", "--models", "asyncio,threads",
        "--workers", "1,2", "--files", "small", "--peers", "caddy,nginx",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "lanthorn threads skipped: no HTTP/3 there" in proc.stderr
    assert "peer nginx skipped: no HTTP/3 here" in proc.stderr
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["plan"]["tool"] == "h3" and document["plan"]["tls"] is True
    runs = {run["target"]: run for run in document["runs"]}
    assert set(runs) == {"lanthorn asyncio", "lanthorn asyncio -w 2", "caddy"}
    for run in runs.values():
        result = run["result"]
        assert result["errors"] == 0 and result["requests"] % 300 == 0 and result["requests"]
        assert result["bytes_per_s"] == pytest.approx(
            result["requests_per_s"] * DEMO_INDEX.stat().st_size
        )
        assert 0 < result["handshake_s"] < 1
        assert 0 < result["early_answer_s"] < 1  # both resume with 0-RTT
        assert "gtlsclient" in result["command"] and "-n 300" in result["command"]
        assert run["server_cpu_s"] > 0
    summary = {row["target"]: row for row in document["summary"]}
    assert {row["baseline"] for row in summary.values()} == {"caddy"}
    assert summary["caddy"]["ratio"] == 1.0 and summary["lanthorn asyncio"]["ratio"] > 0
    assert summary["lanthorn asyncio"]["server_cpu_us_per_request"] > 0
    report = (tmp_path / "report.md").read_text()
    assert "| handshake ms | 0-RTT answer ms |" in report and "| vs caddy |" in report
    assert "| small | 1 | lanthorn asyncio |" in report


def test_h3load_counts_unanswered_requests_as_errors(tmp_path: Path) -> None:
    """404s (the file is not there) are no number: every request is an error, and so is
    every timed handshake whose request was not answered."""
    root = tmp_path / "root"
    root.mkdir()
    target = Lanthorn("asyncio", tls=make_certificate(tmp_path), extra_args=("--http3",))
    target.start(root, tmp_path, None)
    try:
        asked = h3load.Resource(f"https://127.0.0.1:{target.port}/missing.html", 955)
        result = h3load.h3load(asked, 2, 50, 0.1, None)
        handshake, failed = h3load.handshakes(asked, None, runs=2)
    finally:
        target.stop()
    assert (result.requests, result.errors, result.requests_per_s) == (0, 100, 0.0)
    assert (handshake, failed) == (0.0, 2)


def test_hypercorn_over_http3_from_the_peers_venv(tmp_path: Path) -> None:
    """hypercorn[h3] (in .venv-peers, `make peers`) serving Starlette's StaticFiles over
    HTTP/3 beside lanthorn."""
    assert PEER_PYTHON.exists(), f"{PEER_PYTHON} is missing: `make peers` creates it"
    proc = _bench(
        "--quick", "--tool", "h3", "--requests", "100", "--files", "small",
        "--peers", "hypercorn", "--peer-python", str(PEER_PYTHON), "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    results = {run["target"]: run["result"] for run in runs}
    assert set(results) == {"lanthorn asyncio", "hypercorn+starlette"}
    for result in results.values():
        assert result["errors"] == 0 and result["requests"] >= 100
