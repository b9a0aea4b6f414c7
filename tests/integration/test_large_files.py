"""Files past 2 GiB are streamed (sendfile; over HTTP/3, window by window), never read
into memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import certs
from tests.integration import rawhttp
from tests.integration.h3client import H3Client
from tests.servers import Server

SIZE = 2**31 + 5 * 2**20 + 123  # past every 32-bit boundary
TAIL = b"--the end of a file larger than 2 GiB--"


@pytest.fixture(scope="module")
def huge_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("huge")
    with open(root / "huge.bin", "wb") as fh:  # sparse: costs no disk
        fh.seek(2**31 - 3)
        fh.write(b"MID")
        fh.seek(SIZE - len(TAIL))
        fh.write(TAIL)
    yield root
    (root / "huge.bin").unlink()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("model", ["asyncio", "events", "threads", "single"])
def test_huge_file_streams_whole(model: str, huge_root: Path, scratch: Path) -> None:
    with Server(huge_root, "--model", model, "--access-log", "off", tmp=scratch) as srv:
        head = rawhttp.get(srv.port, "/huge.bin", method="HEAD")
        assert head.headers["content-length"] == str(SIZE)
        with rawhttp.connect(srv.port) as sock:
            sock.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            buffer = bytearray()
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                assert chunk, f"closed before a full head: {bytes(buffer)!r}"
                buffer += chunk
            head_end = buffer.index(b"\r\n\r\n") + 4
            assert buffer.startswith(b"HTTP/1.1 200 OK")
            assert f"Content-Length: {SIZE}\r\n".encode() in buffer[:head_end]
            body = buffer[head_end:]
            received = len(body)
            digest = hashlib.sha256(body)
            peak_rss = 0
            view = memoryview(bytearray(1 << 20))
            while n := sock.recv_into(view):
                received += n
                digest.update(view[:n])
                if received % (256 << 20) < n:
                    peak_rss = max(peak_rss, _rss_kib(srv.proc.pid))
        assert received == SIZE
        expected = hashlib.sha256()
        with open(huge_root / "huge.bin", "rb") as fh:
            while chunk := fh.read(1 << 22):
                expected.update(chunk)
        assert digest.hexdigest() == expected.hexdigest()
        assert peak_rss < 200 * 1024  # never the file in memory


def test_huge_file_over_http3(huge_root: Path, scratch: Path, tmp_path: Path) -> None:
    """HTTP/3: the length, ranges across the 2 GiB boundary and at the end, and the
    first 32 MiB of the whole file with the server's memory flat (QUIC takes the body
    window by window)."""
    _, cert, key = certs.make(tmp_path)
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--access-log", "off")
    with Server(huge_root, *args, tmp=scratch) as srv:
        client = H3Client(srv.port, timeout=30)
        try:
            head = client.wait(client.request("/huge.bin", method="HEAD"))
            assert head.headers[b"content-length"] == str(SIZE).encode()
            middle = [(b"range", b"bytes=%d-%d" % (2**31 - 4, 2**31 + 1))]
            across = client.wait(client.request("/huge.bin", headers=middle))
            assert across.status == 206 and across.body == b"\0MID\0\0"
            tail = [(b"range", b"bytes=-%d" % len(TAIL))]
            assert client.wait(client.request("/huge.bin", headers=tail)).body == TAIL
            whole = client.responses[client.request("/huge.bin")]
            peak_rss = 0
            while len(whole.received) < 32 << 20 and not whole.ended:
                client.step()
                peak_rss = max(peak_rss, _rss_kib(srv.proc.pid))
            assert whole.status == 200 and len(whole.received) >= 32 << 20
            assert whole.received.count(0) == len(whole.received)  # (the file's start)
        finally:
            client.close()
    assert peak_rss < 200 * 1024
