"""Who may come in: per-client limits, shared by every worker of one server — open
connections per client address (nginx limit_conn) and requests per client address
(nginx limit_req, nodelay) — each worker's memory budget for what it buffers on behalf
of clients, and its penalty box for clients it had to cut off for abuse.

The counters live in an anonymous shared mapping made before the workers fork, so the
limits hold for the server, not per worker. A client address is known by its 64-bit
string hash (SipHash, keyed per interpreter: the workers fork from the process that
made the table, so they share the key).

- Connections, exactly: each worker keeps its own row, an open-addressing table of
  (client, open connections), which only it writes (a worker that dies takes its
  counts with it: the supervisor clears the row before a replacement starts). A new
  connection is admitted while the sum over every worker's row is under the limit.
  Racing workers can admit one connection each past the limit at the same instant; no
  more. Within a worker a lock orders the accepting thread's admissions and the
  releases that come from any thread (the threads engine's pool closes connections).
- Requests, by the generic cell rate algorithm (GCRA, the leaky bucket as a meter): one
  theoretical arrival time per slot, on the monotonic clock every process shares; a
  request is allowed while it is at most `burst` emission intervals early. Each client
  has two slots (two halves of its hash, as a count-min sketch) and is judged by the
  less loaded one, so another client slows it only if that client (or several) is
  over the rate in both of its slots. Updates are not locked across workers; a race
  lets one extra request through.
"""

from __future__ import annotations

import math
import mmap
import threading
from typing import Final

ROW_SLOTS = 16384  # per worker: clients with open connections, and retired ones
RATE_SLOTS = 65536
_MAX_PROBE = 64  # a longer search means the row is clogged with retired clients


def _key(peer: str) -> int:
    return (hash(peer) & 0xFFFFFFFFFFFFFFFF) or 1  # 0 marks a slot never used


class ClientTable:
    """The shared mapping: one row of (client, connections) per worker, one row of
    theoretical arrival times."""

    def __init__(self, workers: int, max_connections: int = 0) -> None:
        self.workers = workers
        # A row holds at most max_connections live clients: a quarter of it at most.
        self.row_slots = row_slots = max(ROW_SLOTS, 4 * max_connections)
        row_bytes = row_slots * 8
        size = 2 * workers * row_bytes + RATE_SLOTS * 8
        # Anonymous and MAP_SHARED: inherited by forked workers, shared with them.
        self._map = mmap.mmap(-1, size)
        view = memoryview(self._map)
        keys_end = workers * row_bytes
        self.keys = view[:keys_end].cast("Q")
        self.counts = view[keys_end : 2 * keys_end].cast("q")
        self.arrivals = view[2 * keys_end :].cast("d")

    def clear_worker(self, row: int) -> None:
        """A worker is gone: its connections are too."""
        start = row * self.row_slots
        zeros = memoryview(bytes(self.row_slots * 8))
        self.keys[start : start + self.row_slots] = zeros.cast("Q")
        self.counts[start : start + self.row_slots] = zeros.cast("q")

    def find(self, row: int, key: int) -> int:
        """The index of `key` in `row`, or -1."""
        keys = self.keys
        base = row * self.row_slots
        index = key % self.row_slots
        for _ in range(self.row_slots):
            found = keys[base + index]
            if found == key:
                return base + index
            if found == 0:
                return -1
            index = (index + 1) % self.row_slots
        return -1

    def place(self, row: int, key: int, probes: int = _MAX_PROBE) -> int:
        """The index for `key` in `row`, taking a retired client's slot (no connection
        left) when `key` has none; the row is rebuilt when searches grow long."""
        keys, counts = self.keys, self.counts
        base = row * self.row_slots
        index = key % self.row_slots
        free = -1
        found = at = 0
        for _ in range(probes):
            at = base + index
            found = keys[at]
            if found == key:
                return at
            if found == 0:
                break
            if free < 0 and counts[at] == 0:
                free = at
            index = (index + 1) % self.row_slots
        if free < 0 and found != 0:  # clogged: keep only clients with connections
            self._rebuild(row)
            return self.place(row, key, self.row_slots)
        at = free if free >= 0 else at
        keys[at] = key
        counts[at] = 0
        return at

    def _rebuild(self, row: int) -> None:
        base = row * self.row_slots
        live = [
            (self.keys[base + i], self.counts[base + i])
            for i in range(self.row_slots)
            if self.counts[base + i] > 0
        ]
        self.clear_worker(row)
        for key, count in live:
            self.counts[self.place(row, key)] = count


