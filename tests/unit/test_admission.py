"""Per-client limits (issue 9): connections per client address and the request rate,
shared by the workers of one server; and what the driver answers past them."""

from __future__ import annotations

from pathlib import Path

import h2.events
import pytest

from lanthorn.config import Config, Limits, ServerConfig, SiteConfig
from lanthorn.driver import CLOSE, Action, Service, connect
from lanthorn.driver.admission import Admission, ClientTable, PenaltyBox
from lanthorn.errors import ConfigError
from tests.unit.test_http2 import Client


def test_connections_per_client_are_capped_and_released() -> None:
    admission = Admission(ClientTable(1), 0, max_conns=2, rate_per_s=0.0, burst=0)
    assert admission.admit("10.0.0.1") and admission.admit("10.0.0.1")
    assert not admission.admit("10.0.0.1")  # the third
    assert admission.admit("10.0.0.2")  # another client is not affected
    admission.release("10.0.0.1")
    assert admission.admit("10.0.0.1")
    assert not admission.admit("10.0.0.1")


def test_the_cap_holds_across_workers_and_a_dead_worker_releases_its_own() -> None:
    table = ClientTable(2)
    first = Admission(table, 0, max_conns=2, rate_per_s=0.0, burst=0)
    second = Admission(table, 1, max_conns=2, rate_per_s=0.0, burst=0)
    assert first.admit("::1") and second.admit("::1")
    assert not first.admit("::1") and not second.admit("::1")
    table.clear_worker(1)  # the second worker died with its connection
    assert first.admit("::1")


def test_counts_are_exact_for_many_clients_and_retired_ones_make_room() -> None:
    """10,000 clients get their second connection at a cap of 2 and not a third; once
    they have gone, 10,000 others (the row full of retired clients) are counted
    exactly too."""
    admission = Admission(ClientTable(1), 0, max_conns=2, rate_per_s=0.0, burst=0)
    peers = [f"10.{i // 250}.{i % 250}.1" for i in range(10000)]
    assert all(admission.admit(peer) for peer in peers)
    assert all(admission.admit(peer) for peer in peers)
    assert not any(admission.admit(peer) for peer in peers)
    for peer in peers * 2:
        admission.release(peer)
    others = [f"11.{i // 250}.{i % 250}.1" for i in range(10000)]
    assert all(admission.admit(peer) for peer in others)
    assert all(admission.admit(peer) for peer in others)
    assert not any(admission.admit(peer) for peer in others)


def test_the_request_rate_is_a_leaky_bucket_with_a_burst() -> None:
    admission = Admission(ClientTable(1), 0, max_conns=0, rate_per_s=2.0, burst=2)
    assert [admission.throttle("p", 100.0) for _ in range(3)] == [0, 0, 0]  # 1 + burst
    assert admission.throttle("p", 100.0) == 1  # Retry-After: whole seconds, at least 1
    assert admission.throttle("q", 100.0) == 0  # per client
    assert admission.throttle("p", 100.5) == 0  # half a second: one more at 2/s
    assert admission.throttle("p", 100.5) == 1
    assert [admission.throttle("p", 110.0) for _ in range(3)] == [0, 0, 0]  # refilled


def test_a_slow_rate_tells_how_long_to_wait() -> None:
    admission = Admission(ClientTable(1), 0, max_conns=0, rate_per_s=1 / 60, burst=0)
    assert admission.throttle("p", 0.0) == 0
    assert admission.throttle("p", 0.0) == 60
    assert admission.throttle("p", 45.5) == 15


@pytest.mark.parametrize(("text", "rate"), [("10/s", 10.0), ("600/m", 10.0), ("5", 5.0),
                                            ("2.5r/s", 2.5), ("", 0.0)])  # fmt: skip
def test_rate_syntax(text: str, rate: float) -> None:
    assert Limits(rate_limit=text).rate_per_s() == rate


@pytest.mark.parametrize("text", ["fast", "10/h", "0/s", "-1/s"])
def test_bad_rates_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        Limits(rate_limit=text)


def test_negative_limits_and_unknown_tls_versions_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        Limits(max_conns_per_ip=-1)
    with pytest.raises(ConfigError):
        ServerConfig(tls_min="1.1")


# --- what the driver answers -----------------------------------------------------------------


def _service(tmp_path: Path, **limits: object) -> Service:
    (tmp_path / "a.txt").write_bytes(b"hello")
    config = Config(
        server=ServerConfig(access_log="off"),
        site=SiteConfig(root=str(tmp_path)),
        limits=Limits(**limits),  # type: ignore[arg-type]
    )
    return Service(config)


def wire(actions: list[Action]) -> bytes:
    return b"".join(a for a in actions if isinstance(a, bytes))


GET = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"


