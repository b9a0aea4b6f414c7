"""HTTP/1.1 behaviour (RFC 9110/9112) on every model, through several real clients."""

from __future__ import annotations

import email.utils
import http.client
import os
import stat
import subprocess
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
import requests

from tests.conftest import INDEX, LARGE_SIZE, SECRET
from tests.integration import rawhttp
from tests.servers import Server


def test_get_index_with_required_headers(server: Server) -> None:
    """RFC 9110 §6.6.1 Date, §10.2.4 Server; 200 carries length, type, Last-Modified."""
    r = rawhttp.get(server.port, "/")
    assert r.status == 200
    assert r.body == INDEX
    assert r.headers["content-type"] == "text/html"
    assert r.headers["content-length"] == str(len(INDEX))
    assert r.headers["server"] == "lanthorn"
    assert r.headers["connection"] == "close"
    assert email.utils.parsedate_to_datetime(r.headers["date"]) is not None
    assert email.utils.parsedate_to_datetime(r.headers["last-modified"]) is not None
    assert r.headers["etag"].startswith('"')


def test_head_has_get_headers_and_no_body(server: Server) -> None:
    """RFC 9110 §9.3.2: HEAD is GET without the content."""
    for path in ("/", "/large.bin"):
        get = rawhttp.get(server.port, path)
        with rawhttp.connect(server.port) as sock:
            sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            raw = rawhttp.read_until_closed(sock)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert body == b""
        assert b"HTTP/1.1 200 OK" in head
        assert f"Content-Length: {len(get.body)}".encode() in head


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("index.html", "text/html"),
        ("style.css", "text/css"),
        ("app.js", "application/javascript"),
        ("photo.jpg", "image/jpeg"),
        ("photo.jpeg", "image/jpeg"),
        ("movie.swf", "application/x-shockwave-flash"),
        ("data.json", "application/json"),
        ("notes.txt", "text/plain"),
        ("noext", "application/octet-stream"),
        ("large.bin", "application/octet-stream"),
    ],
)
def test_content_type_as_nginx(server: Server, name: str, ctype: str) -> None:
    r = requests.get(server.url(f"/{name}"), timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == ctype


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/with%20space.txt", b"space\n"),
        ("/text..txt", b"dots inside\n"),
        ("/%D1%84%D0%B0%D0%B9%D0%BB.txt", b"unicode name\n"),
        ("/notes.txt?x=1&y=../../etc", b"plain text\n"),
        ("/sub/", b"sub index\n"),
        ("/sub/page.html", b"sub page\n"),
        ("/sub/../notes.txt", b"plain text\n"),
        ("/./notes.txt", b"plain text\n"),
        ("//notes.txt", b"plain text\n"),
        ("/inside-link.txt", b"plain text\n"),
        ("/empty.txt", b""),
        ("http://example.org/notes.txt", b"plain text\n"),
    ],
)
def test_lookup(server: Server, target: str, body: bytes) -> None:
    r = rawhttp.get(server.port, target)
    assert (r.status, r.body) == (200, body)


def test_directory_without_slash_redirects_keeping_query(server: Server) -> None:
    r = rawhttp.get(server.port, "/sub?a=1&b=2")
    assert r.status == 301
    assert r.headers["location"] == "/sub/?a=1&b=2"
    followed = requests.get(server.url("/sub"), timeout=10)  # a real client follows it
    assert followed.status_code == 200 and followed.content == b"sub index\n"
    assert followed.history[0].status_code == 301


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/missing.html", 404),
        ("/notes.txt/", 404),
        ("/empty-dir/", 403),
        ("/.secret", 404),  # exists: hidden without --dotfiles
        ("/sub/.hidden", 404),  # exists too
    ],
)
def test_not_served(server: Server, target: str, status: int) -> None:
    r = rawhttp.get(server.port, target)
    assert r.status == status
    assert r.headers["content-type"] == "text/html"


def test_dotfiles_served_only_when_allowed(site: Path, scratch: Path) -> None:
    """The dotfiles above are real files: `--dotfiles` serves them, the default does not."""
    targets = {"/.secret": b"hidden dotfile\n", "/sub/.hidden": b"hidden in sub\n"}
    with Server(site, "--dotfiles", "--access-log", "off", tmp=scratch) as srv:
        for target, body in targets.items():
            assert (site / target[1:]).read_bytes() == body
            r = rawhttp.get(srv.port, target)
            assert (r.status, r.body) == (200, body)


