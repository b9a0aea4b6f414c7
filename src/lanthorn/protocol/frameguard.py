"""The HTTP/2 client's byte stream, watched frame by frame before h2 parses it.

Only the 9-octet frame headers are read (RFC 9113 §4.1): type, flags and length are
enough to bound two kinds of abuse that h2 alone lets through.

- Control frames cost the server work and carry no request: PING and SETTINGS (each
  answered with an ACK), WINDOW_UPDATE, PRIORITY, RST_STREAM, GOAWAY, DATA and
  CONTINUATION frames with no payload, and frame types h2 ignores. Those the client's
  requests call for are free: each HEADERS frame may bring PER_STREAM of them (a
  PRIORITY, WINDOW_UPDATEs, a RST_STREAM), and each DATA frame the server sends
  PER_DATA_FRAME (the client acknowledges it with WINDOW_UPDATEs, or, once it has
  reset the stream, may answer it with a RST_STREAM — h2's own client does), up to
  MAX_OWED in hand. The rest are paid from a token bucket: BURST to start with,
  refilled at RATE_PER_S. The burst is small on purpose: a flood is recognised within
  its first read, before h2 spends anything on it, so an attacker that reconnects costs
  the server little more than the connection. A client that overdraws it floods
  (CVE-2019-9512 ping flood, CVE-2019-9515 settings flood, CVE-2019-9518 empty
  frames).
- A field block (HEADERS, then CONTINUATION frames up to END_HEADERS) is buffered whole
  by h2 before it is decoded; its octets are counted as they arrive, and a block larger
  than the SETTINGS_MAX_HEADER_LIST_SIZE the server advertised is refused at once
  (CVE-2024-27316, the CONTINUATION flood). A compressed block longer than the decoded
  list may be is abuse in any case; since the HPACK state cannot survive skipping a
  block (§4.3), refusing it ends the connection.

`scan` reports the first abuse; the adapter then ends the connection with GOAWAY
ENHANCE_YOUR_CALM without letting h2 see the bytes.
"""

from __future__ import annotations

_HEADER = 9
_DATA, _HEADERS, _CONTINUATION = 0x0, 0x1, 0x9
# Frame types whose every occurrence is a control frame (§6): PRIORITY, RST_STREAM,
# SETTINGS, PING, GOAWAY, WINDOW_UPDATE. PUSH_PROMISE (5) from a client is a
# connection error h2 reports itself. Types above CONTINUATION are extensions.
_CONTROL = frozenset((0x2, 0x3, 0x4, 0x6, 0x7, 0x8))
_END_STREAM = 0x1
_END_HEADERS = 0x4

BURST = 64  # control frames a connection may send at once, unasked for
RATE_PER_S = 100.0  # and per second after that
PER_STREAM = 4  # control frames a HEADERS frame may bring
PER_DATA_FRAME = 2  # control frames a DATA frame sent may bring (stream + connection)
MAX_OWED = 4096  # free control frames the client may have in hand


class FrameGuard:
    """Frame boundaries of one connection's input, tracked across reads."""

    __slots__ = (
        "_block",
        "_block_limit",
        "_head",
        "_owed",
        "_partial",
        "_skip",
        "_stamp",
        "tokens",
    )

    def __init__(self, block_limit: int, now: float, preface_bytes: int) -> None:
        self._block_limit = block_limit
        self._skip = preface_bytes  # octets still to pass: the preface, then payloads
        self._head = b""  # a frame header split across reads
        self._block = -1  # octets of the field block being received; -1 outside one
        self._partial = 0  # octets of a frame that has begun to arrive and not ended
        self.tokens = float(BURST)
        self._stamp = now
        self._owed = 0  # control frames the server's own frames have called for

    @property
    def buffered(self) -> int:
        """What h2 holds of this input until it is whole: a field block still in
        CONTINUATION frames and a frame still arriving (an upper bound)."""
        return max(self._block, 0) + self._partial + len(self._head)

    def credit(self, frames: int) -> None:
        """The server sent frames the client may answer: that many control frames are
        free."""
        self._owed = min(MAX_OWED, self._owed + frames)

    def scan(self, data: bytes, now: float) -> str | None:
        """Walk the frame headers in `data`; why the client must be cut off, if it must."""
        pos = min(self._skip, len(data))
        self._skip -= pos
        self._partial = self._partial + pos if self._skip else 0
        end = len(data)
        while pos < end:
            if self._head or end - pos < _HEADER:
                need = _HEADER - len(self._head)
                self._head += data[pos : pos + need]
                pos += need
                if len(self._head) < _HEADER:
                    return None
                header, self._head = self._head, b""
            else:
                header = data[pos : pos + _HEADER]
                pos += _HEADER
            length = int.from_bytes(header[:3], "big")
            abuse = self._frame(header[3], header[4], length, now)
            if abuse is not None:
                return abuse
            take = min(length, end - pos)
            pos += take
            self._skip = length - take
            self._partial = _HEADER + take if self._skip else 0
        return None

    def _frame(self, kind: int, flags: int, length: int, now: float) -> str | None:
        if kind == _HEADERS or (kind == _CONTINUATION and self._block >= 0):
            block = length + max(self._block, 0) if kind == _CONTINUATION else length
            if block > self._block_limit:
                return "header block larger than SETTINGS_MAX_HEADER_LIST_SIZE"
            self._block = -1 if flags & _END_HEADERS else block
            if kind == _HEADERS:
                self.credit(PER_STREAM)
                return None
            if length:
                return None
        elif kind == _DATA:
            if length or flags & _END_STREAM:
                return None
        elif kind not in _CONTROL and kind <= _CONTINUATION:
            return None  # PUSH_PROMISE, or CONTINUATION out of place: h2 rejects it
        if self._owed:
            self._owed -= 1
            return None
        tokens = min(float(BURST), self.tokens + (now - self._stamp) * RATE_PER_S) - 1.0
        self._stamp = now
        self.tokens = tokens
        if tokens < 0:
            return "control frame flood"
        return None
