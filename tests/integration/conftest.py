from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MODELS
from tests.servers import Server


@pytest.fixture(scope="module", params=MODELS)
def server(request: pytest.FixtureRequest, site: Path, scratch: Path) -> Iterator[Server]:
    model, workers = request.param
    with Server(
        site, "--model", model, "--workers", str(workers), "--access-log", "off", tmp=scratch
    ) as srv:
        yield srv
    assert "Traceback" not in srv.output(), srv.output()
