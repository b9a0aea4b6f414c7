"""Fuzz targets: each module has `fuzz(data: bytes) -> None`, which returns for any input
and raises (an assertion, or the bug's own exception) only when an invariant breaks."""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

NAMES = (
    "http1", "http2", "streams", "paths", "ranges", "conditional", "encodings", "websocket",
    "http3",
)  # fmt: skip


def load(name: str) -> Callable[[bytes], None]:
    if name not in NAMES:
        raise KeyError(f"no fuzz target {name!r}; known: {', '.join(NAMES)}")
    module = importlib.import_module(f"tests.fuzz.targets.{name}")
    target: Callable[[bytes], None] = module.fuzz
    return target


def scratch(name: str) -> Path:
    """A directory for a target's files, under $LANTHORN_FUZZ_TMP if set (the test runs
    point it into their own temporary directory), removed at exit."""
    path = Path(
        tempfile.mkdtemp(prefix=f"lanthorn-fuzz-{name}-", dir=os.environ.get("LANTHORN_FUZZ_TMP"))
    )
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
