"""The connection driver with a real site on a temporary root and a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from lanthorn.config import Config, Limits, ServerConfig, SiteConfig
from lanthorn.core.files import OsFileSource
from lanthorn.driver import CLOSE, Action, FileBody, Service, discard
from lanthorn.driver.contract import DRAIN_QUIET_S
from lanthorn.driver.http1 import HttpConnection


@pytest.fixture
def service(tmp_path: Path) -> Service:
    (tmp_path / "a.txt").write_bytes(b"hello")
    (tmp_path / "big.bin").write_bytes(b"b" * 100_000)
    config = Config(
        server=ServerConfig(access_log="off"),
        site=SiteConfig(root=str(tmp_path)),
        limits=Limits(header_timeout_s=10, keepalive_timeout_s=20, send_timeout_s=30),
    )
    return Service(config)


def wire(actions: list[Action]) -> bytes:
    return b"".join(a for a in actions if isinstance(a, bytes))


GET = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"


def test_request_response_and_deadlines(service: Service) -> None:
    conn = HttpConnection(service, "peer", now=0.0)
    assert conn.deadline == 10.0  # first request within the header timeout
    out = conn.feed(GET, now=1.0)
    assert wire(out).startswith(b"HTTP/1.1 200 OK\r\n") and wire(out).endswith(b"hello")
    assert conn.deadline == 31.0  # writing: send timeout
    assert conn.drained(now=2.0) == []
    assert conn.deadline == 22.0  # idle: keep-alive timeout
    assert conn.idle


def test_partial_head_times_out_with_408(service: Service) -> None:
    conn = HttpConnection(service, "peer", now=0.0)
    conn.feed(GET, now=0.0)
    conn.drained(now=1.0)  # answered: idle, keep-alive clock
    assert conn.feed(b"GET / HTTP/1.1\r\n", now=2.0) == []
    assert conn.deadline == 12.0  # a later request's clock starts with its head
    assert conn.feed(b"X-A: b\r\n", now=5.0) == []
    assert conn.deadline == 12.0  # trickling does not extend it
    assert conn.expired(now=11.9) == []
    out = conn.expired(now=12.0)
    assert wire(out).startswith(b"HTTP/1.1 408 Request Timeout\r\n") and out[-1] is CLOSE


def test_first_head_is_due_within_the_header_timeout_of_accept(service: Service) -> None:
    """Waiting before trickling gains nothing: the first head's clock starts at accept
    (issue 9, defect 6: a head begun at 7.5 s used to be allowed until 15.5 s)."""
    conn = HttpConnection(service, "peer", now=0.0)
    assert conn.feed(b"GET / HTTP/1.1\r\n", now=7.5) == []
    assert conn.deadline == 10.0
    assert conn.feed(b"X-A: b\r\n", now=9.0) == []
    assert conn.deadline == 10.0
    out = conn.expired(now=10.0)
    assert wire(out).startswith(b"HTTP/1.1 408 Request Timeout\r\n") and out[-1] is CLOSE


def test_blank_lines_do_not_extend_idle(service: Service) -> None:
    conn = HttpConnection(service, "peer", now=0.0)
    conn.feed(b"\r\n", now=5.0)
    assert conn.deadline == 10.0
    assert conn.expired(now=10.0) == [CLOSE]  # idle: closed without a response


def test_stuck_writer_is_closed_and_progress_extends(service: Service) -> None:
    conn = HttpConnection(service, "peer", now=0.0)
    conn.feed(GET, now=0.0)
    conn.progressed(now=20.0)
    assert conn.deadline == 50.0
    assert conn.expired(now=50.0) == [CLOSE]


def test_pipelined_batches_are_bounded(service: Service) -> None:
    """A client pipelining without reading gets bounded batches; the rest waits."""
    conn = HttpConnection(service, "peer", now=0.0)
    out = conn.feed(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n" * 10, now=0.0)
    files = [a for a in out if isinstance(a, FileBody)]
    assert len(files) == 4
    discard(out)
    total = len(files)
    while more := conn.drained(now=0.0):
        total += sum(isinstance(a, FileBody) for a in more)
        discard(more)
    assert total == 10


def test_protocol_error_answers_in_order_then_closes(service: Service) -> None:
    conn = HttpConnection(service, "peer", now=0.0)
    out = conn.feed(GET + b"BAD\r\n\r\n", now=0.0)
    data = wire(out)
    assert data.count(b"HTTP/1.1 ") == 2
    assert data.index(b"200 OK") < data.index(b"400 Bad Request")
    assert out[-1] is CLOSE
    assert conn.feed(GET, now=0.0) == [CLOSE]


def test_head_closes_file_body(service: Service) -> None:
    conn = HttpConnection(service, "peer", now=0.0)
    out = conn.feed(b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", now=0.0)
    assert len(out) == 1 and b"Content-Length: 100000" in wire(out)


def test_draining_closes_after_current_response(service: Service) -> None:
    """An idle connection closes once it has been quiet for DRAIN_QUIET_S (a request
    may be on its way); a request that comes meanwhile is answered, then it closes."""
    conn = HttpConnection(service, "peer", now=0.0)
    assert conn.shutdown() == []
    assert conn.deadline == DRAIN_QUIET_S
    assert conn.expired(DRAIN_QUIET_S) == [CLOSE]
    served = HttpConnection(service, "peer", now=0.0)
    served.feed(GET, now=0.0)
    served.drained(now=5.0)  # idle since 5.0
    assert served.shutdown() == [] and served.deadline == 5.0 + DRAIN_QUIET_S
    busy = HttpConnection(service, "peer", now=0.0)
    service.drain(now=0.0)
    out = busy.feed(GET, now=0.0)
    assert b"Connection: close" in wire(out) and out[-1] is CLOSE


def test_peer_eof(service: Service) -> None:
    assert HttpConnection(service, "p", 0.0).feed(b"", 0.0) == [CLOSE]


def test_a_bug_in_the_core_is_a_500_not_a_crash(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    # (The file source is Python even where the core is compiled, and can be patched.)
    monkeypatch.setattr(OsFileSource, "open", broken)
    out = HttpConnection(service, "p", 0.0).feed(GET, 0.0)
    assert wire(out).startswith(b"HTTP/1.1 500 ")