@pytest.fixture(scope="module")
def special_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root holding a FIFO (no writer: a blocking open would hang) and a character
    device (/dev/zero: endless), besides a plain file."""
    root = tmp_path_factory.mktemp("special")
    (root / "plain.txt").write_bytes(b"plain\n")
    os.mkfifo(root / "fifo")
    try:
        os.mknod(root / "zero", stat.S_IFCHR | 0o644, os.makedev(1, 5))
    except PermissionError:  # not root: the system's own device, through a symlink
        os.symlink("/dev/zero", root / "zero")
    return root


@pytest.mark.parametrize("model", ["asyncio", "events", "threads", "single"])
def test_fifo_and_device_are_not_served(model: str, special_root: Path, scratch: Path) -> None:
    """Only regular files and directories are served: a FIFO or device is a 404, answered
    at once (the open must not block), and the server goes on serving. --follow-symlinks
    leaves the file-type check as the only thing refusing them."""
    args = ("--model", model, "--follow-symlinks", "--access-log", "off")
    with Server(special_root, *args, tmp=scratch) as srv:
        for target in ("/fifo", "/zero", "/fifo", "/zero"):  # twice: nothing was cached
            r = rawhttp.get(srv.port, target)  # times out (10 s) if the server hangs
            assert (r.status, r.headers["content-type"]) == (404, "text/html")
            head = rawhttp.get(srv.port, target, method="HEAD")
            assert head.status == 404
        assert rawhttp.get(srv.port, "/plain.txt").body == b"plain\n"
    assert "Traceback" not in srv.output()


# Each `..` row lands on a real file outside the root (see the `jail` fixture: the root is
# jail/top/site), so it would serve a secret if a `..` ever escaped. "{up}" climbs from the
# root all the way to "/".
ESCAPES = [
    "/../outside/secret.txt",  # jail/top/outside/secret.txt
    "/..%2f..%2fsecret.txt",  # jail/secret.txt
    "/%2e%2e/%2e%2e/etc/passwd",  # jail/etc/passwd
    "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",  # jail/etc/passwd
    "/sub/../../secret.txt",  # jail/top/secret.txt
    "/sub/%2e%2e/%2e%2e/%2e%2e/secret.txt",  # jail/secret.txt
    "/escape.txt",  # a symlink to jail/top/outside/secret.txt
    "/escape-dir/secret.txt",  # a symlink to jail/top/outside
    "{up}/etc/passwd",  # the system's own
    "{up}{jail}/secret.txt",  # by its absolute name
]


def _aim(target: str, site: Path, jail: Path) -> str:
    return target.format(up="/.." * len(site.parts), jail=jail)


@pytest.mark.parametrize("target", ESCAPES)
def test_nothing_outside_the_root(server: Server, site: Path, jail: Path, target: str) -> None:
    target = _aim(target, site, jail)
    # The row is only worth something if it names a real file outside the root.
    aimed = Path(os.path.realpath(f"{site}/{unquote(target)}"))
    assert aimed.is_file() and not aimed.is_relative_to(site), aimed
    assert SECRET in aimed.read_bytes() or aimed == Path("/etc/passwd")
    r = rawhttp.get(server.port, target)
    assert r.status == 403
    assert SECRET not in r.body and b"root:" not in r.body


@pytest.mark.parametrize(
    ("target", "status"),
    [
        # Not separators on POSIX, but refused so that no Windows-style path reaches the
        # file system, even where a file has that very name (see `_make_site`).
        ("/..\\..\\secret.txt", 403),
        ("/%5c..%5c..%5csecret.txt", 403),
        ("/notes.txt%00.html", 404),  # NUL can name no file
    ],
)
def test_backslash_and_nul_refused(server: Server, target: str, status: int) -> None:
    r = rawhttp.get(server.port, target)
    assert r.status == status
    assert SECRET not in r.body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE"])
def test_other_methods_405_with_allow(server: Server, method: str) -> None:
    """RFC 9110 §15.5.6: a 405 MUST carry Allow."""
    r = rawhttp.get(server.port, "/", method=method, extra="Content-Length: 0\r\n")
    assert r.status == 405
    assert r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_options(server: Server) -> None:
    r = rawhttp.get(server.port, "/", method="OPTIONS")
    assert r.status == 204
    assert r.headers["allow"] == "GET, HEAD, OPTIONS"
    r = rawhttp.get(server.port, "*", method="OPTIONS")
    assert r.status == 204


def test_keep_alive_and_pipelining_in_order(server: Server) -> None:
    """RFC 9112 §9.3: persistent by default; §9.3.2 pipelined responses in order."""
    names = ["notes.txt", "style.css", "text..txt", "missing", "sub/page.html"] * 4
    batch = "".join(f"GET /{n} HTTP/1.1\r\nHost: t\r\n\r\n" for n in names).encode()
    with rawhttp.connect(server.port) as sock:
        sock.sendall(batch)
        buffer = bytearray()
        got = [rawhttp.read_response(sock, buffer) for _ in names]
        assert all(r.headers["connection"] == "keep-alive" for r in got)
        # the connection is still usable afterwards
        sock.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        last = rawhttp.read_response(sock, buffer)
    expected = [200, 200, 200, 404, 200] * 4
    assert [r.status for r in got] == expected
    assert got[0].body == b"plain text\n" and got[2].body == b"dots inside\n"
    assert last.headers["connection"] == "close"


def test_pipelined_large_bodies_in_order(server: Server) -> None:
    names = ["large.bin", "notes.txt"] * 5
    batch = "".join(f"GET /{n} HTTP/1.1\r\nHost: t\r\n\r\n" for n in names).encode()
    with rawhttp.connect(server.port) as sock:
        sock.sendall(batch)
        buffer = bytearray()
        got = [rawhttp.read_response(sock, buffer) for _ in names]
    assert [len(r.body) for r in got] == [LARGE_SIZE, 11] * 5


def test_http10_closes_unless_keep_alive(server: Server) -> None:
    with rawhttp.connect(server.port) as sock:
        sock.sendall(b"GET /notes.txt HTTP/1.0\r\n\r\n")
        raw = rawhttp.read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in raw and raw.endswith(b"plain text\n")
    with rawhttp.connect(server.port) as sock:
        sock.sendall(b"GET /notes.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        buffer = bytearray()
        first = rawhttp.read_response(sock, buffer)
        assert first.headers["connection"] == "keep-alive"
        sock.sendall(b"GET /style.css HTTP/1.0\r\n\r\n")
        second = rawhttp.read_response(sock, buffer)
        assert second.body == b"body{color:red}\n"
        assert sock.recv(1) == b""


def test_connection_close_honoured(server: Server) -> None:
    with rawhttp.connect(server.port) as sock:
        sock.sendall(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        raw = rawhttp.read_until_closed(sock)
    assert raw.count(b"HTTP/1.1 200") == 1


def test_http_client_keep_alive_session(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", "/large.bin")
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200 and len(data) == LARGE_SIZE
        conn.request("HEAD", "/notes.txt")
        resp = conn.getresponse()
        assert resp.read() == b"" and resp.getheader("Content-Length") == "11"
    finally:
        conn.close()


def test_large_file_integrity(server: Server, site: Path) -> None:
    with requests.get(server.url("/large.bin"), timeout=30, stream=True) as r:
        data = b"".join(r.iter_content(1 << 16))
    assert data == (site / "large.bin").read_bytes()


def test_httpx(server: Server) -> None:
    with httpx.Client(base_url=server.url(""), timeout=10) as client:
        r = client.get("/style.css")
        assert r.status_code == 200 and r.text == "body{color:red}\n"
        assert r.http_version == "HTTP/1.1"
        assert client.get("/nope").status_code == 404


def test_curl(server: Server) -> None:
    out = subprocess.run(
        ["curl", "-sS", "-i", "--max-time", "10", server.url("/with%20space.txt")],
        capture_output=True,
        check=True,
    ).stdout
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert out.endswith(b"\r\n\r\nspace\n")
    code = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--path-as-is",
            "--max-time",
            "10",
            server.url("/../../etc/passwd"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert code == b"403"
