"""103 Early Hints (RFC 8297) with real clients: curl and nghttp over HTTP/2 (cleartext
and TLS), aioquic's client over HTTP/3, never over HTTP/1.1; and headless Chromium, which
starts the preloads long before a slow page has arrived."""

from __future__ import annotations

import datetime
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import chromium, rawhttp
from tests.integration.h3client import H3Client
from tests.servers import Server

INDEX = (
    b'<!doctype html><html><head><link rel=stylesheet href="/css/a.css">'
    b'<script src="js/b.js" defer></script></head><body><p>hinted</p></body></html>\n'
)
LINKS = [
    (b"link", b"</css/a.css>; rel=preload; as=style"),
    (b"link", b"<js/b.js>; rel=preload; as=script"),
]
# A page that arrives slowly: its stylesheet in its head (the scan finds it), its script
# named only in its last bytes, long past the scanned 32 KiB (--hint-link names it).
FILLER = b"<p>" + b"lorem ipsum dolor sit amet " * 30 + b"</p>\n"
PAGE = (
    b'<!doctype html><html><head><title>slow</title><link rel=stylesheet href="/css/a.css">'
    b"</head><body>" + FILLER * 2500 + b'<script src="/js/tail.js"></script></body></html>\n'
)
TAIL_HINT = "page.html=</js/tail.js>; rel=preload; as=script"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hinted")
    (path / "css").mkdir()
    (path / "js").mkdir()
    (path / "index.html").write_bytes(INDEX)
    (path / "page.html").write_bytes(PAGE)
    (path / "css" / "a.css").write_bytes(b"body { color: #123; }\n")
    (path / "js" / "b.js").write_bytes(b"window.b = true;\n")
    (path / "js" / "tail.js").write_bytes(b"window.tailRan = true;\n")
    return path


@pytest.fixture(scope="module")
def https(root: Path, scratch: Path, pki: tuple[Path, Path, Path]) -> Iterator[Server]:
    _, cert, key = pki
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--http3", "--access-log", "off")
    with Server(root, *args, tmp=scratch) as srv:
        yield srv
    assert "Traceback" not in srv.output(), srv.output()