def test_past_the_connection_cap_http1_gets_503_and_close(tmp_path: Path) -> None:
    service = _service(tmp_path, max_conns_per_ip=1)
    first = connect(service, "1.2.3.4", 0.0)
    second = connect(service, "1.2.3.4", 0.0)
    out = second.feed(GET, 0.0)
    assert wire(out).startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Connection: close" in wire(out) and out[-1] is CLOSE
    assert wire(first.feed(GET, 0.0)).startswith(b"HTTP/1.1 200 OK")
    second.abort()  # a refused connection was never counted: nothing to release
    first.abort()
    third = connect(service, "1.2.3.4", 0.0)
    assert wire(third.feed(GET, 0.0)).startswith(b"HTTP/1.1 200 OK")
    third.abort()


def test_past_the_connection_cap_http2_gets_goaway(tmp_path: Path) -> None:
    service = _service(tmp_path, max_conns_per_ip=1)
    first = connect(service, "1.2.3.4", 0.0)
    second = connect(service, "1.2.3.4", 0.0)
    client = Client()
    out = second.feed(client.send(), 0.0)
    assert second.drained(0.0) == [CLOSE]  # once the GOAWAY is written
    events = client.receive(wire(out))
    goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway and goaway[0].last_stream_id == 0
    first.abort()


def test_past_the_rate_http1_and_http2_streams_get_429_with_retry_after(tmp_path: Path) -> None:
    service = _service(tmp_path, rate_limit="1/s", rate_burst=1)
    conn = connect(service, "5.6.7.8", 0.0)
    out = conn.feed(GET * 3, 0.0)
    data = wire(out)
    assert data.count(b"HTTP/1.1 200 OK") == 2  # the rate's one plus the burst
    assert b"HTTP/1.1 429 Too Many Requests\r\n" in data
    assert b"Retry-After: 1\r\n" in data
    conn.abort()
    h2conn = connect(service, "5.6.7.8", 0.0)  # the same client over HTTP/2
    client = Client()
    stream_id = client.request()
    events = client.receive(wire(h2conn.feed(client.send(), 0.5)))
    statuses = {
        e.stream_id: dict(e.headers) for e in events if isinstance(e, h2.events.ResponseReceived)
    }
    assert statuses[stream_id][b":status"] == b"429"
    assert statuses[stream_id][b"retry-after"] == b"1"
    h2conn.abort()


# --- the memory budget -------------------------------------------------------------------------


