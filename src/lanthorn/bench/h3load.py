"""HTTP/3 load from ngtcp2's `gtlsclient` (Debian's ngtcp2-client), and what it says.

One gtlsclient process is one QUIC connection carrying `-n N` GETs, as many at once as
the server's MAX_STREAMS lets it open (it has no concurrency option of its own). It
prints no summary, and exits with 0 even when the handshake fails, so a response counts
only when it is seen:

- answers up to LOGGED_MAX_BYTES are read from its debug log (status, content-length and
  clean close of every stream): next to so few packets the log costs the client little,
  and every request keeps the one URL, which servers may cache;
- larger ones run quiet and are downloaded, each to its own file (a distinct `?i` query:
  the servers ignore it) on tmpfs, and count when the file has the whole size. The log
  would cost the client a third of its speed here: one line per packet.

Connections (`conns` processes at once) are repeated until `duration_s` has passed,
at least once; requests/s and bytes/s are what was received over their wall time
(process start included: a few milliseconds per connection).
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lanthorn.bench.load import Result, require
from lanthorn.bench.targets import pinned

LOGGED_MAX_BYTES = 64 * 1024
RUN_BYTES = 100 * 2**20  # a connection carries at most this much: 10 answers of 10 MiB
HANDSHAKES = 5  # `-n 1` connections timed per cell; the median is reported
H3_NO_ERROR = 0x100  # a stream closed cleanly (RFC 9114 §8.1)
TIMEOUTS = ("--timeout=5s", "--handshake-timeout=5s")  # idle, handshake
PROCESS_TIMEOUT_S = 300.0  # one connection, whatever its N (lanthorn's 10,000 take ~25 s)
_TMPFS = "/dev/shm"

_FIELD = re.compile(r"^http: stream 0x([0-9a-f]+) \[(:status|content-length): (\d+)\]$", re.M)
_CLOSED = re.compile(r"^HTTP stream (\d+) closed with error code (\d+)$", re.M)
_STAMP = re.compile(r"^I(\d{8}) ")  # ngtcp2's log lines: milliseconds since the start
# The first STREAM frame received on request stream 0: the answer begins.
_ANSWER = re.compile(r"^I(\d{8}) \S+ frm rx \d+ 1RTT STREAM\(0x[0-9a-f]+\) id=0x0 ", re.M)


@dataclass(frozen=True)
class Resource:
    """What every request asks for: a URL, and the size of its whole answer."""

    url: str
    size: int


@dataclass(frozen=True)
class Received:
    """What one connection brought back."""

    complete: int  # 2xx answers of the expected size, on streams closed cleanly
    body_bytes: int


def parse_log(log: str, size: int) -> Received:
    """Count the streams of a debug log that were answered 2xx with `size` bytes (by
    content-length) and closed with H3_NO_ERROR."""
    fields: dict[int, dict[str, int]] = {}
    for match in _FIELD.finditer(log):
        fields.setdefault(int(match[1], 16), {})[match[2]] = int(match[3])
    clean = {int(m[1]) for m in _CLOSED.finditer(log) if int(m[2]) == H3_NO_ERROR}
    complete = sum(
        1
        for stream, seen in fields.items()
        if stream in clean
        and 200 <= seen.get(":status", 0) < 300
        and seen.get("content-length") == size
    )
    return Received(complete, complete * size)


def parse_handshake(log: str) -> float | None:
    """Seconds from the first Initial sent to the handshake complete (the server's
    first flight read), by the log's millisecond stamps; None if it never completed."""
    stamp = 0.0
    for line in log.splitlines():
        if match := _STAMP.match(line):
            stamp = int(match[1]) / 1000
        elif line == "QUIC handshake has completed":
            return stamp
    return None


def parse_early_answer(log: str) -> float | None:
    """Seconds from the start to the first bytes of the answer on stream 0, if the
    request went out in 0-RTT packets (else None: no early data was sent)."""
    if "type=0RTT" not in log:
        return None
    match = _ANSWER.search(log)
    return None if match is None else int(match[1]) / 1000


def count_downloads(directory: Path, size: int) -> Received:
    """Files of `directory` that hold a whole answer."""
    complete = sum(1 for path in directory.iterdir() if path.stat().st_size == size)
    return Received(complete, complete * size)


