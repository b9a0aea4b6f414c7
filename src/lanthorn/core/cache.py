"""A per-worker cache of complete plans for small hot files.

Keyed by the raw (undecoded) request target (plus Accept-Encoding when codings are
negotiated) so a hit skips decoding, resolution, open and read. An entry is trusted for
`revalidate_s`; after that every name it depends on (the file, and its sidecars present
or absent) is stat'ed again and the entry dropped if any identity (inode, size, mtime)
changed. The bodies were read
from the descriptor their headers describe, so a hit is always self-consistent.
Bounded by entry count and total body bytes; eviction is oldest-first.
"""

from __future__ import annotations

import os

from lanthorn.core.files import FileSource
from lanthorn.core.response import ResponsePlan

Identity = tuple[int, int, int, int]


def identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


Checks = list[tuple[str, Identity | None]]  # names the plan depends on, None: absent


class _Entry:
    __slots__ = ("checked_at", "checks", "plan", "size")

    def __init__(self, plan: ResponsePlan, checks: Checks, now: float) -> None:
        self.plan = plan
        self.checks = checks
        self.checked_at = now
        self.size = plan.body_length


class PlanCache:
    def __init__(
        self, source: FileSource, max_entries: int, max_bytes: int, revalidate_s: float
    ) -> None:
        self._source = source
        self._entries: dict[bytes, _Entry] = {}
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._revalidate_s = revalidate_s
        self._bytes = 0
        # Lookups answered from the cache and not (plain requests only: those with
        # validators or a Range never look). Read by the worker's metrics.
        self.hits = 0
        self.misses = 0

    def get(self, raw_path: bytes, now: float) -> ResponsePlan | None:
        entry = self._entries.get(raw_path)
        if entry is None:
            self.misses += 1
            return None
        if now - entry.checked_at < self._revalidate_s:
            self.hits += 1
            return entry.plan
        for relative, expected in entry.checks:
            st = self._source.stat(relative)
            if (None if st is None else identity(st)) != expected:
                self._drop(raw_path)
                self.misses += 1
                return None
        entry.checked_at = now
        self.hits += 1
        return entry.plan

    def put(self, raw_path: bytes, plan: ResponsePlan, checks: Checks, now: float) -> None:
        entry = _Entry(plan, checks, now)
        if entry.size > self._max_bytes:
            return
        self._drop(raw_path)
        while self._entries and (
            len(self._entries) >= self._max_entries or self._bytes + entry.size > self._max_bytes
        ):
            self._drop(next(iter(self._entries)))
        self._entries[raw_path] = entry
        self._bytes += entry.size

    def _drop(self, raw_path: bytes) -> None:
        entry = self._entries.pop(raw_path, None)
        if entry is not None:
            self._bytes -= entry.size

    def __len__(self) -> int:
        return len(self._entries)
