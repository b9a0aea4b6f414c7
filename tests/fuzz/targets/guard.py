"""What the driver targets share: the drivers' guard logs every exception it swallows
(a bug, which would cost a client its connection), so a target collects those records
(`Guard.check` raises the first) and checks that no file was left open."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Guard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def check(self) -> None:
        """Raise what the guard caught since the last check, if anything."""
        if self.records:
            record = self.records[0]
            self.records.clear()
            raise AssertionError(f"the driver swallowed an exception: {record.getMessage()}") from (
                record.exc_info[1] if record.exc_info else None
            )

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """While inside, what the server logs is collected (and raised), not printed;
        after, every file opened inside is closed again."""
        before = _open_fds()
        log = logging.getLogger("lanthorn")
        propagate, log.propagate = log.propagate, False
        log.addHandler(self)
        try:
            yield
        finally:
            log.removeHandler(self)
            log.propagate = propagate
            self.records.clear()
        assert _open_fds() == before, "files left open after the connection ended"


GUARD = Guard()