def _curl(*args: str) -> list[list[str]]:
    """The response heads curl saw (each a list of lines), interim ones first."""
    argv = ["curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", "20", *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return [head.split("\n") for head in result.stdout.strip().split("\n\n")]  # (CRLF read as LF)


def test_curl_and_nghttp_get_the_103_over_cleartext_http2(root: Path, scratch: Path) -> None:
    with Server(root, "--access-log", "off", tmp=scratch) as srv:
        hinted, final = _curl("--http2-prior-knowledge", srv.url("/"))
        assert hinted == ["HTTP/2 103 ", *(f"{n.decode()}: {v.decode()}" for n, v in LINKS)]
        assert final[0] == "HTTP/2 200 "
        result = subprocess.run(
            ["nghttp", "-v", srv.url("/")], capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 0, result.stderr
        shown = [line.split(") ", 1)[1] for line in result.stdout.splitlines() if "recv (" in line]
        assert shown[:4] == [":status: 103", *(f"{n.decode()}: {v.decode()}" for n, v in LINKS),
                             ":status: 200"]  # fmt: skip
        assert INDEX.decode() in result.stdout
        assert [head[0] for head in _curl("--http2-prior-knowledge", srv.url("/css/a.css"))] == [
            "HTTP/2 200 "
        ]
        assert [head[0] for head in _curl("--http2-prior-knowledge", "-I", srv.url("/"))] == [
            "HTTP/2 200 "
        ]
    assert "Traceback" not in srv.output(), srv.output()


def test_over_tls_http2_has_them_http1_never(https: Server, pki: tuple[Path, Path, Path]) -> None:
    """Over TLS, ALPN h2 gets the 103; ALPN http/1.1 and cleartext HTTP/1.1 never do,
    with or without a client that says it would take it."""
    ca = str(pki[0])
    heads = _curl("--cacert", ca, "--http2", f"https://localhost:{https.port}/")
    assert [head[0] for head in heads] == ["HTTP/2 103 ", "HTTP/2 200 "]
    for head in _curl("--cacert", ca, "--http1.1", f"https://localhost:{https.port}/"):
        assert head[0].startswith("HTTP/1.1 200") and "link" not in " ".join(head).lower()


def test_http1_in_cleartext_never_gets_a_103(root: Path, scratch: Path) -> None:
    with Server(root, "--access-log", "off", tmp=scratch) as srv:
        response = rawhttp.get(srv.port, "/", extra="Accept: text/html\r\n")
    assert response.raw_head.startswith(b"HTTP/1.1 200 OK\r\n") and response.body == INDEX


def test_http3_gets_the_103_before_the_page(https: Server) -> None:
    client = H3Client(https.port)
    try:
        page = client.get("/")
        head = client.wait(client.request("/", "HEAD"))
    finally:
        client.close()
    assert page.interim == [[(b":status", b"103"), *LINKS]]
    assert (page.status, page.body) == (200, INDEX)
    assert head.interim == [] and head.status == 200


def test_no_early_hints_turns_them_off(root: Path, scratch: Path) -> None:
    with Server(root, "--access-log", "off", "--no-early-hints", tmp=scratch) as srv:
        heads = _curl("--http2-prior-knowledge", srv.url("/"))
    assert [head[0] for head in heads] == ["HTTP/2 200 "]


# --- a browser ------------------------------------------------------------------------------

# Resource Timing of the page and what it loaded, read in the page.
_TIMING = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = {};
  for (const e of performance.getEntriesByType('resource'))
    resources[new URL(e.name).pathname] = {initiator: e.initiatorType,
      requestStart: e.requestStart, responseEnd: e.responseEnd};
  return {origin: performance.timeOrigin, interim: nav.firstInterimResponseStart,
          responseEnd: nav.responseEnd, protocol: nav.nextHopProtocol, resources};
})()"""


def _served_at(srv: Server, paths: set[str]) -> dict[str, list[float]]:
    """When the server answered each path (wall clock, ms), from its JSON access log."""
    deadline = time.monotonic() + 10  # the access log is flushed about once a second
    while True:
        records = [json.loads(line) for line in srv.output().splitlines() if line.startswith("{")]
        served: dict[str, list[float]] = {}
        for record in records:
            at = datetime.datetime.fromisoformat(record["time"]).timestamp() * 1000
            served.setdefault(record["target"], []).append(at)
        if paths <= set(served) or time.monotonic() > deadline:
            return served
        time.sleep(0.1)


@pytest.mark.parametrize("case", ["h2", "h3", "off"])
def test_chromium_starts_the_preloads_before_the_page_has_arrived(
    case: str, root: Path, tmp_path: Path, scratch: Path, pki: tuple[Path, Path, Path]
) -> None:
    """Chromium, throttled to 1 MB/s (DevTools), loads the 2 MB page in about 2 s. With
    Early Hints the stylesheet (in the page's head) and the script (in its last bytes)
    both come from the 103's preloads (Resource Timing says `early-hints`, the server
    sees each once) and the server has answered both long before the last byte of the
    page arrived (its access log's time against the page's responseEnd: one machine,
    one clock); nothing but the 103 could have asked for the script that early. Without
    them ("off", over HTTP/2), the script is asked for in the second half of the page's
    arrival.

    The certificate is trusted (not --ignore-certificate-errors): Chromium keeps no
    response with a certificate error in its HTTP cache, where a preload waits for the
    page to use it. The assets have a max-age: a preload is used only while fresh."""
    protocol, hints = ("h3" if case == "h3" else "h2"), case != "off"
    ca, cert, key = pki
    args = ["--tls-cert", str(cert), "--tls-key", str(key), "--access-log-format", "json",
            "--access-log", "-", "--cache-control", ".css=max-age=600",
            "--cache-control", ".js=max-age=600", "--hint-link", TAIL_HINT]  # fmt: skip
    args += [] if hints else ["--no-early-hints"]
    home = chromium.trusting_home(tmp_path / "home", ca)
    with Server(root, *args, tmp=scratch) as srv:
        flags = [f"--origin-to-force-quic-on=127.0.0.1:{srv.port}"] if protocol == "h3" else []
        with (
            chromium.launch(tmp_path / "profile", *flags, home=home) as (_, devtools),
            chromium.open_page(devtools, "about:blank") as page,
        ):
            page.call("Network.enable")
            slow = {"offline": False, "latency": 0, "downloadThroughput": 1e6,
                    "uploadThroughput": 1e6}  # fmt: skip
            page.call("Network.emulateNetworkConditions", slow)
            page.call("Page.navigate", {"url": srv.url("/page.html")})
            page.until("window.tailRan === true && document.readyState === 'complete'", 30)
            timing: dict[str, Any] = page.evaluate(_TIMING)
        served = _served_at(srv, {"/page.html", "/css/a.css", "/js/tail.js"})
    assert "Traceback" not in srv.output(), srv.output()
    assert timing["protocol"] == protocol and timing["responseEnd"] > 1000
    page_end = timing["origin"] + timing["responseEnd"]  # wall clock, ms
    css, tail = timing["resources"]["/css/a.css"], timing["resources"]["/js/tail.js"]
    if not hints:
        assert timing["interim"] == 0 and tail["initiator"] == "script"
        assert tail["requestStart"] > timing["responseEnd"] / 2
        return
    assert timing["interim"] > 0  # the 103 came
    assert (css["initiator"], tail["initiator"]) == ("early-hints", "early-hints")
    assert len(served["/css/a.css"]) == len(served["/js/tail.js"]) == 1
    assert css["responseEnd"] < timing["responseEnd"] / 2
    assert max(served["/css/a.css"][0], served["/js/tail.js"][0]) < page_end - 1000
