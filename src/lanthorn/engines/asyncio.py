"""asyncio engine (uvloop when installed): the default and the fast one.

Each connection is a Protocol whose data_received feeds the driver and writes what it
answers. While a batch is in flight (the transport's buffer is not empty, or a file is
being sent) reading is paused, so a client that does not read cannot make us buffer.
File bodies go out with sendfile(2) on a duplicate of the socket's descriptor once the
transport's own buffer is empty; nothing else writes to the socket meanwhile.
Deadlines: one loop timer, armed for the earliest entry of the kernel's timer heap, wakes
each connection when its driver asked to be woken; housekeeping runs apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
from collections.abc import Callable
from typing import Any, cast

from lanthorn.clock import monotonic
from lanthorn.driver import (
    CLOSE,
    Action,
    Connection,
    FileBody,
    Service,
    connect,
    discard,
    peer_host,
)
from lanthorn.engines import datagrams, kernel
from lanthorn.engines.listeners import tune
from lanthorn.timers import Timers


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (a dependency on Linux), else the stdlib's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


ACCEPT_BATCH = 64
# A multiplexed (HTTP/2) connection keeps reading while a batch is written, so resets
# and new requests are seen between batches; this much unread input pauses it.
STASH_BYTES = 256 * 1024
# Batches one connection may write back to back (when the socket takes them at once)
# before the loop gets a turn (and a multiplexed connection reads what arrived): a fast
# download must not stall every other client. 16 x 256 KiB is ~4 ms at 1 GB/s; 4 cost
# a quarter of h2load's 10 MiB throughput, every batch a third (measured).
SYNC_BATCHES = 16


class _Protocol(asyncio.Protocol):
    def __init__(self, server: _Server, service: Service) -> None:
        self._server = server
        self._service = service  # as the listener that accepted it speaks
        self._transport: asyncio.Transport | None = None
        self._conn: Connection | None = None
        self._write_paused = False
        self._busy = False  # a batch is in flight: do not feed the driver
        self._stash: list[bytes] = []  # input that arrived meanwhile, for `drained`
        self._stashed = 0
        self._stash_eof = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._file_task: asyncio.Task[None] | None = None
        self._in_flight: list[Action] = []  # what the file task still owns
        # After CLOSE, abort if the buffer has not flushed by then (0: not closing).
        self.close_by = 0.0
        self._linger: kernel.Linger | None = None  # our side is shut; input is discarded
        self._peer_closed = False  # the client's EOF has arrived
        self._unread = False  # reading paused because the driver wants no input
        self._lost = False  # connection_lost has come: never woken again

    # asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass it
        self._transport = transport
        transport.set_write_buffer_limits(high=0, low=0)  # exact "buffer empty" signal
        self._conn = connect(
            self._service, peer_host(transport.get_extra_info("peername")), monotonic()
        )
        self._server.connections.add(self)
        if not self._conn.reading:
            self._listen()
        self._schedule()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._server.forget(self)
        if self._conn is not None:
            self._conn.abort()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError())
        if self._file_task is not None:
            self._file_task.cancel()
        # A task cancelled before its first step never runs its own cleanup.
        discard(self._in_flight)
        self._in_flight = []

    def data_received(self, data: bytes) -> None:
        if self._linger is not None:
            if not self._linger.discard(data):
                self.abort()
            return
        if self._busy or self._unread:
            if not data:
                self._stash_eof = True
                return
            self._stash.append(data)
            self._stashed += len(data)
            if (self._stashed > STASH_BYTES or self._unread) and self._transport is not None:
                # (uvloop starts reading after connection_made even if it paused)
                self._transport.pause_reading()
            return
        conn = self._conn
        assert conn is not None
        self._execute(conn.feed(data, monotonic()))
        if not (self._busy or conn.reading):
            self._listen()

    def eof_received(self) -> bool | None:
        if self._linger is not None:
            return None  # the client has closed too: let the transport close
        self._peer_closed = True
        self.data_received(b"")
        return True  # keep the transport: we close it ourselves after the last write

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._conn is not None:
            self._conn.progressed(monotonic())
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        elif self._busy and self._file_task is None:
            self._resume()

    # carrying out the driver's actions ---------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        """Carry out the driver's answer; then be woken when it asks (its deadline may
        have moved), or when a closing connection must be cut."""
        self._carry_out(actions)
        self._schedule()

    def _schedule(self) -> None:
        conn = self._conn
        if conn is not None and not self._lost:
            self._server.wake(self, self.close_by or conn.deadline)

    def _carry_out(self, actions: list[Action]) -> None:
        transport = self._transport
        conn = self._conn
        assert transport is not None and conn is not None
        batches = 0
        while actions:
            for index, action in enumerate(actions):
                if type(action) is bytes:
                    transport.write(action)
                elif action is CLOSE:
                    discard(actions[index + 1 :])
                    self._close()
                    return
                else:
                    self._begin_busy()
                    self._in_flight = actions[index:]
                    self._file_task = asyncio.ensure_future(self._send_files(self._in_flight))
                    return
            if self._write_paused:
                self._begin_busy()
                return
            batches += 1
            if batches >= SYNC_BATCHES:
                # Give the loop a turn: other connections wait, and a multiplexed one
                # (which keeps reading while busy) gets what its client sent meanwhile.
                self._begin_busy()
                asyncio.get_running_loop().call_soon(self._resume)
                return
            actions = conn.drained(monotonic())

    def _begin_busy(self) -> None:
        if not self._busy:
            self._busy = True
            assert self._transport is not None and self._conn is not None
            if not self._conn.multiplexed:
                self._transport.pause_reading()

    def _resume(self) -> None:
        """The batch is written: let the driver continue with what arrived meanwhile,
        then read again."""
        transport, conn = self._transport, self._conn
        assert transport is not None and conn is not None
        if transport.is_closing() or self._linger is not None:
            return
        self._busy = False
        data = b"".join(self._stash)
        self._stash.clear()
        self._stashed = 0
        if conn.multiplexed:
            transport.resume_reading()  # if a full stash paused it: the stash is empty now
        self._execute(conn.drained(monotonic(), data))
        if self._busy or transport.is_closing():
            return
        self._listen()
        if self._stash_eof:
            self._stash_eof = False
            self.data_received(b"")

    def _listen(self) -> None:
        """No batch in flight: read, unless the driver wants no input (the sweep asks
        it again)."""
        transport, conn = self._transport, self._conn
        assert transport is not None and conn is not None
        self._unread = not conn.reading
        if self._unread:
            transport.pause_reading()
            self._server.unread.add(self)  # housekeeping asks it again
        else:
            transport.resume_reading()
            self._server.unread.discard(self)

    def _close(self) -> None:
        """Close after the buffer drains, lingering (see driver.LINGER_S) on input."""
        transport = self._transport
        assert transport is not None
        self._busy = True  # never feed again
        if self._conn is not None and not self._conn.lingers:
            transport.abort()
            return
        if self._peer_closed or not transport.can_write_eof():  # nothing left to drain
            transport.close()
            self.close_by = monotonic() + self._server.service.limits.send_timeout_s
            return
        # (While the buffer still flushes, the send timeout comes first.)
        flushing = self._server.service.limits.send_timeout_s if self._write_paused else 0.0
        self._linger = kernel.Linger(monotonic(), flushing)
        transport.write_eof()  # flushes the buffer, then shuts our sending side
        transport.resume_reading()
        self.close_by = self._linger.until

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def check(self, now: float) -> None:
        """Woken: enforce the driver's deadline (and the close deadline after CLOSE)."""
        conn, transport = self._conn, self._transport
        if conn is None or transport is None:
            return
        if transport.is_closing() or self._linger is not None:
            if now >= self.close_by:
                self.abort()
            else:
                self._schedule()
            return
        verdict = kernel.overdue(conn, now, self._busy)
        if verdict is kernel.Verdict.ABORT:
            self.abort()
        elif verdict is kernel.Verdict.EXPIRE:
            self._execute(conn.expired(now))
        else:
            self._schedule()  # not due after all: the deadline moved on
            self.recheck()

    def recheck(self) -> None:
        """Held unread: read again once the driver takes input, what was stashed first."""
        if self._unread and not self._busy and self._conn is not None and self._conn.reading:
            self._resume()

    def shutdown(self) -> None:
        """Graceful stop: the driver closes idle connections at once."""
        if self._conn is not None and not self._busy:
            self._execute(self._conn.shutdown())

    async def _wait_drained(self) -> None:
        if self._write_paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    def _progressed(self) -> None:
        assert self._conn is not None
        self._conn.progressed(monotonic())

    async def _send_files(self, actions: list[Action]) -> None:
        transport = self._transport
        assert transport is not None
        closing = False
        try:
            for index, action in enumerate(actions):
                if type(action) is bytes:
                    transport.write(action)
                elif action is CLOSE:
                    discard(actions[index + 1 :])
                    closing = True
                    break
                else:
                    assert isinstance(action, FileBody)
                    try:
                        await self._wait_drained()
                        sock = transport.get_extra_info("socket")
                        await _sendfile(sock.fileno(), action, self._progressed)
                    finally:
                        action.close()
            else:
                await self._wait_drained()
        except (OSError, asyncio.CancelledError):
            discard(actions)
            self.abort()
            return
        finally:
            self._in_flight = []
            self._file_task = None
        if closing:
            self._close()
            self._schedule()  # cut at close_by if the buffer never drains
        else:
            self._resume()


