"""`--access-log-format json`: one object per line, the same keys on every line, over
every protocol that makes records (HTTP/1.0 and 1.1, HTTP/2 cleartext and over TLS,
HTTP/3, WebSockets), and hostile bytes kept inside their line. Combined stays as it was
(tests/unit/test_logs.py)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests import certs
from tests.integration import rawhttp
from tests.integration.h3client import H3Client
from tests.servers import Server

KEYS = {
    "time", "remote", "method", "target", "protocol", "status", "bytes", "duration", "tls",
    "referer", "user_agent", "lived",
}  # fmt: skip


def _records(server: Server, log: Path) -> list[dict[str, Any]]:
    """Every line of the log once the server has stopped (which flushes it)."""
    assert server.stop() == 0, server.output()
    assert "Traceback" not in server.output(), server.output()
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for record in records:
        assert set(record) == KEYS, record
    return records


def _one(records: list[dict[str, Any]], target: str) -> dict[str, Any]:
    (found,) = [r for r in records if r["target"] == target]
    return found


def test_cleartext_http1_h2c_and_websocket(site: Path, scratch: Path) -> None:
    log = scratch / "json-clear.log"
    args = ("--access-log", str(log), "--access-log-format", "json", "--ws-echo", "/echo")
    with Server(site, *args, tmp=scratch) as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
        conn.request(
            "GET", "/index.html?one", headers={"Referer": "http://r/", "User-Agent": "t/1"}
        )
        assert conn.getresponse().read()
        conn.request("HEAD", "/style.css")
        conn.getresponse().read()
        conn.close()
        with rawhttp.connect(srv.port) as sock:
            sock.sendall(b"GET /notes.txt HTTP/1.0\r\n\r\n")
            assert rawhttp.read_response(sock, bytearray()).status == 200
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            assert client.get(srv.url("/data.json")).status_code == 200
            assert client.get(srv.url("/missing")).status_code == 404
        with connect(f"ws://{srv.host}:{srv.port}/echo", open_timeout=10) as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "hello"
        records = _records(srv, log)
    first = _one(records, "/index.html?one")
    assert first["method"] == "GET" and first["protocol"] == "HTTP/1.1"
    assert first["status"] == 200 and first["bytes"] == (site / "index.html").stat().st_size
    assert first["referer"] == "http://r/" and first["user_agent"] == "t/1"
    assert first["remote"] == "127.0.0.1" and first["tls"] is None and first["lived"] is None
    assert 0 <= first["duration"] < 5
    assert first["time"][:4].isdigit() and first["time"][10] == "T"  # ISO 8601, with offset
    head = _one(records, "/style.css")
    assert head["method"] == "HEAD" and head["bytes"] == 0
    assert _one(records, "/notes.txt")["protocol"] == "HTTP/1.0"
    h2 = _one(records, "/data.json")
    assert h2["protocol"] == "HTTP/2.0" and h2["tls"] is None and h2["status"] == 200
    assert _one(records, "/missing")["status"] == 404
    socket_record = _one(records, "/echo")
    assert socket_record["status"] == 101 and socket_record["protocol"] == "HTTP/1.1"
    assert socket_record["duration"] == pytest.approx(socket_record["lived"], abs=0.001)


def test_over_tls_http1_http2_and_http3(site: Path, scratch: Path) -> None:
    directory = scratch / "json-pki"
    directory.mkdir(exist_ok=True)
    _, cert, key = certs.make(directory)
    log = scratch / "json-tls.log"
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--http3", "--tls-min", "1.3")
    with Server(
        site, *args, "--access-log", str(log), "--access-log-format", "json", tmp=scratch
    ) as srv:
        context = ssl.create_default_context(cafile=str(directory / "ca.pem"))
        conn = http.client.HTTPSConnection("localhost", srv.port, context=context, timeout=10)
        conn.request("GET", "/notes.txt")
        assert conn.getresponse().read() == b"plain text\n"
        conn.close()
        with httpx.Client(http2=True, verify=context, timeout=10) as client:
            response = client.get(f"https://localhost:{srv.port}/app.js")
            assert response.http_version == "HTTP/2"
        h3 = H3Client(srv.port)
        try:
            assert h3.get("/style.css").status == 200
        finally:
            h3.close()
        records = _records(srv, log)
    for target, protocol in (
        ("/notes.txt", "HTTP/1.1"),
        ("/app.js", "HTTP/2.0"),
        ("/style.css", "HTTP/3.0"),
    ):
        record = _one(records, target)
        assert (record["protocol"], record["tls"], record["status"]) == (protocol, "TLSv1.3", 200)


def test_hostile_bytes_stay_on_their_line(site: Path, scratch: Path) -> None:
    log = scratch / "json-hostile.log"
    with Server(site, "--access-log", str(log), "--access-log-format", "json", tmp=scratch) as srv:
        for head in (
            b'GET /x"},{\\y HTTP/1.1\r\nHost: a\r\nUser-Agent: ev"il\\ \xff\xfe\r\n\r\n',
            b"GET /\r\nFAKE\r\n\r\n",  # not HTTP: 400, the request unparsed
            b"GET /a\xff\x1b[31m HTTP/1.1\r\nHost: a\r\nUser-Agent: a\x7f\r\n\r\n",  # 400 too
        ):
            with socket.create_connection((srv.host, srv.port), timeout=10) as sock:
                sock.sendall(head)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
        records = _records(srv, log)
    assert len(records) == 3  # one line each, whatever they held
    assert all(line.isascii() for line in log.read_text().splitlines())
    (parsed,) = [r for r in records if r["target"] is not None]
    assert parsed["target"] == '/x"},{\\y'
    assert parsed["user_agent"] == 'ev"il\\ \\xff\\xfe'  # not UTF-8: escaped as \xHH
    assert parsed["status"] == 403  # a backslash in a path is refused
    unparsed = [r for r in records if r["target"] is None]
    assert [(r["status"], r["method"], r["protocol"]) for r in unparsed] == [(400, None, None)] * 2
