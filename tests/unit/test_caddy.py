"""The Caddyfile the HTTP/3 bench runs Caddy with."""

from __future__ import annotations

from pathlib import Path

from lanthorn.bench.caddy import caddyfile
from lanthorn.bench.targets import Tls


def test_caddyfile_serves_the_root_over_h3_with_the_bench_certificate() -> None:
    tls = Tls(Path("/w/bench-cert.pem"), Path("/w/bench-key.pem"))
    text = caddyfile(43210, Path("/w/root"), tls)
    global_options, site = text.split("\n}\n", 1)
    assert global_options.startswith("{\n")
    options = [line.strip() for line in global_options.splitlines()]
    assert "admin off" in options  # no admin endpoint on :2019
    assert "auto_https off" in options  # no redirect listener on :80
    assert "protocols h1 h2 h3" in options
    lines = [line.strip() for line in site.splitlines()]
    assert lines[0] == "https://:43210 {" and lines[-1] == "}"
    assert set(lines[1:-1]) == {
        "bind 127.0.0.1",
        "tls /w/bench-cert.pem /w/bench-key.pem",
        "root * /w/root",
        "file_server",
    }  # and no `log`: Caddy then logs no requests
    assert text.count("{") == text.count("}")
