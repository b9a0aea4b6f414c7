"""A timer heap: when each of many keys is next due (connections' deadlines). Pure: the
time is always passed in. The engines wake connections by it (engines/kernel), and the
QUIC driver its QUIC connections."""

from __future__ import annotations

import heapq
import itertools
from typing import Final, Generic, TypeVar

K = TypeVar("K")


class Timers(Generic[K]):
    """When each connection is next due: its driver's deadline (or its lingering's end).

    A heap with lazy deletion. `wake(key, at)` after every driver call that may have
    moved the deadline earlier (feed, drained, expired); a deadline that moved later
    (progress while writing) costs nothing: the old entry comes due, the engine looks
    at the connection, finds it not due yet, and wakes it again at the new time.
    Invariant: every live key has exactly one live entry, at `_at[key]`, no later than
    the time it is really due.

    A wake for a time already past is moved to just after the last `due` (by
    MIN_WAIT_S): a connection still due after it was handled (a driver that answered
    nothing and kept its deadline) is looked at again soon, not in a busy loop."""

    __slots__ = ("_at", "_floor", "_heap", "_seq")

    MIN_WAIT_S: Final = 0.01

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._at: dict[K, float] = {}
        self._seq = itertools.count()  # ties never compare the keys
        self._floor = 0.0

    def wake(self, key: K, at: float) -> None:
        if at < self._floor:  # noqa: PLR1730 - the hot path: no call
            at = self._floor
        known = self._at.get(key)
        if known is None or at < known:
            self._at[key] = at
            heap = self._heap
            heapq.heappush(heap, (at, next(self._seq), key))
            if len(heap) > 2 * len(self._at) + 64:
                self._compact()

    def _compact(self) -> None:
        """Superseded and forgotten entries wait in the heap until they come due: past
        twice the live ones, rebuild it from the live ones, so memory stays bounded
        whatever the connections' deadlines do."""
        seq = self._seq
        self._heap = [(at, next(seq), key) for key, at in self._at.items()]
        heapq.heapify(self._heap)

    def forget(self, key: K) -> None:
        self._at.pop(key, None)

    def next_at(self) -> float | None:
        """The earliest live entry, if any."""
        heap, at = self._heap, self._at
        while heap and at.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale: forgotten, or superseded by an earlier one
        return heap[0][0] if heap else None

    def due(self, now: float) -> list[K]:
        """The keys due by `now`, removed: the caller looks at each and wakes it again."""
        heap, at = self._heap, self._at
        found: list[K] = []
        self._floor = now + self.MIN_WAIT_S
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            if at.get(key) == when:
                del at[key]
                found.append(key)
        return found

    def __len__(self) -> int:
        return len(self._at)
