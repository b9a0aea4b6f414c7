"""Load generators (wrk, ab, h2load) and what their output says."""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lanthorn.bench.targets import pinned

_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class Result:
    requests_per_s: float
    bytes_per_s: float
    latency_avg_s: float
    requests: int
    errors: int  # socket errors + non-2xx: a run with errors is not a clean number
    command: str
    latency_p50_s: float = 0.0
    latency_p99_s: float = 0.0
    handshake_s: float = 0.0  # h3 (h3load.handshakes): the median of new connections
    # h3 (h3load.resumed): the median time to the answer of a resumed connection whose
    # request went as 0-RTT early data
    early_answer_s: float = 0.0


def require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(f"lanthorn bench: {tool} is missing (apt-get install {package})")
    return path


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _TIME[match.group(2)]


def parse_wrk(out: str, command: str) -> Result:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    size, unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out).groups()  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    latency = re.search(r"Latency\s+(\S+)", out)
    errors = sum(
        int(n)
        for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)
        + re.findall(r"Non-2xx or 3xx responses: (\d+)", out)
    )
    percentiles = {p: _seconds(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M)}
    return Result(
        rps,
        float(size) * _UNITS[unit],
        _seconds(latency.group(1)) if latency else 0.0,
        requests,
        errors,
        command,
        percentiles.get("50", 0.0),
        percentiles.get("99", 0.0),
    )


def wrk(url: str, conns: int, duration_s: float, cpu: int | None, threads: int = 1) -> Result:
    argv = [require("wrk", "wrk"), f"-t{threads}", f"-c{conns}", f"-d{max(1, round(duration_s))}s",
            "--timeout", "10s", "--latency", url]  # fmt: skip
    out = subprocess.run(
        pinned(cpu, argv), capture_output=True, text=True, check=True, timeout=duration_s + 60
    ).stdout
    return parse_wrk(out, " ".join(argv))


def parse_ab(out: str, command: str) -> Result:
    def number(label: str) -> float:
        match = re.search(rf"{label}:\s+([\d.]+)", out)
        return float(match.group(1)) if match else 0.0

    failed = int(number("Failed requests")) + int(number("Non-2xx responses"))
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\d+)$", out, re.M))
    return Result(
        number("Requests per second"),
        number("Transfer rate") * 1024,
        number(r"Time per request") / 1000,
        int(number("Complete requests")),
        failed,
        command,
        float(percentiles.get("50", 0)) / 1000,
        float(percentiles.get("99", 0)) / 1000,
    )


def ab(url: str, requests: int, conns: int, cpu: int | None, keep_alive: bool = False) -> Result:
    argv = [require("ab", "apache2-utils"), "-q", "-n", str(requests), "-c", str(conns)]
    argv += ["-k", url] if keep_alive else [url]
    out = subprocess.run(
        pinned(cpu, argv), capture_output=True, text=True, check=True, timeout=300
    ).stdout
    return parse_ab(out, " ".join(argv))


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


def parse_h2load(out: str, log: str, command: str) -> Result:
    """h2load's summary, with latency percentiles from its per-request log (tab-separated
    start µs, status, duration µs), which the summary does not give."""
    rps, size, unit = re.search(  # type: ignore[union-attr]
        r"finished in [\d.]+\w+, ([\d.]+) req/s, ([\d.]+)(\w+)/s", out
    ).groups()
    counts = re.search(  # type: ignore[union-attr]
        r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        out,
    ).groups()
    done, _, failed, errored, timeouts = map(int, counts)
    codes = re.search(r"status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx", out)
    non_2xx = sum(map(int, codes.groups())) if codes else 0
    durations = sorted(
        int(fields[2]) * 1e-6
        for line in log.splitlines()
        if len(fields := line.split("\t")) == 3 and fields[2].isdigit()
    )
    return Result(
        float(rps),
        float(size) * _UNITS[unit],
        statistics.fmean(durations) if durations else 0.0,
        done,
        failed + errored + timeouts + non_2xx,
        command,
        _percentile(durations, 0.5),
        _percentile(durations, 0.99),
    )


def h2load(url: str, conns: int, streams: int, duration_s: float, cpu: int | None) -> Result:
    """HTTP/2 over cleartext (prior knowledge), `streams` concurrent per connection."""
    with tempfile.TemporaryDirectory(prefix="lanthorn-h2load-") as tmp:
        log = Path(tmp) / "requests.tsv"
        argv = [require("h2load", "nghttp2-client"), "-t1", f"-c{conns}", f"-m{streams}",
                f"-D{max(1, round(duration_s))}", f"--log-file={log}", url]  # fmt: skip
        out = subprocess.run(
            pinned(cpu, argv), capture_output=True, text=True, check=True, timeout=duration_s + 60
        ).stdout
        return parse_h2load(out, log.read_text(), " ".join([*argv[:-2], url]))
