"""The seed corpus: real requests, h2 frames from h2's own client, tricky paths and
field values, each encoded in its target's input format (see the target modules).

    .venv/bin/python -m tests.fuzz.seeds    # rewrites tests/fuzz/corpus/<target>/

The fuzzer keeps what it finds elsewhere (`make fuzz` writes to .fuzz/); inputs worth
keeping are added here by name, so the corpus stays small and readable.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.settings
from hyperframe.frame import Frame as H2Frame
from qh3.h3.connection import H3Connection
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection
from websockets.frames import Opcode

from tests.fuzz.targets.frames import PREFACE

CORPUS = Path(__file__).parent / "corpus"

REQUESTS = {
    "get": b"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
    "browser": (
        b"GET /index.html?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: Mozilla/5.0\r\n"
        b"Accept: text/html,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"
        b"Accept-Language: en\r\nConnection: keep-alive\r\nCookie: a=1; b=2\r\n\r\n"
    ),
    "pipelined": b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n"
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "post-length": b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
    b"helloGET / HTTP/1.1\r\n",
    "chunked-trailer": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
    "http10": b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /y HTTP/1.0\r\n\r\n",
    "absolute-form": b"GET http://example/a/b?q HTTP/1.1\r\nHost: example\r\n\r\n",
    "conditional-range": b"GET /big HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1,5-\r\n"
    b'If-None-Match: "abc", W/"d"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n',
    "expect": b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n",
    "connect": b"CONNECT example:443 HTTP/1.1\r\nHost: example:443\r\n\r\n",
    "upgrade": b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "h2-preface": PREFACE,
    "version": b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "bare-lf": b"GET / HTTP/1.1\nHost: h\n\n",
    "unknown-method": b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n",
    "te-cl": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


def http1() -> dict[str, bytes]:
    seeds = {name: b"\0\0" + raw for name, raw in REQUESTS.items()}
    # Small limits, and the same bytes cut into 1-, 7- and 3-byte pieces.
    seeds["browser-small-limits"] = b"\1\0" + REQUESTS["browser"]
    seeds["pipelined-bytewise"] = b"\0\1\1" + REQUESTS["pipelined"]
    seeds["chunked-pieces"] = b"\0\2\7\3" + REQUESTS["chunked-trailer"]
    return seeds


def _client(
    settings: dict[h2.settings.SettingCodes | int, int] | None = None,
) -> h2.connection.H2Connection:
    # Unvalidated: h2 sends :protocol only once it has seen the server's SETTINGS.
    config = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    if settings:
        conn.update_settings(settings)
    conn.data_to_send()  # the preface: the targets send it themselves
    return conn


def _ops(wire: bytes) -> bytes:
    """A client's bytes as raw-frame operations (payloads over 255 bytes as DATA)."""
    out = b""
    view = memoryview(wire)
    while view:
        frame, length = H2Frame.parse_frame_header(view[:9])
        payload = bytes(view[9 : 9 + length])
        view = view[9 + length :]
        stream = (
            bytes((frame.stream_id,))
            if frame.stream_id < 0xFF
            else b"\xff" + struct.pack(">I", frame.stream_id)
        )
        kind = frame.type or 0
        flags = sum(bit for bit, name in _FLAG_BITS[kind] if name in frame.flags)
        if length <= 0xFF:
            out += bytes((0, kind, flags)) + stream + bytes((length,)) + payload
        else:
            assert kind == 0, frame  # only DATA is that long in these seeds
            out += bytes((2,)) + stream + bytes((flags,)) + struct.pack(">H", length)
    return out


_FLAG_BITS: dict[int, list[tuple[int, str]]] = {
    0: [(0x01, "END_STREAM"), (0x08, "PADDED")],
    1: [(0x01, "END_STREAM"), (0x04, "END_HEADERS"), (0x08, "PADDED"), (0x20, "PRIORITY")],
    2: [], 3: [], 4: [(0x01, "ACK")], 5: [(0x04, "END_HEADERS"), (0x08, "PADDED")],
    6: [(0x01, "ACK")], 7: [], 8: [], 9: [(0x04, "END_HEADERS")],
}  # fmt: skip
FLUSH = b"\x06"
ANSWER = b"\x07\x00\x07\x05"  # respond to the first request (with a body), then pump
DRAIN = b"\x07\x00"
EXPIRE = b"\x07\xfa"  # time passes to the deadline


