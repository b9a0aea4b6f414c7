"""Imports point down only (DESIGN §1): walk every module's imports with ast."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "lanthorn"

# layer → lanthorn modules it may import (prefix match)
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": ("lanthorn.core", "lanthorn.errors", "lanthorn.config", "lanthorn.clock"),
    "protocol": (
        "lanthorn.protocol",
        "lanthorn.core.request",
        "lanthorn.core.response",
        "lanthorn.errors",
        "lanthorn.config",
    ),
    "driver": (
        "lanthorn.core",
        "lanthorn.protocol",
        "lanthorn.errors",
        "lanthorn.config",
        "lanthorn.clock",
        "lanthorn.logs",
        "lanthorn.actions",
        "lanthorn.admission",
        "lanthorn.service",
        "lanthorn.streams",
        "lanthorn.tls",
    ),
    "engines": (
        "lanthorn.engines",
        "lanthorn.driver",
        "lanthorn.admission",
        "lanthorn.config",
        "lanthorn.clock",
        "lanthorn.errors",
    ),
}
# Modules that touch the outside world, forbidden below the engines.
IO_MODULES = {
    "socket",
    "selectors",
    "select",
    "asyncio",
    "threading",
    "multiprocessing",
    "signal",
    "subprocess",
    "uvloop",
    "logging",
}
IO_ALLOWED = {"core": set(), "protocol": set(), "driver": {"logging"}}
# Single modules with a reason: admission's counters take a lock (the threads engine's
# pool releases connections), and it does no I/O.
IO_ALLOWED_MODULES = {"admission.py": {"threading"}}
# Engines never import the protocol libraries directly.
ENGINE_FORBIDDEN = {"httptools", "h2", "hyperframe", "aioquic", "wsproto"}


def _layer(path: Path) -> str | None:
    rel = path.relative_to(SRC)
    if rel.parts[0] in ("core", "protocol", "engines"):
        return rel.parts[0]
    driver = ("actions.py", "admission.py", "driver.py", "service.py", "streams.py", "tls.py")
    if rel.name in driver:
        return "driver"
    return None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_imports_point_down() -> None:
    problems = []
    checked = 0
    for path in sorted(SRC.rglob("*.py")):
        layer = _layer(path)
        if layer is None:
            continue
        checked += 1
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("lanthorn") and not name.startswith(ALLOWED[layer]):
                problems.append(f"{path.relative_to(SRC)} imports {name}")
            allowed = IO_ALLOWED.get(layer, set()) | IO_ALLOWED_MODULES.get(path.name, set())
            if layer in IO_ALLOWED and top in IO_MODULES - allowed:
                problems.append(f"{path.relative_to(SRC)} ({layer}) does I/O via {name}")
            if layer == "engines" and top in ENGINE_FORBIDDEN:
                problems.append(f"{path.relative_to(SRC)} imports protocol library {name}")
    assert checked >= 15
    assert problems == []


def test_the_checker_catches_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import socket\nfrom lanthorn.driver import Service\n")
    assert _imports(bad) == {"socket", "lanthorn.driver"}
