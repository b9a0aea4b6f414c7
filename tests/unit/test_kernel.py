"""The engine kernel: timers, lingering, accept back-off, overdue connections, sendfile."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from lanthorn.driver import LINGER_BYTES, LINGER_S, FileBody
from lanthorn.engines.kernel import (
    AcceptBackoff,
    Linger,
    Verdict,
    overdue,
    send_file,
)
from lanthorn.timers import Timers


def test_timers_come_due_in_order_once_each() -> None:
    timers: Timers[str] = Timers()
    timers.wake("b", 2.0)
    timers.wake("a", 1.0)
    timers.wake("c", 3.0)
    assert timers.next_at() == 1.0
    assert timers.due(0.5) == []
    assert timers.due(2.0) == ["a", "b"]
    assert timers.due(2.0) == []  # removed: the engine wakes them again if it must
    assert len(timers) == 1 and timers.next_at() == 3.0


def test_an_earlier_wake_supersedes_and_a_later_one_waits_for_the_first() -> None:
    """Moving a deadline later costs nothing: the earlier entry comes due, and the
    engine, finding the connection not due, wakes it again at its new time."""
    timers: Timers[str] = Timers()
    timers.wake("a", 5.0)
    timers.wake("a", 1.0)  # earlier: replaces the entry at 5
    timers.wake("a", 9.0)  # later: ignored until the entry at 1 comes due
    assert timers.next_at() == 1.0
    assert timers.due(6.0) == ["a"]  # once, though two entries were pushed
    assert timers.next_at() is None


def test_a_connection_still_due_after_it_was_handled_waits_a_little() -> None:
    timers: Timers[str] = Timers()
    timers.wake("a", 1.0)
    assert timers.due(5.0) == ["a"]
    timers.wake("a", 1.0)  # its deadline did not move: not due again at once
    assert timers.due(5.0) == []
    assert timers.due(5.0 + Timers.MIN_WAIT_S) == ["a"]


def test_forgotten_keys_never_come_due() -> None:
    timers: Timers[int] = Timers()
    timers.wake(1, 1.0)
    timers.wake(2, 2.0)
    timers.forget(1)
    assert timers.next_at() == 2.0
    assert timers.due(10.0) == [2]
    timers.forget(3)  # unknown: nothing happens


def test_stale_entries_never_pile_up() -> None:
    """A deadline that keeps moving earlier leaves superseded entries behind: the heap
    is rebuilt before they outnumber the live ones twice over."""
    timers: Timers[int] = Timers()
    for key in range(10):
        timers.wake(key, 1000.0)
    for step in range(10_000):
        timers.wake(step % 10, 999.0 - step / 100)
    assert len(timers._heap) <= 2 * len(timers) + 64
    due = timers.due(2000.0)
    assert sorted(due) == list(range(10))  # each once, at its latest (earliest) time


def test_linger_ends_at_eof_or_past_its_byte_bound() -> None:
    linger = Linger(100.0)
    assert linger.until == 100.0 + LINGER_S
    assert linger.discard(b"x" * 1000)
    assert not linger.discard(b"")  # the client closed
    greedy = Linger(0.0, extra_s=5.0)
    assert greedy.until == LINGER_S + 5.0
    assert greedy.discard(b"x" * LINGER_BYTES)
    assert not greedy.discard(b"x")


def test_accept_backs_off_only_for_want_of_resources() -> None:
    backoff = AcceptBackoff()
    assert not backoff.failed(OSError(errno.ECONNABORTED, "aborted"), 0.0)
    assert not backoff.waiting(0.0)
    assert backoff.failed(OSError(errno.EMFILE, "too many open files"), 10.0)
    assert backoff.waiting(10.05)
    assert not backoff.waiting(10.0 + AcceptBackoff.BACKOFF_S)
    assert backoff.until is None


class _Conn:
    deadline = 5.0


def test_overdue_aborts_a_stuck_batch_and_expires_the_rest() -> None:
    conn = _Conn()
    assert overdue(conn, 4.9, True) is Verdict.WAIT  # type: ignore[arg-type]
    assert overdue(conn, 5.0, False) is Verdict.EXPIRE  # type: ignore[arg-type]
    assert overdue(conn, 5.0, True) is Verdict.ABORT  # type: ignore[arg-type]


def test_send_file_sends_the_slice_and_refuses_a_shrunk_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    a, b = socket.socketpair()
    with a, b:
        body = FileBody(path.open("rb"), 2, 6)
        try:
            assert send_file(a.fileno(), body, 1, 5) == 5
            assert b.recv(100) == b"34567"
            os.truncate(path, 3)
            with pytest.raises(OSError) as shrank:
                send_file(a.fileno(), body, 2, 4)
            assert shrank.value.errno == errno.EIO
        finally:
            body.close()
