"""Access log in the Combined Log Format, kept off the hot path. A WebSocket's record,
written when it closes, adds how long it lived (seconds) after the Combined fields.

`record` only appends a tuple to a deque (atomic, so thread-safe without a lock); lines
are formatted and written in batches by `flush`, which the engines call when the batch
is large, about once a second, and at shutdown. Control characters, quotes and
backslashes in logged fields are escaped as \\xHH (as nginx does), so a request cannot
forge log lines.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import deque
from typing import TextIO

from lanthorn.errors import ConfigError

_UNSAFE = re.compile(r'[\x00-\x1f"\\\x7f-\xff]')
# peer, method, target, version, status, bytes sent, referer, user agent, wall time, and
# how long a connection that outlives its request (a WebSocket) lived, in seconds.
Record = tuple[str, bytes, bytes, str, int, int, bytes, bytes, float, float | None]


def _escape(raw: bytes) -> str:
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02X}", raw.decode("latin-1"))


def format_record(record: Record) -> str:
    peer, method, target, version, status, nbytes, referer, agent, wall, lived = record
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(wall))
    request = _escape(method + b" " + target) + f" HTTP/{version}" if method else "-"
    # A socket's lifetime follows the Combined fields, as nginx's $request_time would.
    tail = "" if lived is None else f" {lived:.3f}"
    return (
        f'{peer} - - [{stamp}] "{request}" {status} {nbytes} '
        f'"{_escape(referer) or "-"}" "{_escape(agent) or "-"}"{tail}\n'
    )


def _append(path: str) -> TextIO:
    return open(path, "a", encoding="utf-8", buffering=1 << 16)


class AccessLog:
    BATCH = 256
    INTERVAL_S = 1.0

    def __init__(self, stream: TextIO, *, owned: bool, path: str | None = None) -> None:
        self._stream = stream
        self._owned = owned
        self._path = path  # the file it appends to (None: a stream it was given)
        self._pending: deque[Record] = deque()
        self._flushed_at = 0.0
        self._write_lock = threading.Lock()  # flushes may race from pool threads

    @classmethod
    def open(cls, target: str) -> AccessLog | None:
        """`-` is stdout, `off` disables logging, anything else is a file appended to."""
        if target == "off":
            return None
        if target == "-":
            return cls(sys.stdout, owned=False)
        try:
            return cls(_append(target), owned=True, path=target)
        except OSError as exc:
            raise ConfigError(f"cannot open access log {target!r}: {exc.strerror}") from exc

    def reopen(self) -> None:
        """Write what is pending, then go on in a file opened anew at the same path
        (SIGUSR1, after logrotate moved the old one away); the old file is kept if the
        new one cannot be opened."""
        if self._path is None:
            return
        self.flush()
        try:
            fresh = _append(self._path)
        except OSError as exc:
            logging.getLogger("lanthorn").warning("access log not reopened: %s", exc)
            return
        with self._write_lock:
            old, self._stream = self._stream, fresh
        old.close()

    def record(self, record: Record) -> None:
        self._pending.append(record)
        if len(self._pending) >= self.BATCH:
            self.flush()

    def tick(self, now: float) -> None:
        """Flush if a batch has waited long enough (`now` is monotonic seconds)."""
        if self._pending and now - self._flushed_at >= self.INTERVAL_S:
            self.flush()
            self._flushed_at = now

    def flush(self) -> None:
        pending = self._pending
        lines = []
        while pending:
            try:
                lines.append(format_record(pending.popleft()))
            except IndexError:  # another thread emptied it first
                break
        if lines:
            try:
                with self._write_lock:
                    self._stream.write("".join(lines))
                    self._stream.flush()
            except (OSError, ValueError) as exc:  # closed stdout must not kill the server
                logging.getLogger("lanthorn").warning("access log write failed: %s", exc)

    def close(self) -> None:
        self.flush()
        if self._owned:
            self._stream.close()