def requests_per_connection(requests: int, size: int) -> int:
    """`requests`, but no more than RUN_BYTES of answers on one connection."""
    return max(1, min(requests, RUN_BYTES // max(1, size)))


def _argv(url: str, requests: int, download: Path | None) -> tuple[list[str], list[str]]:
    """gtlsclient's options and URLs for one connection of `requests` GETs of `url`:
    logged, or (`download`) quiet with every answer saved in that directory."""
    parts = urlsplit(url)
    argv = [require("gtlsclient", "ngtcp2-client"), "--exit-on-all-streams-close", *TIMEOUTS]
    if download is None:
        argv += ["--no-quic-dump", "--no-http-dump", "-n", str(requests)]
        urls = [url]
    else:
        argv += ["-q", f"--download={download}"]
        urls = [f"{url}?{i}" for i in range(requests)]
    return [*argv, str(parts.hostname), str(parts.port)], urls


def _scratch() -> tempfile.TemporaryDirectory[str]:
    """Logs and downloads go to tmpfs when there is one: writing them must not slow
    the client."""
    return tempfile.TemporaryDirectory(
        prefix="lanthorn-h3load-", dir=_TMPFS if os.path.isdir(_TMPFS) else None
    )


def _connections(
    asked: Resource, conns: int, requests: int, cpu: int | None
) -> tuple[Received, float]:
    """`conns` gtlsclient connections at once, each asking `requests` times: what came
    back (a process that fails or times out counts nothing), and the seconds from the
    first start to the last exit (reading their output is not timed)."""
    logged = asked.size <= LOGGED_MAX_BYTES
    with _scratch() as tmp, contextlib.ExitStack() as files:
        runs = []
        start = time.monotonic()
        for i in range(conns):
            download = None if logged else Path(tmp, f"conn{i}")
            if download is not None:
                download.mkdir()
            log = Path(tmp, f"conn{i}.log")
            options, urls = _argv(asked.url, requests, download)
            proc = subprocess.Popen(
                pinned(cpu, [*options, *urls]),
                stdout=subprocess.DEVNULL,
                stderr=files.enter_context(open(log, "wb")),
            )
            runs.append((proc, log, download))
        finished = []
        for proc, log, download in runs:
            try:
                returncode = proc.wait(max(0.0, start + PROCESS_TIMEOUT_S - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                returncode = proc.wait()
            if returncode == 0:
                finished.append((log, download))
        wall_s = time.monotonic() - start
        complete = body = 0
        for log, download in finished:
            got = (
                parse_log(log.read_text(errors="replace"), asked.size)
                if download is None
                else count_downloads(download, asked.size)
            )
            complete, body = complete + got.complete, body + got.body_bytes
        return Received(complete, body), wall_s


def h3load(
    asked: Resource, conns: int, requests: int, duration_s: float, cpu: int | None
) -> Result:
    """Connections of `requests` GETs (fewer for large answers: RUN_BYTES), `conns` at
    once, repeated until `duration_s` has passed. Every request not answered in full is
    an error, and the first connection with one ends the run."""
    per_conn = requests_per_connection(requests, asked.size)
    sent = complete = body = 0
    elapsed = 0.0
    while True:
        got, wall_s = _connections(asked, conns, per_conn, cpu)
        sent += conns * per_conn
        complete, body = complete + got.complete, body + got.body_bytes
        elapsed += wall_s
        if elapsed >= duration_s or got.complete < conns * per_conn:
            break
    logged = asked.size <= LOGGED_MAX_BYTES
    options, urls = _argv(asked.url, per_conn, None if logged else Path("DIR"))
    shown = urls[0] if len(urls) == 1 else f"{urls[0]} ... {urls[-1]}"
    command = f"{' '.join(options)} {shown} (x{conns} at once)"
    return Result(complete / elapsed, body / elapsed, 0.0, complete, sent - complete, command)


def handshakes(asked: Resource, cpu: int | None, runs: int = HANDSHAKES) -> tuple[float, int]:
    """`runs` connections of one request each, logged (they warm the server up, and
    check that it answers in full): the median handshake seconds, and how many failed.

    Only the handshake is timed: gtlsclient 0.12 then holds its Finished and the request
    until its loss timer fires twice (~20 ms on loopback, whatever the server), so the
    time to the first response is the client's."""
    timed: list[float] = []
    with _scratch() as tmp:
        log = Path(tmp, "handshake.log")
        options, urls = _argv(asked.url, 1, None)
        for _ in range(runs):
            with open(log, "wb") as out, contextlib.suppress(subprocess.TimeoutExpired):
                done = subprocess.run(
                    pinned(cpu, [*options, *urls]), stdout=subprocess.DEVNULL, stderr=out,
                    timeout=PROCESS_TIMEOUT_S, check=False,
                )  # fmt: skip
                text = log.read_text(errors="replace")
                seen = parse_handshake(text)
                answered = parse_log(text, asked.size).complete == 1
                if done.returncode == 0 and answered and seen is not None:
                    timed.append(seen)
    return (statistics.median(timed) if timed else 0.0), runs - len(timed)


def resumed(asked: Resource, cpu: int | None, runs: int = HANDSHAKES) -> tuple[float, int]:
    """`runs` connections that resume the session of a first one (its ticket and
    transport parameters, gtlsclient's --session-file and --tp-file) and send their
    request as 0-RTT early data: the median seconds to the answer's first bytes (0 when
    the server offered no 0-RTT: it is optional), and how many were not answered whole.
    Unlike a new connection's, this time is the server's: the request leaves with the
    first flight."""
    timed: list[float] = []
    failed = 0
    with _scratch() as tmp:
        log = Path(tmp, "resumed.log")
        options, urls = _argv(asked.url, 1, None)
        options = [o for o in options if o != "--no-quic-dump"]  # (its frames are timed)
        session = [f"--session-file={Path(tmp, 'session')}", f"--tp-file={Path(tmp, 'tp')}"]
        argv = [*options[:-2], *session, *options[-2:], *urls]
        for attempt in range(runs + 1):  # the first one saves the session
            with open(log, "wb") as out, contextlib.suppress(subprocess.TimeoutExpired):
                done = subprocess.run(
                    pinned(cpu, argv), stdout=subprocess.DEVNULL, stderr=out,
                    timeout=PROCESS_TIMEOUT_S, check=False,
                )  # fmt: skip
            if attempt:
                text = log.read_text(errors="replace")
                seen = parse_early_answer(text)
                if done.returncode != 0 or parse_log(text, asked.size).complete != 1:
                    failed += 1
                elif seen is not None:
                    timed.append(seen)
    return (statistics.median(timed) if timed else 0.0), failed
