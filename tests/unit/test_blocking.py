"""The blocking-socket loop of `single` and `threads` (engines/blocking.py), driven
over a socketpair with a scripted connection."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import cast

from lanthorn.driver import Action, Service
from lanthorn.engines import blocking


class _Downloads:
    """A multiplexed connection whose batches come one after another, as a large
    HTTP/2 download's do."""

    deadline = float("inf")
    peer = "test"
    idle = False
    multiplexed = True
    reading = True
    lingers = True

    def __init__(self, batches: list[list[Action]]) -> None:
        self.batches = batches

    def drained(self, now: float, data: bytes = b"") -> list[Action]:
        return self.batches.pop(0) if self.batches else []

    def feed(self, data: bytes, now: float) -> list[Action]:
        return []

    def progressed(self, now: float) -> None:
        pass

    def expired(self, now: float) -> list[Action]:
        return []

    def shutdown(self) -> list[Action]:
        return []

    def abort(self) -> None:
        pass


def test_a_later_batch_that_stalls_is_left_in_the_callers_batch() -> None:
    """Outcome.WRITING hands the rest back in the Batch the caller passed in (it resumes
    that one), even when the stall comes in a later batch than the first."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        later = b"y" * (4 << 20)  # far more than the socket buffers hold
        conn = _Downloads([[later]])
        service = cast(Service, SimpleNamespace(draining=False, stop_at=float("inf")))
        batch = blocking.Batch([b"first"])
        outcome = blocking.serve(ours, conn, service, lambda: True, batch)
        assert outcome is blocking.Outcome.WRITING
        assert len(batch.actions) == 1 and batch.actions[0] is later and batch.pos > 0
