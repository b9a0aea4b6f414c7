"""One connection's access records: the single path by which every driver (HTTP/1.1,
the stream driver for HTTP/2 and HTTP/3, WebSockets) fills them, so a record carries the
same fields whatever protocol made it.

Duration runs from when the driver takes a request up — its head received and read, or,
for a request pipelined or multiplexed behind others on the same connection, when their
turn ends and its own begins (nginx starts $request_time the same way for pipelined
requests) — to when the response's last byte was handed to the kernel. A response is
`answered` when its last byte is in a batch the driver gives its engine; its record is
due until the engine reports that batch written (`written`, from the driver's
`drained`). A connection that closes after its last batch gets no such report: its due
records are written when it is gone (`abort`), after the kernel took the last byte and
the client closed (or the lingering close ran out). QUIC's datagrams leave in the same
engine turn as the answer, so an `immediate` ledger writes records as they are
answered: for HTTP/3 the end is the last byte handed to the QUIC connection.

`answered` only appends a tuple: the record is built at `written`, formatted (and
counted for the metrics) in batches by the access log, off the hot path.
"""

from __future__ import annotations

from lanthorn.clock import monotonic
from lanthorn.core.request import Request
from lanthorn.driver.realip import RealClient
from lanthorn.logs import AccessLog

# request (None: it could not be parsed), status, body bytes sent, wall time it was
# dated, monotonic time the driver took it up.
Due = tuple[Request | None, int, int, float, float]


class Ledger:
    __slots__ = ("_clients", "_due", "_immediate", "_log", "peer", "tls", "version")

    def __init__(
        self, log: AccessLog | None, peer: str, tls: str | None, version: str = "",
        *, immediate: bool = False, clients: RealClient | None = None,
    ) -> None:  # fmt: skip
        self._log = log
        self._clients = clients  # who a trusted proxy says the client is
        self._due: list[Due] = []
        self._immediate = immediate
        self.peer = peer
        self.tls = tls  # "TLSv1.3", "TLSv1.2"; None over cleartext
        # The protocol version when a record has no parsed request to say it ("" on
        # HTTP/1, where garbage may not even name one).
        self.version = version

    def answered(
        self, request: Request | None, status: int, sent: int, stamp: float, started: float
    ) -> None:
        """A response's last byte is in the batch given to the engine."""
        if self._log is not None:
            self._due.append((request, status, sent, stamp, started))
            if self._immediate:
                self.written(monotonic())

    def written(self, now: float) -> None:
        """The engine has handed every batch so far to the kernel."""
        due = self._due
        if due:
            for request, status, sent, stamp, started in due:
                self.record(request, status, sent, stamp, now - started)
            due.clear()

    def record(
        self, request: Request | None, status: int, sent: int, stamp: float, took: float,
        *, lived: float | None = None,
    ) -> None:  # fmt: skip
        """One record now; `lived`: how long a socket that outlived its request (a
        WebSocket) was open."""
        log = self._log
        if log is None:
            return
        if request is None:
            log.record(
                (self.peer, b"", b"", self.version, status, sent, b"", b"", stamp, None,
                 self.tls, took)
            )  # fmt: skip
            return
        headers = request.headers
        clients = self._clients
        log.record(
            (
                self.peer if clients is None else clients.of(self.peer, request),
                request.method,
                request.target,
                request.version,
                status,
                sent,
                headers.get(b"referer", b""),
                headers.get(b"user-agent", b""),
                stamp,
                lived,
                self.tls,
                took,
            )
        )
