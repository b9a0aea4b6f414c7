"""The HTTP/3 bench's reading of gtlsclient: a response counts only when it was seen
whole, and the handshake is timed from the log's own stamps."""

from __future__ import annotations

from pathlib import Path

from lanthorn.bench.h3load import (
    count_downloads,
    parse_early_answer,
    parse_handshake,
    parse_log,
    requests_per_connection,
)


def _stream(stream_id: int, status: int, length: int, closed: int | None = 256) -> str:
    """What gtlsclient logs for one answered stream (ids in hex, then in decimal)."""
    lines = [
        f"http: stream {stream_id:#x} response headers started",
        f"http: stream {stream_id:#x} [:status: {status}]",
        f"http: stream {stream_id:#x} [server: Caddy]",
        f"http: stream {stream_id:#x} [content-length: {length}]",
        f"http: stream {stream_id:#x} headers ended",
    ]
    if closed is not None:
        lines.append(f"HTTP stream {stream_id} closed with error code {closed}")
    return "\n".join(lines) + "\n"


PACKETS = "I00000003 0x44e9 frm rx 3 1RTT STREAM(0x0b) id=0x10 fin=1 offset=0 len=955 uni=0\n"


def test_whole_2xx_answers_closed_cleanly_count() -> None:
    log = (
        "http: control stream=2\n"
        + _stream(0x0, 200, 955)
        + PACKETS
        + _stream(0x4, 200, 955)
        + _stream(0x10, 200, 955)  # 16: the close line says it in decimal
        + _stream(0x8, 404, 955)  # an error page of the same size
        + _stream(0xC, 200, 12)  # another answer
        + _stream(0x14, 200, 955, closed=0x10C)  # H3_REQUEST_CANCELLED
        + _stream(0x18, 200, 955, closed=None)  # never finished
    )
    received = parse_log(log, 955)
    assert (received.complete, received.body_bytes) == (3, 3 * 955)


def test_a_log_without_answers_counts_none() -> None:
    failed = (
        "ngtcp2_conn_read_pkt: ERR_DRAINING\n"
        "I00000002 0xde75 frm rx 0 Initial CONNECTION_CLOSE(0x1c) error_code=CRYPTO_ERROR(0x150)\n"
    )
    assert parse_log(failed, 955).complete == 0
    assert parse_log("", 955).complete == 0


def test_handshake_time_from_the_log_stamps() -> None:
    log = (
        "I00000000 0x7bcc pkt tx pkn=0 type=Initial len=0\n"
        "Sent packet: local=[127.0.0.1]:40499 remote=[127.0.0.1]:39949 ecn=0x2 1200 bytes\n"
        "I00000002 0x7bcc pkt rx pkn=0 type=Handshake len=692\n"
        "I00000003 0x7bcc con processing buffered handshake packet\n"
        "QUIC handshake has completed\n"
        "Negotiated ALPN is h3\n"
        "I00000022 0x7bcc rcv loss detection timer fired\n"
        "QUIC handshake has been confirmed\n"
    )
    assert parse_handshake(log) == 0.003
    assert parse_handshake(log.replace("QUIC handshake has completed\n", "")) is None


def test_early_answer_time_from_the_log_stamps() -> None:
    """The request went in 0-RTT packets; the answer's first STREAM frame on stream 0
    is timed (not the control streams' 2 and 3)."""
    log = (
        "I00000000 0xb3 pkt tx pkn=0 dcid=0x0e scid=0xb3 version=0x00000001 type=0RTT len=0\n"
        "I00000000 0xb3 frm tx 0 0RTT STREAM(0x0b) id=0x0 fin=1 offset=0 len=46 uni=0\n"
        "I00000003 0xb3 frm rx 0 1RTT STREAM(0x0a) id=0x3 fin=0 offset=0 len=9 uni=1\n"
        "I00000004 0xb3 frm rx 0 1RTT STREAM(0x0a) id=0x0 fin=0 offset=0 len=764 uni=0\n"
    )
    assert parse_early_answer(log) == 0.004
    assert parse_early_answer(log.replace("type=0RTT", "type=Initial")) is None  # no early data
    assert parse_early_answer(log.split("I00000004", maxsplit=1)[0]) is None  # no answer


def test_downloads_count_when_whole(tmp_path: Path) -> None:
    for name, size in (("large.bin?0", 1000), ("large.bin?1", 1000), ("large.bin?2", 999)):
        (tmp_path / name).write_bytes(b"x" * size)
    (tmp_path / "large.bin?3").touch()  # opened, never answered
    received = count_downloads(tmp_path, 1000)
    assert (received.complete, received.body_bytes) == (2, 2000)


def test_a_connection_carries_at_most_100_mib() -> None:
    assert requests_per_connection(10_000, 955) == 10_000
    assert requests_per_connection(10_000, 10 * 2**20) == 10
    assert requests_per_connection(5, 10 * 2**20) == 5
    assert requests_per_connection(10_000, 2**30) == 1
    assert requests_per_connection(10_000, 0) == 10_000
