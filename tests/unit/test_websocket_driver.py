"""The hand-over from HTTP/1 to a WebSocket, in memory: what the driver answers, and
that the link now leads to the WebSocket driver."""

from __future__ import annotations

from pathlib import Path

from lanthorn.config import Config, ServerConfig, SiteConfig, WebSocketConfig
from lanthorn.driver import CLOSE, Action, Service, connect
from lanthorn.driver.negotiate import Link
from lanthorn.driver.websocket import WebSocketConnection

UPGRADE = (
    b"GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _frame(payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    return (
        bytes([0x81, 0x80 | len(payload)])
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )


def _service(tmp_path: Path, h2c: bool = True) -> Service:
    (tmp_path / "a.txt").write_bytes(b"hello")
    return Service(
        Config(
            server=ServerConfig(access_log="off", h2c=h2c),
            site=SiteConfig(root=str(tmp_path)),
            websocket=WebSocketConfig(echo="/echo"),
        )
    )


def _wire(actions: list[Action]) -> bytes:
    return b"".join(a for a in actions if isinstance(a, bytes))


def test_a_pipelined_request_then_the_upgrade_then_a_frame_in_one_read(tmp_path: Path) -> None:
    for h2c in (True, False):  # with or without the HTTP/2 preface sniffing in front
        service = _service(tmp_path, h2c)
        conn = connect(service, "peer", 0.0)
        assert isinstance(conn, Link)
        out = conn.feed(b"GET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n" + UPGRADE + _frame(b"hi"), 0.0)
        wire = _wire(out)
        assert wire.startswith(b"HTTP/1.1 200 OK") and b"hello" in wire
        assert b"HTTP/1.1 101 Switching Protocols\r\n" in wire
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in wire  # RFC 6455 §1.3
        assert wire.endswith(b"\x81\x02hi")  # the echo, unmasked
        assert CLOSE not in out and isinstance(conn.driver, WebSocketConnection)
        assert conn.multiplexed and conn.lingers
        assert conn.drained(0.1) == []
        assert _wire(conn.feed(_frame(b"again"), 0.2)) == b"\x81\x05again"
        conn.abort()


def test_no_endpoint_or_no_websocket_asked_is_a_plain_last_request(tmp_path: Path) -> None:
    service = _service(tmp_path)
    conn = connect(service, "peer", 0.0)
    out = conn.feed(UPGRADE.replace(b"/echo", b"/a.txt"), 0.0)
    assert _wire(out).startswith(b"HTTP/1.1 200 OK") and out[-1] is CLOSE
    conn.abort()