def _get(conn: h2.connection.H2Connection, path: bytes, end: bool = True, **extra: bytes) -> int:
    stream_id: int = conn.get_next_available_stream_id()
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"example"),
              (b":path", path)]  # fmt: skip
    fields += [(name.replace("_", "-").encode(), value) for name, value in extra.items()]
    conn.send_headers(stream_id, fields, end_stream=end)
    return stream_id


def _masked(opcode: int, payload: bytes) -> bytes:
    """A client's WebSocket frame (RFC 6455 §5.2), final, with a fixed mask."""
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + body


def h2_sessions() -> dict[str, bytes]:
    seeds: dict[str, bytes] = {}
    conn = _client()
    _get(conn, b"/a.txt")
    seeds["get"] = _ops(conn.data_to_send()) + FLUSH + ANSWER
    conn = _client()
    for path in (b"/a.txt", b"/big.bin", b"/missing", b"/sub/"):
        _get(conn, path)
    seeds["four-streams"] = _ops(conn.data_to_send()) + FLUSH + ANSWER + ANSWER + DRAIN
    conn = _client()
    stream_id = conn.get_next_available_stream_id()
    conn.send_headers(stream_id, [(b":method", b"POST"), (b":scheme", b"http"),
                                  (b":authority", b"e"), (b":path", b"/a.txt")])  # fmt: skip
    conn.send_data(stream_id, b"x" * 40)
    conn.send_data(stream_id, b"y" * 300, end_stream=True)
    seeds["post-body"] = _ops(conn.data_to_send()) + FLUSH + ANSWER
    conn = _client({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    stream_id = _get(conn, b"/big.bin", accept_encoding=b"gzip")
    seeds["zero-window"] = _ops(conn.data_to_send()) + FLUSH + DRAIN + EXPIRE
    conn.increment_flow_control_window(100000)
    conn.increment_flow_control_window(100000, stream_id)
    seeds["zero-window-then-open"] = seeds["zero-window"] + _ops(conn.data_to_send()) + FLUSH
    conn = _client()
    stream_id = _get(conn, b"/big.bin", range=b"bytes=0-99,200-")
    conn.ping(b"12345678")
    conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    conn.close_connection()
    seeds["ping-reset-goaway"] = _ops(conn.data_to_send()) + FLUSH
    conn = _client()
    _get(conn, b"/a.txt", end=False)
    seeds["head-without-end"] = _ops(conn.data_to_send()) + FLUSH + EXPIRE + EXPIRE
    # Structured HEADERS operations: the request fields plus a :path (flags 0x55), with
    # END_HEADERS left for a CONTINUATION (0x53), and with PRIORITY and padding (0x7d).
    seeds["headers-op"] = b"\x01\x01\x55\x08\x00" + FLUSH + ANSWER
    seeds["headers-continuation"] = b"\x01\x03\x53\x08\x00\x05" + FLUSH + ANSWER
    seeds["headers-priority-padded"] = b"\x01\x05\x7d\x09\x00\x00\x00\x01\x10\x04\x00" + FLUSH
    # WebSockets over HTTP/2 (RFC 8441): an echo, then the closing handshake and EOF.
    conn = _client()
    stream_id = conn.get_next_available_stream_id()
    tunnel = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
              (b":authority", b"example"), (b":path", b"/ws"),
              (b"sec-websocket-version", b"13")]  # fmt: skip
    conn.send_headers(stream_id, tunnel)
    conn.send_data(stream_id, _masked(0x1, b"hello"))
    opened = _ops(conn.data_to_send()) + FLUSH + ANSWER
    conn.send_data(stream_id, _masked(0x8, b"\x03\xe8"), end_stream=True)
    seeds["websocket-tunnel"] = opened + _ops(conn.data_to_send()) + FLUSH + ANSWER + EXPIRE
    # The first byte chooses the limits: the defaults, except for one seed.
    seeds = {name: b"\0" + ops for name, ops in seeds.items()}
    seeds["four-streams-small-limits"] = b"\1" + seeds["four-streams"][1:]
    return seeds


PATHS = [
    b"/", b"/index.html", b"/a.txt", b"/sub", b"/sub/", b"/sub/b.css", b"/sub/deeper/c",
    b"/../secret.txt", b"/%2e%2e/secret.txt", b"/sub/../../secret.txt", b"/out/secret.txt",
    b"/out.txt", b"/in.txt", b"/.hidden", b"/.well-known/x", b"/a.txt%00.html", b"/a%5cb",
    b"//evil.example/../sub", b"http://h/sub?x=1", b"/sp%20ace%20%2541.txt", b"/fifo",
    b"/a.txt/", b"/%ff", b"/sub/deeper/../../a.txt", b"/%2525", b"/a%2fb", b"*", b"/%",
    b"/sub/%2e%2e/%2e%2e/secret.txt", b"/%c0%ae%c0%ae/secret.txt", b"/nothing#x",
]  # fmt: skip


def paths() -> dict[str, bytes]:
    seeds = {f"path-{i:02}": bytes((4 * (i % 3), 0)) + path for i, path in enumerate(PATHS)}
    headers = (
        b"\x00" + bytes((len(b"bytes=0-9,20-29"),)) + b"bytes=0-9,20-29"  # range
        + b"\x06" + bytes((len(b"gzip, br"),)) + b"gzip, br"  # accept-encoding
    )  # fmt: skip
    seeds["range-and-coding"] = b"\x00\x02" + headers + b"/a.txt"
    seeds["listing-json"] = b"\x05\x01\x07\x10application/json" + b"/sub/"
    return seeds


RANGES = [
    b"bytes=0-0", b"bytes=-5", b"bytes=5-", b"bytes=0-1,3-4", b"bytes=0-10,5-20,100-",
    b"bytes=1-0", b"items=0-1", b"bytes = 0 - 1", b"bytes=,,0-1,", b"bytes=-0",
    b"BYTES=99999999999999999999999-", b",".join(b"%d-%d" % (i * 200, i * 200) for i in range(20)),
]  # fmt: skip


def ranges() -> dict[str, bytes]:
    return {
        f"range-{i:02}": bytes((i % 4,)) + b"\x01\x2c" * 4 + value for i, value in enumerate(RANGES)
    }


def conditional() -> dict[str, bytes]:
    dates = [
        b"Sun, 06 Nov 1994 08:49:37 GMT",
        b"Sunday, 06-Nov-94 08:49:37 GMT",
        b"Sun Nov  6 08:49:37 1994",
        b"Sun, 06 Nov 1994 08:49:37 +0100",
        b"yesterday",
    ]
    seeds = {}
    for i, date in enumerate(dates):
        seeds[f"date-{i}"] = b"\x00\x00\x2e\xbc\xa8\xa1\x00" + date
    tags = b'"2ebca8a1", W/"x"'
    seeds["if-none-match"] = b"\x00\x00\x2e\xbc\xa8\xa1\x01\x01" + bytes((len(tags),)) + tags
    seeds["if-match-since"] = (
        b"\x03\x00\x2e\xbc\xa8\xa1\x02\x00\x01*\x03" + bytes((len(dates[0]),)) + dates[0]
    )
    return seeds


def encodings() -> dict[str, bytes]:
    values = [b"gzip, deflate, br, zstd", b"*;q=0", b"identity;q=0", b"*;q=",
              b"br;q=1.0, gzip;q=0.8, *;q=0.1", b"x-gzip", b"gzip;q=0.001, identity;q=0",
              b"GZIP ; Q=1"]  # fmt: skip
    return {f"accept-{i}": b"\x07" + value for i, value in enumerate(values)}


def websocket() -> dict[str, bytes]:
    def frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
        """A client frame (RFC 6455 §5.2), masked with a fixed key: seeds stay the same."""
        head = bytes([(0x80 if fin else 0) | opcode])
        size = len(data)
        head += (
            bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack("!H", size)
        )
        mask = b"mask"
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    streams = {
        "text": frame(Opcode.TEXT, b"hello"),
        "binary": frame(Opcode.BINARY, bytes(range(256))),
        "fragmented": frame(Opcode.TEXT, "ünï".encode(), fin=False)
        + frame(Opcode.PING, b"p")
        + frame(Opcode.CONT, "cödé".encode()),
        "close": frame(Opcode.TEXT, b"bye") + frame(Opcode.CLOSE, b"\x03\xe8done"),
        "split-utf8": frame(Opcode.TEXT, b"\xe2\x82", fin=False) + frame(Opcode.CONT, b"\xac"),
        "large": frame(Opcode.BINARY, b"x" * 300),
    }
    # First byte: bit 0 deflate, bit 1 the larger message limit; then no split.
    return {f"{name}-{mode}": bytes([mode, 0]) + data
            for name, data in streams.items() for mode in (0, 3)}  # fmt: skip


def _h3_writes(build: Callable[[H3Connection, QuicConnection], None]) -> bytes:
    """The http3 target's ops for what qh3's client HTTP/3 layer writes when `build`
    drives it (its SETTINGS and QPACK streams first), cut to the ops' 255-byte writes."""
    ops = bytearray()

    class Recorder(QuicConnection):
        def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
            record(stream_id, data, end_stream)

    def record(stream_id: int, data: bytes, end_stream: bool) -> None:
        request = stream_id % 4 == 0
        index = (stream_id if request else stream_id - 2) // 4
        for start in range(0, max(len(data), 1), 255):
            chunk = data[start : start + 255]
            last = start + 255 >= len(data)
            op = 0 if request else 1
            if request and end_stream and last:
                op |= 0x80
            ops.extend((op, index, len(chunk)))
            ops.extend(chunk)

    quic = Recorder(configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"]))
    quic.connect(("127.0.0.1", 443), now=0.0)
    h3 = H3Connection(quic)
    build(h3, quic)
    return bytes(ops)


TICK = b"\x02\x14"  # one second passes
SHUTDOWN = b"\x05"


def h3_sessions() -> dict[str, bytes]:
    Build = Callable[[H3Connection, QuicConnection], None]

    def request(path: bytes, method: bytes = b"GET", end: bool = True, **extra: bytes) -> Build:
        def build(h3: H3Connection, quic: QuicConnection) -> None:
            stream = 0
            fields = [(b":method", method), (b":scheme", b"https"),
                      (b":authority", b"localhost"), (b":path", path),
                      *((k.replace("_", "-").encode(), v) for k, v in extra.items())]  # fmt: skip
            h3.send_headers(stream, fields, end_stream=end)
            if method == b"POST":
                h3.send_data(stream, b"x" * 150, end_stream=True)

        return build

    def several(h3: H3Connection, quic: QuicConnection) -> None:
        paths = (b"/a.txt", b"/big.bin", b"/", b"/nope")
        for stream, path in zip((0, 4, 8, 12), paths, strict=True):
            fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"),
                      (b":path", path), (b"range", b"bytes=0-9")]  # fmt: skip
            h3.send_headers(stream, fields, end_stream=True)

    def tunnel(h3: H3Connection, quic: QuicConnection) -> None:
        stream = 0
        h3.send_headers(stream, [
            (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
            (b":authority", b"localhost"), (b":path", b"/ws"), (b"sec-websocket-version", b"13"),
        ])  # fmt: skip
        h3.send_data(stream, _masked(Opcode.TEXT, b"hello"), end_stream=False)
        h3.send_data(stream, _masked(Opcode.CLOSE, b"\x03\xe8"), end_stream=True)

    return {
        "get": _h3_writes(request(b"/a.txt")),
        "head-if-none-match": _h3_writes(request(b"/a.txt", b"HEAD", if_none_match=b"*")),
        "several-ranges": _h3_writes(several) + TICK,
        "post-too-large": _h3_writes(request(b"/a.txt", b"POST", end=False)),
        "unfinished-then-time": _h3_writes(request(b"/big.bin", end=False)) + TICK * 6,
        "download-then-shutdown": _h3_writes(request(b"/big.bin")) + SHUTDOWN + TICK * 3,
        "websocket-tunnel": _h3_writes(tunnel) + TICK,
        "reset-and-stop": _h3_writes(several) + b"\x03\x01\x0c\x04\x02\x00" + TICK,
    }


SEEDS: dict[str, Callable[[], dict[str, bytes]]] = {
    "http1": http1,
    "http2": h2_sessions,
    "streams": h2_sessions,
    "paths": paths,
    "ranges": ranges,
    "conditional": conditional,
    "encodings": encodings,
    "websocket": websocket,
    "http3": h3_sessions,
}


def main() -> None:
    for target, make in SEEDS.items():
        folder = CORPUS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in make().items():
            (folder / name).write_bytes(data)


if __name__ == "__main__":
    main()
