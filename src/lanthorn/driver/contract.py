"""What connection drivers hand to engines (bytes, file slices, CLOSE), the contract an
engine drives them by, and the bounds that keep one connection's memory small."""

from __future__ import annotations

from typing import Protocol

from lanthorn.core.response import FileBody


class _Close:
    __slots__ = ()

    def __repr__(self) -> str:
        return "CLOSE"


CLOSE = _Close()
Action = bytes | FileBody | _Close


def peer_host(address: object) -> str:
    """The client's address as drivers name it (logs, per-client limits): the host of
    a socket address, "-" when there is none."""
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "-"


# One batch (what an engine writes before it reads again) holds about this many bytes of
# bodies: the bound on what a client that does not read can make a connection hold.
BATCH_BYTES = 256 * 1024
# After the server decides to close, it shuts its sending side and discards what the
# client still sends for at most this long / this much (RFC 9112 §9.6, nginx's
# lingering_close): closing with unread input would make the kernel reset the connection
# and destroy the response the client has not read yet.
LINGER_S = 2.0
# On a graceful stop, an idle HTTP/1 connection is closed once it has been idle this
# long: a client that sent a request as it fell idle gets the answer, not a reset.
DRAIN_QUIET_S = 1.0
LINGER_BYTES = 1024 * 1024


class Connection(Protocol):
    """What engines drive, one per accepted socket: bytes in, actions out.

    An engine feeds it bytes and carries out what it answers, in order: `bytes` — write
    them; `FileBody` — send that file slice, then close it; `CLOSE` — close once all
    before it is written. After a batch is carried out completely it calls `drained`;
    when `now` passes `deadline`, `expired`. It never feeds while a batch is in flight.
    When `multiplexed`, the engine reads what has arrived (without waiting) after each
    batch and passes it to `drained`: many streams share the connection, and a large
    download must not keep the others (or a reset) unread.
    """

    @property
    def deadline(self) -> float: ...
    @property
    def peer(self) -> str: ...
    @property
    def idle(self) -> bool: ...
    @property
    def multiplexed(self) -> bool: ...
    @property
    def reading(self) -> bool:
        """False while the driver wants no input: the engine leaves the socket unread
        (the kernel's buffer fills and TCP's window holds the client back) and asks
        again after each batch it carries out and at each sweep; `expired` is still due
        at `deadline`. A client in the penalty box is held this way, and so is a big
        holder while the worker is over its memory budget."""
        ...

    @property
    def lingers(self) -> bool:
        """After CLOSE: shut our side and discard input for a while (LINGER_S), so the
        response already sent is not destroyed — or, False, close at once (nothing was
        answered; unread input makes the kernel reset the connection, which is cheap)."""
        ...

    def feed(self, data: bytes, now: float) -> list[Action]: ...
    def drained(self, now: float, data: bytes = b"") -> list[Action]: ...
    def progressed(self, now: float) -> None: ...
    def expired(self, now: float) -> list[Action]: ...
    def shutdown(self) -> list[Action]: ...
    def abort(self) -> None:
        """The socket is gone: release what the driver still holds (open files)."""


def discard(actions: list[Action]) -> None:
    """Release what an aborted connection will never send."""
    for action in actions:
        if isinstance(action, FileBody):
            action.close()
