"""Access log: Combined Log Format, escaped, batched."""

from __future__ import annotations

import io
import re

from lanthorn.logs import AccessLog, format_record

CLF = re.compile(
    r'^(\S+) - - \[(\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) '
    r'"([^"]*)" "([^"]*)"\n$'
)


def test_combined_log_format() -> None:
    line = format_record(
        ("127.0.0.1", b"GET", b"/a?b=1", "1.1", 200, 123, b"http://r/", b"curl/8", 0.0, None)
    )
    match = CLF.match(line)
    assert match is not None
    assert match.group(3) == "GET /a?b=1 HTTP/1.1"
    assert match.group(4, 5, 6, 7) == ("200", "123", "http://r/", "curl/8")


def test_control_characters_and_quotes_escaped() -> None:
    line = format_record(
        ("p", b"GET", b'/x"\n\x1b[31m\\', "1.1", 404, 0, b"", b'evil"\r\nFAKE', 0.0, None)
    )
    assert line.count("\n") == 1 and "\x1b" not in line
    assert "\\x22" in line and "\\x0A" in line and "\\x5C" in line
    assert line.endswith('"-" "evil\\x22\\x0D\\x0AFAKE"\n')


def test_bytes_from_0x7f_up_escaped() -> None:
    """DEL and every non-ASCII byte is escaped too (as nginx does): the log stays ASCII,
    and a UTF-8 or Latin-1 sequence cannot smuggle look-alike text into it."""
    raw = bytes(range(0x7E, 0x100))
    line = format_record(("p", b"GET", b"/" + raw, "1.1", 200, 0, raw, raw, 0.0, None))
    assert line.isascii()
    escaped = "~" + "".join(f"\\x{b:02X}" for b in range(0x7F, 0x100))
    assert f'"GET /{escaped} HTTP/1.1"' in line
    assert line.endswith(f'"{escaped}" "{escaped}"\n')


def test_socket_lifetime_follows_the_combined_fields() -> None:
    """A WebSocket's record says how long it lived, after the user agent, in seconds."""
    record = ("p", b"GET", b"/ws", "1.1", 101, 42, b"", b"ws/1", 0.0, 12.3456)
    line = format_record(record)
    assert line.endswith('"ws/1" 12.346\n')
    assert CLF.match(line.replace(" 12.346\n", "\n")) is not None


def test_unparsed_request_logged_as_dash() -> None:
    line = format_record(("p", b"", b"", "", 400, 10, b"", b"", 0.0, None))
    assert '"-" 400 10' in line


def test_batched_until_flush_or_interval() -> None:
    stream = io.StringIO()
    log = AccessLog(stream, owned=False)
    record = ("p", b"GET", b"/", "1.1", 200, 1, b"", b"", 0.0, None)
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
