"""Every input the fuzzers found, exactly (base64 as the fuzzer printed it), with what
was wrong and what became of it."""

from __future__ import annotations

import base64

import pytest

from lanthorn.config import Limits
from lanthorn.protocol.events import ProtocolFailed, RequestReceived
from lanthorn.protocol.h2wire import frame
from lanthorn.protocol.http2 import Http2
from tests.fuzz.targets import load
from tests.fuzz.targets.frames import PREFACE

FOUND = [
    # http1: the harness first asserted that splitting never changes the events. The
    # status of a failure may (400 vs 501 for a bad method, 414 vs 400 for a long target
    # with a NUL: which defect the parser sees first); and a head that is still coming is
    # bounded by raw bytes, so trickled (or whitespace-padded) heads may get 431 where the
    # same bytes in one piece are parsed. Judged acceptable; the invariant says so.
    ("http1", "ADEEClQxLm8xDQpIb3QubzENCkhvdB0gYTINCg0="),
    (
        "http1",
        "PTEBR0VUICAvIEhUVFAvMS4xDQpIb3N0aGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGho"
        "aGhoaGhoaGhoaGhoaGhkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRk"
        "ZGRkZGRkZGRkZGRkZGRkZGRkaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhM"
        "TExMTExFTExMTA==",
    ),
    (
        "http1",
        "ITEBR0VUICAvbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbUdHR0dHR0dHR0dHR0dHR0dHR0dHR0dtbQAAAAAAAABS"
        "bW1tbW1tbW1tbW1tbS1tbW1tbW1tbW1tbW1tbW1tbW1HR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dtbW1tbW1t"
        "bW1tbW1tbW1tbW1EREQNCkhzdDogdDogYQ0Kc3Q6c3Q6IGENCnN0Ojo6LjErCjG4AQAAuDouMQ0KMbgBAAC4AQAA",
    ),
    # http1: a trailer section of ~300 bytes, limit 120: 431 when it came in pieces, parsed
    # when in one read (trailers were not counted). Fixed: trailer fields are counted.
    (
        "http1",
        "sQIHA1BPU1QgLyBIVFRQLzEuMQ0KSG9zdDogaDENClRyYW5zZmVyLUVuY29kaW5nOiBjaHVua2VkDQoNCjUNCm"
        "hlbGxvDQowDQpYLVQ6SSB0UC9IVFRQLzEuMS8xDQpob3N0bDpzdDovIEhUVFAvMS4xDQpIb3N0OiBhDQpIbmdl"
        "OiBieXQNCklmLU5vbmUtTWF0Y2g6IGQiDQpJZi1pZmllZC1TaW5lOiBieXQNCklmLU5vbmUtTWF0Y2g6IGFiYy"
        "IsIFcvImQiDQpJZi1Nb2RpZmllZC1TaW5jZTr/////Zi1Ob25lLU1hdGNoOiAiYWJjIiwgVy8iZCINCklmLUVu"
        "Y29kaW5nOiBjaHVua2VkDQoNCjUNCmhlbGxvDQowDQpYLVQ6SSB0UC9IVFRQLzEuMS8xDQpob3N0bDpzdDovIE"
        "hUVFAvMS4xDQpIb3N0OiBhDQpIb3N0OiBoDQpvZFNpbmNlOmVzdDogaA0KUmFuZ2U6IGJ5dA0KSWYtTm9uZS1N"
        "YXRjaDogZCINCklmLWlkLVNpbmNlOmVzPTAtMCw1LQ0KY2g6ICJhYmMiLCBXLyJkIg0KSWYtTW9Ib3N0OiBoDQ"
        "pSYW5nZTogYnl0DQphdGNoOiBhYmMiLCBXLyJkIg0KZC1TaW5jZTplcz0wLTAsNS0NCmNoOiAiYWJjIiwgVy8i"
        "ZCINCklmLU1vSG9zdDogLU5vbmUtTWF0Y2g6IGFiYyIsIFcvImQiDQpJZi1Nb2RpZmllZC1TaW5jZTr/////Zi"
        "1Ob25lLU1hdGNoOiAiYWJjIiwgVy8iZCINCklmLU1vZGlmSG9zdDogaA0KUmFuZ2U6IGJ5dA0KSWYtTm9uZS1N"
        "YXRjaDogVy8iZCINCklmLU1vZGlmSG9zdDogaA0KUmFuZ2U6IGJ5dA0KSWYtTm9uZS1NYXRjaDogYWJjIiwgVy"
        "8iZGJ5dA0KSWYtTm9uZS1NYXRjaDogMjIzLyJkIg0KSWYtTW9kaWZpZWQtU2luY2U6ZXM9MC0xLDUtDQpuY2Ut"
        "Tm9uZS1NYXRjaDogYWJjIiwgVy8iZCINCklmLU1vZGlmaWVkLVNpbmNlOmVzdDogaA0KUmFuZ2U6IGJ5dA0KSW"
        "YtTm9uZS1NYXRjaDowLTAsNS0NCklmLU5vbmUtTWF0Y2g6ICJhYmMiLCBXLyJkIg0KSWYtTW9jZTplcz0wLTAs"
        "NS0NCmNoOiAiYWJjIiwtTm9uZS1NYXRjaDogVy8iZCINCklmLU1vZGlmSG9zdDogaA0KUmFuZ2U6IGJ5dA0KSW"
        "YtTm9uZS1NYXRjaDogYWJjIiwgVy8iZC1Ob25lLU1hdGNoOiBhYmMiLCBXLyJkIg0KSWYtTW9kaWY6IGFiYyIs"
        "IFcvImQiDQpJZi1Nb2RpYnl0DQpJZi1Ob25lLU1hdGNoOiAyMjMvImQiDQpJZi1Nb2RpZmllZC1TaW5jZTplcz"
        "0wLTEsNS0NCm5jZS1Ob25lLU1hdGNoOiBhYmMiLCBXLyJkIg0KSWYtTW9kaWZpZWQtU2luY2U6ZXN0OiBoDQpS"
        "YW5nZTogYnl0DQpJZi1Ob25lLU1hdGNoOjAtMCw1LQ0KSWYtTm9YZS1NYXRjaDogImFiYyIsIFcvImQiDQpJZi"
        "1Nb2NlOmVzPTAtMCw1LQ0KY2g6ICJhYmMiLC1Ob25lLU1hdGNoOiBXLyJkIg0KSWYtTW9kaWZIb3N0OiBoDQpS"
        "YW5nZTogYnl0DQpJZi1Ob25lLU1hdGNoOiBhYmMiLCBXLyJkLU5vbmUtTWF0Y2g6IGFiYyIsIFcvImQiDQpJZi"
        "1Nb2RpZjogYWJjIiwgVy8iZCINCklmLU1vZGlmaWVkLVNpbmNlOmVzPQo=",
    ),
    # conditional: "Mon, 777…709 Feb 2004 04:22:35" raised OverflowError (a 500). Fixed.
    (
        "conditional",
        "AABgAjb/DgAJAP8JISf/AAghJ01vbiwgNzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3"
        "Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3NzA5IEZlYiAyMDA0IDA0OjIyOjM1IP///////////////////////////////wKT"
        "F3oJ/wAA",
    ),
    # ranges: a range-spec with last < first, both past 18 digits (clamped, so equal), was
    # not seen as invalid: 206 instead of ignoring the set (§14.1.1). Fixed.
    (
        "ranges",
        "AgEsASwBIPYlQllURVM9MDAxLTIyLC0yMjI1LDAwMC0xMjIyMiwtMjIsLTIyNTU1NTAyLDMtMjIsMi0wMiwyLT"
        "IyMjIyLC0yMjUyNTI1NTU1NTU1NTU1NTUsMTItLC0yLDAxMi0sLTIyMiwwMDAtMTIyMjIsLTIyLC0yMjU1NTUw"
        "MiwwNjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
        "Y2NjYtMjIyMjI1NTU1MjIyNTU1MTU1NTU1NTUsLTIyMjIsLTIyLC0yMjU1NTUwMiwyLTIyLDItNTU1LC01NTU1"
        "NTU1LC0yMjIyLC0yMiwtMjI1NTU1MDIsMi0yMiwyLTAyLDItMjIyNTU1MjIyLDAwMC0xMjIyMiwtMjIsLTIyNT"
        "U1NTAyLDItMjIsMi0wMiwyLTIyMjIzLC0yNTU1NTU1MjU1NTU1NTIsLTIyMjI1NTU=",
    ),
    # encodings: "*;q" chose nothing (406) instead of ignoring the member. Fixed.
    ("encodings", "JSo7cQ=="),
    # http2: the harness reset a stream after the connection had failed (h2: "Invalid
    # input SEND_RST_STREAM in state CLOSED"); the driver never does. Harness fixed.
    (
        "http2",
        "AAEDUwgA//7PBQABA1MIAAEBAwMDAwMDAwMDAwMDAwMDAwMDAwMDLAMDAwMDcmFuZ2V8fQGrW4Ob2asGAAAABy+AAAA=",
    ),
    # http2: the two inputs of the known bug below (tolerated by the target for now).
    ("http2", "gYGBgQCBgQAu"),
    ("http2", "LikpAACFgg=="),
    # http2: an invalid :authority is answered 400 on its stream (issue 9, as HTTP/1.1
    # answers an invalid Host); the harness did not expect 400 there. Invariant widened.
    (
        "http2",
        "AAABBQEQggEFAwuChr9EhmILgoa/RIZiMky8ZqsAAQUFC4KGv0SGYjJMvGarAAEFBQuChsBMhmKTBwmChsFEhGFTCAAFBgcABwUABwUHAA==",
    ),
    # http2: a malformed stream, then the client's GOAWAY with an error code in the same
    # read: resetting the stream failed the connection without GOAWAY. Fixed: nothing is
    # reset once the connection is closed.
    ("http2", "hS9+fn6RDQ0NDQ0NDQAAAAAAAA3lCgAAAAAAAAD///9+fn5+fgaDm9kF"),
    # http2: a PRIORITY_UPDATE frame (RFC 9218, issue 13) yields PriorityChanged, which the
    # harness did not know. Harness taught; the adapter now also drops updates for
    # streams already closed.
    ("http2", "AAgQBQAIEAUBCF0GAAEBXVW8BQ=="),
    # websocket: a text fragment, then invalid UTF-8 in the same read: the adapter dropped
    # the valid fragment too, which it delivered when the bytes came apart. Fixed: the
    # frames before the invalid one are delivered, then the socket fails with 1007.
    ("websocket", "AWIBAQGBA6sBVgAAgYNtVnMAbokXyAQDBA=="),
    # http3: a HEADERS frame whose QPACK field section qh3's decoder rejects with its
    # DecoderStreamError, which qh3 neither catches nor turns into an HTTP/3 error: it
    # reached the driver's guard (a logged traceback, the connection cut without a word).
    # Fixed: the adapter closes the connection with QPACK_DECOMPRESSION_FAILED.
    (
        "http3",
        "AQABAAEAEwQRAYABAAAGgAQAAAdAZDMBIQEBAAMNAQgBAAECAQABAwEAAAAAOAE2AADPLwC5XYdJyHo/h/BY0HJ1"
        "Kn/XnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnVCGoOQdE50JUQMvd3MvCEFIt4LGg5OpUrdy2IMerwIxMwAADQALgYUB"
        "AgMEaWdvaG6AAAoACIiCAQIDBALqAhQ=",
    ),
    # http3: a SETTINGS frame cut inside a value: qh3's BufferReadError escaped the same
    # way. Fixed: the connection is closed with H3_FRAME_ERROR.
    (
        "http3",
        "AQABAAEAEwQRAYABAAAGgAQAAAdAZDMBIV5eXl5eXl5eXl5eXl5eXl5eXl5eAQEAAAaABAAAB0BkMwEhE50JUYYUAhQ=",
    ),
    # http3: SETTINGS with a QPACK table capacity past 2^32-1 (a legal varint): qh3's
    # encoder raised OverflowError, which reached the driver's guard. Fixed: such values
    # are lowered to what the encoder takes (they only bound what it may use).
    ("http3", "AQABAAEAEwQRAf///n///v93ZWJzb2NrZXTkBBEBAAEBgAMBAACAABUAAAAAAQICQQImAgICAgI="),
    # http3: the client stopped a stream whose body the driver was still sending; qh3
    # refused the next DATA with its FrameUnexpected, which the adapter did not count
    # among "the stream is gone" and the guard caught. Fixed: it is.
    (
        "http3",
        "Nf8BAAEAAAAAFgEUAADR11CGoOQdE50JUYZiM0y8ZqsCFAIUE4AB/v////////wAAAaABAAzTLxmqwIUAhQTBhEB"
        "gBQUHBQUFBTm5ubm5ubm5ubm5ubm5jXm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5uZMvGYCFAEAA4ABTLxm"
        "qw0BCAIUAgIUFAL///////6N",
    ),
]


