"""The benchmark's reading of h2load output: errors are counted, never hidden."""

from __future__ import annotations

import pytest

from lanthorn.bench.load import parse_h2load

H2LOAD_OUT = """\
starting benchmark...
finished in 2.00s, 10205.00 req/s, 10.00MB/s
requests: 20410 total, 20510 started, 20400 done, 20390 succeeded, 10 failed, 3 errored, 2 timeout
status codes: 20390 2xx, 4 3xx, 5 4xx, 1 5xx
traffic: 20.00MB (20971520) total, 200.00KB (204800) headers (space savings 90.00%)
"""


def test_h2load_summary_and_log_percentiles() -> None:
    log = "".join(f"1700000000{i:06d}\t200\t{i * 10}\n" for i in range(1, 101))
    result = parse_h2load(H2LOAD_OUT, log + "garbage line\n", "h2load -c4")
    assert result.requests_per_s == 10205.0
    assert result.bytes_per_s == 10.0 * 2**20
    assert result.requests == 20400
    assert result.errors == 10 + 3 + 2 + 5 + 1  # failed, errored, timeout, 4xx, 5xx
    assert result.latency_p50_s == pytest.approx(500e-6, rel=0.03)
    assert result.latency_p99_s == pytest.approx(990e-6, rel=0.02)
    assert result.latency_avg_s == pytest.approx(505e-6)
    assert result.command == "h2load -c4"


def test_h2load_without_log_has_no_latency() -> None:
    result = parse_h2load(H2LOAD_OUT, "", "h2load")
    assert (result.latency_p50_s, result.latency_p99_s, result.latency_avg_s) == (0.0, 0.0, 0.0)
