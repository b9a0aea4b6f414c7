from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MODELS
from tests.integration import chromium
from tests.servers import Server


def model_server(
    request: pytest.FixtureRequest, site: Path, scratch: Path, *extra: str
) -> Iterator[Server]:
    """A server of the (model, workers) a fixture is parametrised with (MODELS), with
    `extra` options; after it stops, its log must show no traceback."""
    model, workers = request.param
    with Server(
        site,
        *("--model", model, "--workers", str(workers), "--access-log", "off", *extra),
        tmp=scratch,
    ) as srv:
        yield srv
    assert "Traceback" not in srv.output(), srv.output()


@pytest.fixture(scope="module", params=MODELS)
def server(request: pytest.FixtureRequest, site: Path, scratch: Path) -> Iterator[Server]:
    yield from model_server(request, site, scratch)


def lanthorn(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run `python -m lanthorn ARGS` (a toolkit command) and return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "lanthorn", *args],
        input=stdin, capture_output=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Headless Chromium and its DevTools port (tests.integration.chromium)."""
    with chromium.launch(tmp_path / "profile") as launched:
        yield launched