class Admission:
    """One worker's view of the table: admit and release connections, meter requests."""

    def __init__(
        self, table: ClientTable, row: int, max_conns: int, rate_per_s: float, burst: int
    ) -> None:
        self._table = table
        self._row = row
        self._max_conns = max_conns
        self._interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._tolerance = burst * self._interval
        self._lock = threading.Lock()

    def admit(self, peer: str) -> bool:
        """Count a new connection from `peer`; False (and not counted) past the limit."""
        if not self._max_conns:
            return True
        table = self._table
        key = _key(peer)
        with self._lock:
            open_now = 0
            for row in range(table.workers):
                index = table.find(row, key)
                if index >= 0:
                    open_now += table.counts[index]
            if open_now >= self._max_conns:
                return False
            table.counts[table.place(self._row, key)] += 1
        return True

    def release(self, peer: str) -> None:
        """A connection `admit` counted has closed (from any thread)."""
        if not self._max_conns:
            return
        table = self._table
        with self._lock:
            index = table.find(self._row, _key(peer))
            if index >= 0 and table.counts[index] > 0:
                table.counts[index] -= 1

    def throttle(self, peer: str, now: float) -> int:
        """Meter one request from `peer` at monotonic `now`: 0 if it may be served, else
        the whole seconds after which it would be (for Retry-After)."""
        interval = self._interval
        if not interval:
            return 0
        arrivals = self._table.arrivals
        key = _key(peer)
        slots = (key % RATE_SLOTS, (key >> 32) % RATE_SLOTS)
        due = min(max(arrivals[slot], now) for slot in slots)
        early = due - now
        if early > self._tolerance + 1e-9:  # (sums of intervals carry rounding error)
            return max(1, math.ceil(early - self._tolerance))
        for slot in slots:
            arrivals[slot] = max(arrivals[slot], now) + interval
        return 0


class MemoryBudget:
    """What one worker holds on behalf of its clients — output batches not yet written,
    request heads and HTTP/2 header blocks still arriving — against a ceiling. Each
    connection reports what it holds (`update`); past the ceiling the worker
    refuses new connections and sheds new requests (503), and connections holding
    SMALL bytes or more are not read (`reads`), until writes and timeouts bring it back
    under, rather than grow."""

    # Below this, what a connection holds comes and goes with each request (and is not
    # worth accounting for a batch); from it, a connection is a big holder.
    SMALL: Final = 16 * 1024

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.held = 0
        self.exceeded = False  # held > limit_bytes, kept as a plain attribute (hot path)
        self._lock = threading.Lock()  # connections of the threads engine, in parallel

    def update(self, was: int, now: int) -> int:
        """A connection that held `was` bytes holds `now`; returns `now` (to keep)."""
        if now != was:
            with self._lock:
                self.held += now - was
                self.exceeded = self.held > self.limit_bytes
        return now

    def reads(self, held: int) -> bool:
        """Whether a connection holding `held` bytes may be read now."""
        return not self.exceeded or held < self.SMALL


class PenaltyBox:
    """Clients this worker cut off for abusing HTTP/2 — control-frame floods, reset
    storms, hoarded header blocks — whose new connections are held unread and then
    closed unheard for a while (`hold`): `first_s`, doubling with each repeat up to
    60 s, forgotten after five quiet minutes. An attacker that reconnects then costs
    neither a connection's setup nor another flood's parse. Only protocol abuse that no
    browser or proxy commits puts a client here — never a limit or a timeout — so
    clients behind one address (a NAT, a balancer) are not punished for each other's
    ordinary traffic. Dictionary updates are atomic; a race between two threads costs
    at most a strike."""

    MAX_S: Final = 60.0
    FORGET_S: Final = 300.0
    MAX_CLIENTS: Final = 10_000

    # Barred connections held unread at once (see `hold`); past it they are closed.
    HOLD_MAX: Final = 64

    def __init__(self, first_s: float) -> None:
        self.first_s = first_s
        self._until: dict[str, tuple[float, int]] = {}  # peer → (barred until, strikes)
        self.held = 0

    def penalise(self, peer: str, now: float) -> float:
        """Bar `peer`; how long for (0 when the box is off)."""
        if not self.first_s:
            return 0.0
        until, strikes = self._until.get(peer, (0.0, 0))
        strikes = 1 if now - until > self.FORGET_S else strikes + 1
        penalty = min(self.MAX_S, self.first_s * 2.0 ** (strikes - 1))
        if len(self._until) >= self.MAX_CLIENTS:
            self._forget(now)
        self._until[peer] = (now + penalty, strikes)
        return penalty

    def __len__(self) -> int:
        return len(self._until)

    def barred(self, peer: str, now: float) -> bool:
        entry = self._until.get(peer)
        return entry is not None and now < entry[0]

    def hold(self, peer: str) -> float:
        """Until when to hold a barred connection from `peer` unread (the end of its
        bar), or 0: the worker holds HOLD_MAX already, close it at once. Held, a client
        that reconnects the moment it is closed waits out its bar on one connection
        instead of making the worker accept thousands a second (a tarpit); each costs
        a descriptor and the kernel's receive buffer, no CPU. `unhold` when it closes."""
        if self.held >= self.HOLD_MAX:
            return 0.0
        self.held += 1
        return self._until[peer][0]

    def unhold(self) -> None:
        self.held -= 1

    def _forget(self, now: float) -> None:
        """Make room: drop the clients whose bar has ended (all, if none has)."""
        ended = [peer for peer, (until, _) in self._until.items() if until <= now]
        for peer in ended or list(self._until):
            del self._until[peer]
