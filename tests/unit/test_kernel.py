"""The engine kernel: lingering, accept back-off, overdue connections, sendfile."""

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
