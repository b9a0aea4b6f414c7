"""What every connection driver of one worker shares, whatever the protocol: the site,
limits, clocks, access log and drain state; the actions drivers hand to engines; and the
batch bounds that keep one connection's memory and open files small.
"""

from __future__ import annotations

import logging
import math

from lanthorn.clock import DateCache
from lanthorn.config import Config
from lanthorn.core.request import Request
from lanthorn.core.respond import Site
from lanthorn.core.response import FileBody, ResponsePlan
from lanthorn.logs import AccessLog


class _Close:
    __slots__ = ()

    def __repr__(self) -> str:
        return "CLOSE"


CLOSE = _Close()
Action = bytes | FileBody | _Close

log_error = logging.getLogger("lanthorn")
# One batch (what an engine writes before it reads again) holds about this many bytes of
# bodies: the bound on what a client that does not read can make a connection hold.
BATCH_BYTES = 256 * 1024
# After the server decides to close, it shuts its sending side and discards what the
# client still sends for at most this long / this much (RFC 9112 §9.6, nginx's
# lingering_close): closing with unread input would make the kernel reset the connection
# and destroy the response the client has not read yet.
LINGER_S = 2.0
LINGER_BYTES = 1024 * 1024
NO_BODY_STATUSES = frozenset((204, 304))  # RFC 9110 §6.4.1


def discard(actions: list[Action]) -> None:
    """Release what an aborted connection will never send."""
    for action in actions:
        if isinstance(action, FileBody):
            action.close()


class Service:
    """What every connection of one worker shares: the site, limits, clocks and logs."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.limits = config.limits
        self.h2c = config.server.h2c
        self.site = Site(config.site)
        self.access_log = AccessLog.open(config.server.access_log)
        self.dates = DateCache()
        self.draining = False  # set on graceful shutdown: answer, then close
        self.stop_at = math.inf  # monotonic time when draining connections are cut

    def drain(self, now: float) -> None:
        """Graceful shutdown begins: finish what is in flight within the grace period."""
        self.draining = True
        self.stop_at = now + self.limits.grace_s

    def decide(self, request: Request, now: float) -> ResponsePlan:
        try:
            return self.site.respond(request, now)
        except Exception:  # a bug must cost one request, never the server
            log_error.exception("error answering %r", request)
            return self.site.errors[500]

    def record(
        self, peer: str, request: Request | None, status: int, sent: int, stamp: float
    ) -> None:
        """One access-log record (formatted later, off the hot path)."""
        log = self.access_log
        if log is None:
            return
        if request is None:  # the request could not be parsed
            log.record((peer, b"", b"", "", status, sent, b"", b"", stamp))
            return
        headers = request.headers
        log.record(
            (
                peer,
                request.method,
                request.target,
                request.version,
                status,
                sent,
                headers.get(b"referer", b""),
                headers.get(b"user-agent", b""),
                stamp,
            )
        )

    def tick(self, now: float) -> None:
        """Periodic housekeeping (about once a second): flush the access log."""
        if self.access_log is not None:
            self.access_log.tick(now)

    def close(self) -> None:
        if self.access_log is not None:
            self.access_log.close()
