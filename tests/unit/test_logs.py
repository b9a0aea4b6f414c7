"""Access log: Combined Log Format, escaped, batched."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from lanthorn.logs import AccessLog, format_json, format_record

CLF = re.compile(
    r'^(\S+) - - \[(\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) '
    r'"([^"]*)" "([^"]*)"\n$'
)


def test_combined_log_format() -> None:
    line = format_record(
        (
            "127.0.0.1",
            b"GET",
            b"/a?b=1",
            "1.1",
            200,
            123,
            b"http://r/",
            b"curl/8",
            0.0,
            None,
            None,
            0.0,
        )
    )
    match = CLF.match(line)
    assert match is not None
    assert match.group(3) == "GET /a?b=1 HTTP/1.1"
    assert match.group(4, 5, 6, 7) == ("200", "123", "http://r/", "curl/8")


def test_control_characters_and_quotes_escaped() -> None:
    line = format_record(
        (
            "p",
            b"GET",
            b'/x"\n\x1b[31m\\',
            "1.1",
            404,
            0,
            b"",
            b'evil"\r\nFAKE',
            0.0,
            None,
            None,
            0.0,
        )
    )
    assert line.count("\n") == 1 and "\x1b" not in line
    assert "\\x22" in line and "\\x0A" in line and "\\x5C" in line
    assert line.endswith('"-" "evil\\x22\\x0D\\x0AFAKE"\n')


def test_bytes_from_0x7f_up_escaped() -> None:
    """DEL and every non-ASCII byte is escaped too (as nginx does): the log stays ASCII,
    and a UTF-8 or Latin-1 sequence cannot smuggle look-alike text into it."""
    raw = bytes(range(0x7E, 0x100))
    line = format_record(("p", b"GET", b"/" + raw, "1.1", 200, 0, raw, raw, 0.0, None, None, 0.0))
    assert line.isascii()
    escaped = "~" + "".join(f"\\x{b:02X}" for b in range(0x7F, 0x100))
    assert f'"GET /{escaped} HTTP/1.1"' in line
    assert line.endswith(f'"{escaped}" "{escaped}"\n')


def test_socket_lifetime_follows_the_combined_fields() -> None:
    """A WebSocket's record says how long it lived, after the user agent, in seconds."""
    record = ("p", b"GET", b"/ws", "1.1", 101, 42, b"", b"ws/1", 0.0, 12.3456, None, 0.0)
    line = format_record(record)
    assert line.endswith('"ws/1" 12.346\n')
    assert CLF.match(line.replace(" 12.346\n", "\n")) is not None


def test_unparsed_request_logged_as_dash() -> None:
    line = format_record(("p", b"", b"", "", 400, 10, b"", b"", 0.0, None, None, 0.0))
    assert '"-" 400 10' in line


def test_batched_until_flush_or_interval() -> None:
    stream = io.StringIO()
    log = AccessLog(stream, owned=False)
    record = ("p", b"GET", b"/", "1.1", 200, 1, b"", b"", 0.0, None, None, 0.0)
    log.record(record)
    assert stream.getvalue() == ""
    log.tick(now=0.5)
    assert stream.getvalue() == ""  # within the interval: still buffered
    log.tick(now=1.0)
    assert stream.getvalue().count("\n") == 1
    log.record(record)
    log.tick(now=1.6)
    assert stream.getvalue().count("\n") == 1  # within the interval: still buffered
    log.tick(now=2.0)
    assert stream.getvalue().count("\n") == 2
    for _ in range(AccessLog.BATCH):
        log.record(record)
    assert stream.getvalue().count("\n") == 2 + AccessLog.BATCH  # a full batch flushes


def test_json_lines_have_every_key_and_escape_everything() -> None:
    record = ("p", b"GET", b'/a"\x1b', "2.0", 200, 5, b"", b"\xff\n", 0.0, None, "TLSv1.3", 0.25)
    line = format_json(record)
    assert line.endswith("}\n") and line.count("\n") == 1 and line.isascii()
    got = json.loads(line)
    assert got["time"].startswith("1970-01-01T") or got["time"].startswith("1969-12-31T")
    assert (got["method"], got["target"], got["protocol"]) == ("GET", '/a"\x1b', "HTTP/2.0")
    assert (got["status"], got["bytes"], got["duration"], got["tls"]) == (200, 5, 0.25, "TLSv1.3")
    assert (got["referer"], got["user_agent"], got["lived"]) == (None, "\\xff\n", None)


def test_json_format_chosen_by_open(tmp_path: Path) -> None:
    log = AccessLog.open(str(tmp_path / "a.log"), "json")
    assert log is not None
    log.record(("p", b"", b"", "", 400, 1, b"", b"", 0.0, None, None, 0.001))
    log.close()
    got = json.loads((tmp_path / "a.log").read_text())
    assert (got["method"], got["protocol"], got["status"]) == (None, None, 400)