def test_past_the_memory_budget_new_work_gets_503_until_writes_free_it(tmp_path: Path) -> None:
    service = _service(tmp_path, memory_budget_bytes=30_000)
    (tmp_path / "big.txt").write_bytes(b"x" * 40_000)  # cached: its bytes go out in a batch
    reader = connect(service, "1.1.1.1", 0.0)
    out = reader.feed(b"GET /big.txt HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)
    assert wire(out).startswith(b"HTTP/1.1 200 OK")
    assert service.memory.held >= 40_000 and service.memory.exceeded  # not written yet
    late = connect(service, "2.2.2.2", 0.0)
    refused = late.feed(GET, 0.0)
    assert wire(refused).startswith(b"HTTP/1.1 503 ") and refused[-1] is CLOSE
    late.abort()  # its 503 written, it is closed (a small batch: never counted)
    assert reader.drained(1.0) == []  # the batch is written: nothing held
    assert service.memory.held == 0
    fresh = connect(service, "2.2.2.2", 1.0)
    assert wire(fresh.feed(GET, 1.0)).startswith(b"HTTP/1.1 200 OK")
    for conn in (reader, late, fresh):
        conn.abort()
    assert service.memory.held == 0


def test_heads_and_header_blocks_still_arriving_are_held(tmp_path: Path) -> None:
    service = _service(tmp_path)
    slow = connect(service, "3.3.3.3", 0.0)
    slow.feed(b"GET / HTTP/1.1\r\nX-Long: " + b"v" * 3000, 0.0)
    assert service.memory.held >= 3000
    slow.abort()
    assert service.memory.held == 0
    h2conn = connect(service, "3.3.3.3", 0.0)
    client = Client()
    h2conn.feed(client.send(), 0.0)
    h2conn.drained(0.0)
    # HEADERS without END_HEADERS: its block waits, whole, for CONTINUATION frames
    h2conn.feed(b"\x00\x10\x00\x01\x00\x00\x00\x00\x01" + b"\x00" * 4096, 0.0)
    assert service.memory.held >= 4096
    h2conn.abort()
    assert service.memory.held == 0


def test_a_whole_burst_at_one_instant_is_served_whatever_the_clock_reads() -> None:
    """Pipelined requests share one `now`; the burst's sum of intervals must not lose
    one to rounding at large clock values."""
    for now in (0.0, 1234.5678, 987654.321):
        admission = Admission(ClientTable(1), 0, max_conns=0, rate_per_s=20.0, burst=4)
        assert [admission.throttle("p", now) for _ in range(6)] == [0, 0, 0, 0, 0, 1]


# --- the penalty box -----------------------------------------------------------------------------


def test_penalties_double_with_each_repeat_and_are_forgotten() -> None:
    box = PenaltyBox(first_s=1.0)
    assert box.penalise("p", 100.0) == 1.0
    assert box.barred("p", 100.5) and not box.barred("p", 101.0)
    assert not box.barred("q", 100.5)  # per client
    assert box.penalise("p", 101.0) == 2.0
    assert box.penalise("p", 103.0) == 4.0
    for _ in range(10):
        box.penalise("p", 103.0)
    assert box.penalise("p", 103.0) == PenaltyBox.MAX_S
    assert box.penalise("p", 103.0 + PenaltyBox.MAX_S + PenaltyBox.FORGET_S + 1) == 1.0
    assert PenaltyBox(first_s=0.0).penalise("p", 0.0) == 0.0  # off


def test_the_box_holds_a_bounded_number_of_clients() -> None:
    box = PenaltyBox(first_s=1.0)
    peers = [f"10.0.{i // 250}.{i % 250}" for i in range(PenaltyBox.MAX_CLIENTS + 10)]
    for i, peer in enumerate(peers):
        box.penalise(peer, float(i))
    assert len(box) <= PenaltyBox.MAX_CLIENTS
    assert box.barred(peers[-1], float(len(peers) - 1))  # the newest is kept


def test_a_client_cut_off_for_a_flood_is_refused_unheard_for_a_while(tmp_path: Path) -> None:
    service = _service(tmp_path)
    flooder = connect(service, "6.6.6.6", 0.0)
    client = Client()
    flood = client.send() + b"\x00\x00\x08\x06\x00\x00\x00\x00\x0012345678" * 1000
    assert flooder.feed(flood, 0.0)[-1] is CLOSE  # GOAWAY(ENHANCE_YOUR_CALM), close
    flooder.abort()
    again = connect(service, "6.6.6.6", 0.5)
    # Held unread until its bar ends (a tarpit), then closed unheard, at once.
    assert not again.reading and again.deadline == 1.0
    assert again.expired(1.0) == [CLOSE] and not again.lingers
    again.abort()
    other = connect(service, "7.7.7.7", 0.5)
    assert wire(other.feed(GET, 0.5)).startswith(b"HTTP/1.1 200 OK")
    other.abort()
    later = connect(service, "6.6.6.6", 1.0)  # the first penalty is a second
    assert wire(later.feed(GET, 1.0)).startswith(b"HTTP/1.1 200 OK")
    later.abort()


def test_held_barred_connections_are_bounded_and_past_it_closed_at_once(tmp_path: Path) -> None:
    service = _service(tmp_path)
    service.penalties.penalise("6.6.6.6", 0.0)
    held = [connect(service, "6.6.6.6", 0.1) for _ in range(PenaltyBox.HOLD_MAX)]
    assert all(not conn.reading and conn.deadline == 1.0 for conn in held)
    extra = connect(service, "6.6.6.6", 0.1)  # no room: read, closed at its first bytes
    assert extra.reading and extra.deadline == 0.1 and extra.feed(b"x", 0.1) == [CLOSE]
    extra.abort()
    held.pop().abort()
    held.append(connect(service, "6.6.6.6", 0.2))  # a slot was freed
    assert not held[-1].reading
    for conn in held:
        conn.abort()
        conn.abort()  # released once, whatever the engine does
    assert service.penalties.held == 0


def test_past_the_memory_budget_big_holders_are_not_read(tmp_path: Path) -> None:
    """Over budget, a connection holding more than a little waits unread (writes drain
    it) while small ones are still read; under budget again, all are read."""
    service = _service(tmp_path, memory_budget_bytes=50_000)
    (tmp_path / "big.txt").write_bytes(b"x" * 40_000)
    reader, small, h2reader = (connect(service, p, 0.0) for p in ("1.1", "2.2", "3.3"))
    small.feed(b"GET /a.txt HTTP/1.1\r\n", 0.0)
    reader.feed(b"GET /big.txt HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)
    assert not service.memory.exceeded and reader.reading
    client = Client()
    h2reader.feed(client.send(), 0.0)
    h2reader.drained(0.0)
    client.request(b"/big.txt")
    assert wire(h2reader.feed(client.send(), 0.0))  # its 40 KB batch is not written yet
    assert service.memory.exceeded
    assert not h2reader.reading and not reader.reading and small.reading
    h2reader.abort()
    assert reader.drained(1.0) == [] and not service.memory.exceeded
    assert reader.reading and small.reading
    for conn in (reader, small):
        conn.abort()
