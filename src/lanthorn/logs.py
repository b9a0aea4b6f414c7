"""Access log, kept off the hot path: the Combined Log Format (nginx's default, byte for
byte; a WebSocket's record, written when it closes, adds how long it lived, in seconds,
after the Combined fields) or JSON, one object per line with the same keys on every line.

`record` only appends a tuple to a deque (atomic, so thread-safe without a lock); lines
are formatted and written in batches by `flush`, which the engines call when the batch
is large, about once a second, and at shutdown. Control characters, quotes and
backslashes in logged fields are escaped as \\xHH (as nginx does), so a request cannot
forge log lines; JSON lines are escaped by `json` (ASCII only, so no raw control or
line-breaking character can appear in one).

Combined stays as nginx writes it, without the protocol's TLS version or the duration:
log parsers (GoAccess, AWStats, fail2ban filters) expect exactly its fields, and nginx
users who want $request_time add it to a format of their own. JSON carries them all.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from lanthorn.errors import ConfigError

_UNSAFE = re.compile(r'[\x00-\x1f"\\\x7f-\xff]')
# peer, method, target, version ("1.1", "2.0", ...; "" when the request could not be
# parsed), status, body bytes sent, referer, user agent, wall time, how long a connection
# that outlives its request (a WebSocket) lived, the TLS version (None: cleartext), and the
# duration in seconds (from the request head received to the response's last byte handed
# to the kernel: see driver/ledger).
Record = tuple[
    str, bytes, bytes, str, int, int, bytes, bytes, float, float | None, str | None, float
]


def _escape(raw: bytes) -> str:
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02X}", raw.decode("latin-1"))


def format_record(record: Record) -> str:
    """One line in the Combined Log Format."""
    peer, method, target, version, status, nbytes, referer, agent, wall, lived, _, _ = record
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(wall))
    request = _escape(method + b" " + target) + f" HTTP/{version}" if method else "-"
    # A socket's lifetime follows the Combined fields, as nginx's $request_time would.
    tail = "" if lived is None else f" {lived:.3f}"
    return (
        f'{peer} - - [{stamp}] "{request}" {status} {nbytes} '
        f'"{_escape(referer) or "-"}" "{_escape(agent) or "-"}"{tail}\n'
    )


def _text(raw: bytes) -> str | None:
    """A logged header or target as text: UTF-8, any other byte as \\xHH; None if empty."""
    return raw.decode("utf-8", "backslashreplace") if raw else None


def format_json(record: Record) -> str:
    """One JSON object on one line; every key on every line (null when unknown)."""
    peer, method, target, version, status, nbytes, referer, agent, wall, lived, tls, took = record
    return (
        json.dumps(
            {
                "time": datetime.datetime.fromtimestamp(wall)
                .astimezone()
                .isoformat("T", "milliseconds"),
                "remote": peer,
                "method": _text(method),
                "target": _text(target),
                "protocol": f"HTTP/{version}" if version else None,
                "status": status,
                "bytes": nbytes,
                "duration": round(took, 6),
                "tls": tls,
                "referer": _text(referer),
                "user_agent": _text(agent),
                "lived": None if lived is None else round(lived, 3),
            }
        )
        + "\n"
    )


def _append(path: str) -> TextIO:
    return open(path, "a", encoding="utf-8", buffering=1 << 16)


class AccessLog:
    """Records of finished requests, formatted and written in batches. `count`, when
    given, also sees every batch (the worker's metrics, lanthorn.metrics); with no
    stream, records are only counted (`--access-log off` with `--metrics`)."""

    BATCH = 256
    INTERVAL_S = 1.0

    def __init__(
        self,
        stream: TextIO | None,
        *,
        owned: bool = False,
        path: str | None = None,
        form: Callable[[Record], str] = format_record,
        count: Callable[[list[Record]], None] | None = None,
    ) -> None:
        self._stream = stream
        self._owned = owned
        self._path = path  # the file it appends to (None: a stream it was given)
        self._format = form
        self._count = count
        self._pending: deque[Record] = deque()
        self._flushed_at = 0.0
        self._write_lock = threading.Lock()  # flushes may race from pool threads

    @classmethod
    def open(
        cls,
        target: str,
        form: str = "combined",
        count: Callable[[list[Record]], None] | None = None,
    ) -> AccessLog | None:
        """`-` is stdout, `off` disables logging, anything else is a file appended to;
        `form` is "combined" or "json". None: nothing to log and nothing to count."""
        formatter = format_json if form == "json" else format_record
        if target == "off":
            return None if count is None else cls(None, count=count)
        if target == "-":
            return cls(sys.stdout, form=formatter, count=count)
        try:
            return cls(_append(target), owned=True, path=target, form=formatter, count=count)
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
        if old is not None:  # (a log with a path always has its stream)
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
        batch = []
        while pending:
            try:
                batch.append(pending.popleft())
            except IndexError:  # another thread emptied it first
                break
        if not batch:
            return
        if self._count is not None:
            self._count(batch)
        if self._stream is None:
            return
        text = "".join(map(self._format, batch))
        try:
            with self._write_lock:
                self._stream.write(text)
                self._stream.flush()
        except (OSError, ValueError) as exc:  # closed stdout must not kill the server
            logging.getLogger("lanthorn").warning("access log write failed: %s", exc)

    def close(self) -> None:
        self.flush()
        if self._owned and self._stream is not None:
            self._stream.close()
