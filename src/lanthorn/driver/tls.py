"""TLS as a layer of the connection driver, sans-IO (ssl.MemoryBIO + SSLObject).

A `TlsSession` wraps the HTTP connection driver and speaks the same contract to every
engine: ciphertext in through `feed`, ciphertext (and CLOSE) out. So every concurrency
model serves HTTPS with no TLS code of its own, and ALPN (RFC 7301) picks HTTP/2 or
HTTP/1.1 before the first request byte: the inner driver then sees the HTTP/2 preface
or an HTTP/1 request, as over cleartext.

Bodies cannot go out by sendfile(2) through TLS: a `FileBody` the inner driver asks for
is read with pread and encrypted in pieces of at most BATCH_BYTES per batch, so a large
download holds no more memory than over cleartext.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import ssl
from collections import deque
from collections.abc import Callable

from lanthorn.core.response import FileBody
from lanthorn.driver.context import Service
from lanthorn.driver.contract import BATCH_BYTES, CLOSE, Action, Connection, discard

log_error = logging.getLogger("lanthorn")
_READ_BYTES = 65536
_PLAIN_HTTP = re.compile(rb"[A-Z]{3,10} /")  # a request line where a ClientHello should be
_PLAIN_TEXT = b"This port speaks HTTPS only.\n"
_PLAIN_HTTP_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nServer: lanthorn\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_PLAIN_TEXT), _PLAIN_TEXT)
)
ALPN = ["h2", "http/1.1"]  # RFC 9113 §3.2: "h2" is HTTP/2 over TLS


class TlsSession:
    __slots__ = (
        "_eof",
        "_handshake_by",
        "_in",
        "_inner",
        "_out",
        "_pending",
        "_pos",
        "_ready",
        "_service",
        "_tls",
        "_unread",
    )

    lingers = True  # after CLOSE, close_notify and what was sent must reach the client

    def __init__(
        self, inner: Callable[[TlsSession], Connection], service: Service, handshake_by: float
    ) -> None:
        """`inner` makes the driver inside from the session (which tells its `version`
        once the handshake is done)."""
        assert service.tls is not None
        self._service = service
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = service.tls.wrap_bio(self._in, self._out, server_side=True)
        self._ready = False  # handshake complete
        # What the inner driver asked for and we have not encrypted yet; `_pos` is how
        # far into a FileBody at its head we are.
        self._pending: deque[Action] = deque()
        self._pos = 0
        # Plaintext that arrived while the inner driver's batch was still being
        # encrypted, for its next `drained`; and whether close_notify came with it.
        self._unread = b""
        self._eof = False
        self._handshake_by = handshake_by
        self._inner = inner(self)

    @property
    def peer(self) -> str:
        return self._inner.peer

    @property
    def deadline(self) -> float:
        """The handshake's clock, then the inner driver's."""
        return self._inner.deadline if self._ready else self._handshake_by

    @property
    def idle(self) -> bool:
        """Before the handshake completes the session only waits on the client, so it is
        idle too: a thread engine may park it instead of holding a worker."""
        return not self._pending and (not self._ready or self._inner.idle)

    @property
    def multiplexed(self) -> bool:
        return self._inner.multiplexed

    @property
    def reading(self) -> bool:
        return self._inner.reading

    @property
    def version(self) -> str | None:
        """The TLS version agreed ("TLSv1.3"); None before the handshake is done."""
        return self._tls.version()

    @property
    def alpn(self) -> str | None:
        return self._tls.selected_alpn_protocol()

    def feed(self, data: bytes, now: float) -> list[Action]:
        if not data:
            return self._seal(self._inner.feed(b"", now))
        self._in.write(data)
        if not self._ready:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                return self._flush()
            except (ssl.SSLError, OSError) as exc:
                log_error.debug("TLS handshake with %s failed: %s", self.peer, exc)
                self._service.handshake(False)
                if _PLAIN_HTTP.match(data):  # nginx's "plain HTTP request sent to HTTPS port"
                    return [_PLAIN_HTTP_ANSWER, CLOSE]
                return [*self._flush(), CLOSE]  # the alert, if OpenSSL wrote one
            self._ready = True
            self._service.handshake(True)
        plain, closed = self._read()
        self._eof |= closed
        actions = self._inner.feed(plain, now) if plain else []
        return self._seal(self._then_eof(actions, now))

    def drained(self, now: float, data: bytes = b"") -> list[Action]:
        if data:
            self._in.write(data)
            plain, closed = self._read()
            self._unread += plain
            self._eof |= closed
        if self._pending:
            return self._seal([])  # more of the inner driver's batch to encrypt
        plain, self._unread = self._unread, b""
        return self._seal(self._then_eof(self._inner.drained(now, plain), now))

    def abort(self) -> None:
        discard(list(self._pending))
        self._pending.clear()
        self._inner.abort()

    def _then_eof(self, actions: list[Action], now: float) -> list[Action]:
        """After close_notify the client sends nothing more; the inner driver learns it
        once it has nothing left to answer (pipelined requests are still answered)."""
        if actions or not self._eof:
            return actions
        return self._inner.feed(b"", now)

    def progressed(self, now: float) -> None:
        self._inner.progressed(now)

    def expired(self, now: float) -> list[Action]:
        if now < self.deadline:
            return []
        if not self._ready:
            return [CLOSE]
        return self._seal(self._inner.expired(now))

    def shutdown(self) -> list[Action]:
        if not self._ready:
            return [CLOSE]
        return self._seal(self._inner.shutdown())

    # ---------------------------------------------------------------------------------------

    def _read(self) -> tuple[bytes, bool]:
        """Decrypt what has arrived: (plaintext, whether the client sent close_notify)."""
        parts: list[bytes] = []
        try:
            while True:
                chunk = self._tls.read(_READ_BYTES)
                if not chunk:
                    return b"".join(parts), True
                parts.append(chunk)
        except ssl.SSLWantReadError:
            return b"".join(parts), False
        except ssl.SSLZeroReturnError:
            return b"".join(parts), True
        except ssl.SSLError as exc:  # a forged or broken record: nothing more can be read
            log_error.debug("TLS from %s broken: %s", self.peer, exc)
            return b"".join(parts), True

    def _seal(self, actions: list[Action]) -> list[Action]:
        """Encrypt the inner driver's actions, at most about BATCH_BYTES of them per call;
        the rest wait for `drained`. CLOSE is preceded by close_notify."""
        pending = self._pending
        pending.extend(actions)
        budget = BATCH_BYTES
        while pending and budget > 0:
            action = pending[0]
            if type(action) is bytes:
                self._write(action)
                budget -= len(action)
                pending.popleft()
            elif isinstance(action, FileBody):
                budget -= self._write_file(action, budget)
            else:  # CLOSE
                discard(list(pending)[1:])
                pending.clear()
                with contextlib.suppress(ssl.SSLError, OSError):
                    # close_notify (RFC 8446 §6.1); the client's is not waited for.
                    self._tls.unwrap()
                return [*self._flush(), CLOSE]
        return self._flush()

    def _write(self, data: bytes) -> None:
        try:
            self._tls.write(data)
        except (ssl.SSLError, OSError) as exc:
            log_error.debug("TLS to %s failed: %s", self.peer, exc)

    def _write_file(self, body: FileBody, budget: int) -> int:
        """Encrypt up to `budget` bytes of a file body; pops it when done. A file that
        shrank underneath us ends the connection (the framing promised more)."""
        want = min(budget, body.count - self._pos)
        data = os.pread(body.fileno(), want, body.offset + self._pos)
        if len(data) < want:
            body.close()
            self._pending.popleft()
            self._pos = 0
            self._pending.appendleft(CLOSE)
            return 0
        self._write(data)
        self._pos += want
        if self._pos >= body.count:
            body.close()
            self._pending.popleft()
            self._pos = 0
        return want

    def _flush(self) -> list[Action]:
        out = self._out.read()
        return [out] if out else []
