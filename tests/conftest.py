from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest

from lanthorn import native
from tests import certs


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compiled modules older than their sources would be tested instead of them."""
    stale = [] if native.wanted_pure() else native.stale()
    if stale:
        pytest.exit(f"compiled modules older than their sources (run `make native`): {stale}", 3)


# Models and worker counts every integration suite runs against.
MODELS = [
    pytest.param(("asyncio", 1), id="asyncio"),
    pytest.param(("events", 1), id="events"),
    pytest.param(("threads", 1), id="threads"),
    pytest.param(("single", 1), id="single"),
    pytest.param(("asyncio", 2), id="asyncio-w2"),
]

INDEX = b"<!doctype html><title>test</title><p>hello from the test root</p>\n"
LARGE_SIZE = 3 * 1024 * 1024 + 17
SECRET = b"TOP-SECRET"  # in every file a request must never get
STYLES = b"".join(b".rule-%d { color: #%06x; }\n" % (i, i * 997) for i in range(400))


def _make_site(root: Path) -> None:
    (root / "index.html").write_bytes(INDEX)
    (root / "style.css").write_bytes(b"body{color:red}\n")
    (root / "app.js").write_bytes(b"console.log(1)\n")
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 100)
    (root / "photo.jpeg").write_bytes(b"\xff\xd8\xff" + b"\0" * 50)
    (root / "movie.swf").write_bytes(b"FWS" + b"\0" * 10)
    (root / "data.json").write_bytes(b'{"a": 1}\n')
    (root / "notes.txt").write_bytes(b"plain text\n")
    (root / "text..txt").write_bytes(b"dots inside\n")
    (root / "with space.txt").write_bytes(b"space\n")
    (root / "файл.txt").write_bytes(b"unicode name\n")
    (root / "noext").write_bytes(b"no extension\n")
    (root / ".secret").write_bytes(b"hidden dotfile\n")
    large = bytes(range(256)) * (LARGE_SIZE // 256) + b"x" * (LARGE_SIZE % 256)
    (root / "large.bin").write_bytes(large)
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(b"sub index\n")
    (root / "sub" / "page.html").write_bytes(b"sub page\n")
    (root / "sub" / ".hidden").write_bytes(b"hidden in sub\n")
    # Names a Windows server would read as a way out; the backslash rule refuses them.
    (root / "..\\..\\secret.txt").write_bytes(SECRET + b"-BACKSLASH\n")
    (root / "\\..\\..\\secret.txt").write_bytes(SECRET + b"-BACKSLASH\n")
    (root / "empty-dir").mkdir()
    (root / "empty.txt").write_bytes(b"")
    (root / "styles.css").write_bytes(STYLES)
    (root / "styles.css.gz").write_bytes(gzip.compress(STYLES))
    (root / "styles.css.br").write_bytes(brotli.compress(STYLES))


@pytest.fixture(scope="session")
def jail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory two levels above the served root (`jail/top/site`), seeded with
    secrets exactly where the traversal attempts in the tests would land if a `..`
    escaped: `jail/secret.txt`, `jail/etc/passwd`, `jail/top/secret.txt` and
    `jail/top/outside/secret.txt`."""
    path = tmp_path_factory.mktemp("jail")
    (path / "secret.txt").write_bytes(SECRET + b"-TWO-LEVELS-UP\n")
    (path / "etc").mkdir()
    (path / "etc" / "passwd").write_bytes(b"root:x:0:0:" + SECRET + b"-PASSWD\n")
    (path / "top").mkdir()
    (path / "top" / "secret.txt").write_bytes(SECRET + b"-ONE-LEVEL-UP\n")
    return path


@pytest.fixture(scope="session")
def outside(jail: Path) -> Path:
    """A directory beside the root holding a file that must never be served."""
    path = jail / "top" / "outside"
    path.mkdir()
    (path / "secret.txt").write_bytes(SECRET + b"-OUTSIDE-ROOT\n")
    return path


@pytest.fixture(scope="session")
def site(jail: Path, outside: Path) -> Path:
    root = jail / "top" / "site"
    root.mkdir()
    _make_site(root)
    os.symlink(outside / "secret.txt", root / "escape.txt")
    os.symlink(outside, root / "escape-dir")
    os.symlink(root / "notes.txt", root / "inside-link.txt")
    return root


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("scratch")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A test CA and a certificate it signed for localhost, 127.0.0.1 and ::1: (CA
    certificate, certificate chain, key)."""
    return certs.make(tmp_path_factory.mktemp("pki"))