async def _sendfile(sock_fd: int, body: FileBody, progressed: Callable[[], None]) -> None:
    """sendfile(2) the slice through a duplicate descriptor of the (non-blocking) socket.

    The writer callback stays registered for the whole transfer, so each readiness costs
    one Python call and as many sendfile calls as the socket takes. A file that shrinks
    while being sent raises (kernel.send_file).
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    fd = os.dup(sock_fd)
    offset = 0
    end = body.count

    def on_writable() -> None:
        nonlocal offset
        try:
            while offset < end:
                offset += kernel.send_file(fd, body, offset, end - offset)
        except BlockingIOError:
            progressed()
            return
        except OSError as exc:
            loop.remove_writer(fd)
            if not done.done():
                done.set_exception(exc)
            return
        loop.remove_writer(fd)
        if not done.done():
            done.set_result(None)

    try:
        loop.add_writer(fd, on_writable)
        on_writable()
        await done
    finally:
        loop.remove_writer(fd)
        os.close(fd)


class _Server:
    def __init__(self, service: Service, listeners: list[socket.socket]) -> None:
        self.service = service
        self.listeners = listeners
        self.connections: set[_Protocol] = set()
        # Listening sockets by descriptor, watched for readability while accepting; the
        # connections taken from them and not yet handed to the loop (`_adopt`).
        self._streams = {s.fileno(): s for s in listeners if s.type == socket.SOCK_STREAM}
        self._accepting = False
        self._adopting: set[asyncio.Future[Any]] = set()
        self._backoff = kernel.AcceptBackoff()
        self.timers: Timers[_Protocol | datagrams.Endpoint] = Timers()
        self.unread: set[_Protocol] = set()  # held unread: housekeeping asks them again
        self._alarm: asyncio.TimerHandle | None = None
        self._alarm_at = math.inf
        self._stopping = asyncio.Event()

    def wake(self, protocol: _Protocol | datagrams.Endpoint, at: float) -> None:
        """Wake `protocol` at `at` (or sooner): the loop's one timer is re-armed when
        this is the earliest."""
        self.timers.wake(protocol, at)
        if at < self._alarm_at:
            self._arm(at)

    def _arm(self, at: float) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
        self._alarm_at = at
        delay = max(0.0, at - monotonic())
        self._alarm = asyncio.get_running_loop().call_later(delay, self._ring)

    def _ring(self) -> None:
        # While ringing, wakes only go into the heap: the alarm is armed once, after.
        self._alarm, self._alarm_at = None, -math.inf
        now = monotonic()
        for protocol in self.timers.due(now):
            protocol.check(now)
        self._alarm_at = math.inf
        at = self.timers.next_at()
        if at is not None:
            self._arm(at)

    def forget(self, protocol: _Protocol) -> None:
        self.connections.discard(protocol)
        self.unread.discard(protocol)
        self.timers.forget(protocol)
        if not self._accepting and not self._stopping.is_set() and self._backoff.until is None:
            self._set_accepting(len(self.connections) < self.service.limits.max_connections)

    def _set_accepting(self, accepting: bool) -> None:
        """Watch the listeners (or stop: at the cap, the kernel's backlog holds the rest;
        backing off; stopping)."""
        if accepting == self._accepting:
            return
        self._accepting = accepting
        loop = asyncio.get_running_loop()
        for fd, listener in self._streams.items():
            if accepting:
                loop.add_reader(fd, self._acceptable, listener)
            else:
                loop.remove_reader(fd)

    def _acceptable(self, listener: socket.socket) -> None:
        """A listener is readable: take what is queued, up to a batch (nginx's
        multi_accept) and the cap. Connections are taken only here, in one callback, so
        stopping (removing the readers) can never lose one between accept and adoption."""
        limit = self.service.limits.max_connections
        service = self.service.door(listener.fileno())
        for _ in range(ACCEPT_BATCH):
            if len(self.connections) + len(self._adopting) >= limit:
                self._set_accepting(False)  # resumed by `forget`
                return
            try:
                conn = listener.accept()[0]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if self._backoff.failed(exc, monotonic()):
                    self._set_accepting(False)
                    asyncio.get_running_loop().call_later(
                        kernel.AcceptBackoff.BACKOFF_S, self._backed_off
                    )
                    return
                continue
            self._adopt(conn, service)

    def _backed_off(self) -> None:
        self._backoff.until = None
        if not self._stopping.is_set():
            self._set_accepting(len(self.connections) < self.service.limits.max_connections)

    def _adopt(self, conn: socket.socket, service: Service) -> None:
        """Hand an accepted socket to the loop as a connection of `service`."""
        conn.setblocking(False)
        tune(conn)
        loop = asyncio.get_running_loop()
        task = loop.create_task(
            loop.connect_accepted_socket(lambda: _Protocol(self, service), conn)
        )
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    def _sweep(self, listener: socket.socket) -> None:
        """On a graceful stop: take what the kernel already queued on `listener`, to be
        answered (with Connection: close) rather than reset when it closes."""
        service = self.service.door(listener.fileno())
        while True:
            try:
                conn = listener.accept()[0]
            except OSError:
                return
            self._adopt(conn, service)

    async def housekeeping(self) -> None:
        while True:
            await asyncio.sleep(kernel.HOUSEKEEPING_S)
            self.service.tick(monotonic())
            for protocol in list(self.unread):
                protocol.recheck()

    async def serve(self, on_ready: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        streams = [s for s in self.listeners if s.type == socket.SOCK_STREAM]
        udp = [s for s in self.listeners if s.type == socket.SOCK_DGRAM]
        self._set_accepting(True)
        path = datagrams.open_path(udp, self.service, self.wake)
        readers = path.readers if path is not None else []
        for sock, pull in readers:
            loop.add_reader(sock, pull)
        sweeper = asyncio.ensure_future(self.housekeeping())
        on_ready()
        await self._stopping.wait()
        # Graceful stop: no new connections; idle ones close now, busy ones after their
        # response; whatever is left when the grace period ends is cut.
        self._set_accepting(False)
        for listener in streams:
            self._sweep(listener)
            listener.close()
        if self._adopting:
            await asyncio.wait(list(self._adopting))
        self.service.drain(monotonic(), len(self.connections))
        for protocol in list(self.connections):
            protocol.shutdown()
        if path is not None:
            path.shutdown()
        while (
            self.connections or (path is not None and path.active)
        ) and monotonic() < self.service.stop_at:
            await asyncio.sleep(0.05)
        for protocol in list(self.connections):
            protocol.abort()
        for sock, _ in readers:
            loop.remove_reader(sock)
        if path is not None:
            path.close()
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        self.service.close()


def run(listeners: list[socket.socket], service: Service, on_ready: Callable[[], None]) -> None:
    """Serve until SIGTERM/SIGINT, then drain."""
    loop = new_event_loop()
    try:
        loop.run_until_complete(_Server(service, listeners).serve(on_ready))
    finally:
        loop.close()