@pytest.mark.parametrize(("name", "encoded"), FOUND)
def test_found_input_passes(name: str, encoded: str) -> None:
    load(name)(base64.b64decode(encoded))


# --- HTTP/2: a reset that h2 has made impossible becomes a connection failure ----------------
# KNOWN BUG in lanthorn.protocol.http2 (not fixed here: the file is being changed elsewhere).
# `Http2._begin` resets a malformed stream (PROTOCOL_ERROR) or one opened after our GOAWAY
# (REFUSED_STREAM) while translating the events of a read, after h2 has taken all of it. If a
# later frame of the same read closed that stream (a second HEADERS on it: h2 resets it with
# STREAM_CLOSED) or the connection (the client's GOAWAY), `reset_stream` raises
# StreamClosedError or "Invalid input SEND_RST_STREAM in state CLOSED"; `receive` reports
# ProtocolFailed (400, reason "129" / "Invalid input ...") with no GOAWAY queued, and the
# events after it in that read (other streams' requests) are lost: the driver closes the
# connection. Fix: suppress h2.exceptions.StreamClosedError and skip the reset when the
# connection is closed, as `Http2.reset` already does for the first.

LIMITS = Limits()


def _opened() -> Http2:
    adapter = Http2(LIMITS, 0.0)
    assert adapter.receive(PREFACE, 0.0) == []
    adapter.output()
    return adapter


def _request(stream_id: int) -> bytes:
    # :method GET, :scheme http, :path /, :authority example (HPACK, literal authority)
    block = b"\x82\x86\x84\x41\x07example"
    return frame(1, 0x05, stream_id, block)


def test_malformed_stream_closed_again_in_the_same_read() -> None:
    adapter = _opened()
    malformed = frame(1, 0x05, 129, b"")  # HEADERS, END_STREAM|END_HEADERS, no fields
    again = frame(1, 0x04, 129, b"\x82" * 6)  # HEADERS again on the half-closed stream
    events = adapter.receive(malformed + again + _request(131), 0.0)
    assert not any(isinstance(e, ProtocolFailed) for e in events)
    assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [131]


def test_malformed_stream_then_graceful_goaway_in_the_same_read() -> None:
    adapter = _opened()
    malformed = frame(1, 0x04, 41, b"")  # HEADERS, END_HEADERS, no fields
    goaway = frame(7, 0, 0, b"\0\0\0\x29" + b"\0\0\0\0")  # last stream 41, NO_ERROR
    events = adapter.receive(_request(39) + malformed + goaway, 0.0)
    assert not any(isinstance(e, ProtocolFailed) for e in events)
    assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [39]
    assert adapter.peer_done
