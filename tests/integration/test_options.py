"""Site options end to end, set from the command line and from a TOML file."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import STYLES
from tests.integration import rawhttp
from tests.servers import Server


@pytest.fixture(scope="module")
def app_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("app")
    (root / "index.html").write_bytes(b"<div id=app></div>")
    (root / "404.html").write_bytes(b"<h1>custom not found</h1>")
    (root / "app.css").write_bytes(STYLES)
    (root / "assets").mkdir()
    (root / "assets" / "main.3f2a.js").write_bytes(b"console.log('hashed')\n" * 50)
    (root / "files").mkdir()
    (root / "files" / "b.txt").write_bytes(b"b")
    (root / "files" / "a & <b>.txt").write_bytes(b"a")
    return root


@pytest.fixture(scope="module")
def cli_server(app_root: Path, scratch: Path) -> Iterator[Server]:
    with Server(
        app_root,
        *("--access-log", "off", "--compress", "--autoindex", "--header", "X-Frame-Options: DENY"),
        *("--cache-control", "assets/*=max-age=31536000, immutable"),
        *("--error-page", "404=/404.html"),
        tmp=scratch,
    ) as srv:
        yield srv


def test_on_the_fly_compression(cli_server: Server) -> None:
    r = rawhttp.get(cli_server.port, "/app.css", extra="Accept-Encoding: gzip\r\n")
    assert r.headers["content-encoding"] == "gzip" and gzip.decompress(r.body) == STYLES
    assert requests.get(cli_server.url("/app.css"), timeout=10).content == STYLES


def test_cache_control_and_extra_header(cli_server: Server) -> None:
    r = rawhttp.get(cli_server.port, "/assets/main.3f2a.js")
    assert r.headers["cache-control"] == "max-age=31536000, immutable"
    assert r.headers["x-frame-options"] == "DENY"


def test_autoindex_and_error_page(cli_server: Server) -> None:
    listing = rawhttp.get(cli_server.port, "/files/")
    assert listing.status == 200 and b"a &amp; &lt;b&gt;.txt" in listing.body
    data = json.loads(
        rawhttp.get(cli_server.port, "/files/", extra="Accept: application/json\r\n").body
    )
    assert [item["name"] for item in data] == ["a & <b>.txt", "b.txt"]
    missing = rawhttp.get(cli_server.port, "/nope.html")
    assert missing.status == 404 and missing.body == b"<h1>custom not found</h1>"


def test_toml_config_spa(app_root: Path, scratch: Path) -> None:
    config = scratch / "spa.toml"
    config.write_text(
        '[server]\naccess_log = "off"\n[site]\nspa = true\nnosniff = false\n'
        'headers = ["Referrer-Policy: no-referrer"]\n'
    )
    with Server(app_root, "--config", str(config), tmp=scratch) as srv:
        route = rawhttp.get(srv.port, "/dashboard/settings")
        assert route.status == 200 and route.body == b"<div id=app></div>"
        assert "x-content-type-options" not in route.headers
        assert route.headers["referrer-policy"] == "no-referrer"
        assert rawhttp.get(srv.port, "/missing.png").status == 404
