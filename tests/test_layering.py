"""Imports point down only (DESIGN §1). Every module's layer comes from where it lives —
its package (core/, protocol/, driver/, engines/) or, for a top-level module, the short
lists below — and each module's imports (absolute and relative, walked with ast) must
stay within what its layer may see. Below the driver, nothing does I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "lanthorn"

PACKAGE_LAYERS = ("core", "protocol", "driver", "engines")
# Top-level modules every layer may use (they do no I/O of their own at import).
BASE = frozenset(
    {
        "lanthorn.config",
        "lanthorn.errors",
        "lanthorn.clock",
        "lanthorn.logs",
        "lanthorn.metrics",
        "lanthorn.timers",
    }
)
# What the user runs: above every layer, may import anything.
APP = frozenset(
    {
        "lanthorn",
        "lanthorn.__main__",
        "lanthorn.cli",
        "lanthorn.native",
        "lanthorn.bench",
        "lanthorn.toolkit",
    }
)

# layer → lanthorn modules it may import (a name or its package prefix)
ALLOWED: dict[str, tuple[str, ...]] = {
    "base": ("lanthorn.errors", "lanthorn.config", "lanthorn.logs"),  # metrics counts records
    "core": ("lanthorn.core", "lanthorn.errors", "lanthorn.config", "lanthorn.clock"),
    # Adapters see the core's value types only: they translate, they never decide.
    "protocol": (
        "lanthorn.protocol",
        "lanthorn.core.request",
        "lanthorn.core.response",
        "lanthorn.errors",
        "lanthorn.config",
    ),
    "driver": ("lanthorn.driver", "lanthorn.core", "lanthorn.protocol", *BASE),
    # Engines see the driver layer, never the core or the protocol adapters.
    "engines": ("lanthorn.engines", "lanthorn.driver", *BASE),
    "app": ("lanthorn",),
}

# Modules that touch the outside world: none below the driver; the driver and the base
# modules only what is listed.
IO_MODULES = frozenset({
    "socket", "ssl", "select", "selectors", "asyncio", "threading", "multiprocessing",
    "signal", "subprocess", "uvloop", "mmap", "logging", "time", "os",
})  # fmt: skip
IO_ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"os", "time"}),  # for their pure parts only: see PURE
    "protocol": frozenset(),
    # The driver keeps time only as `now` passed in; it reads files (pread), builds TLS
    # sessions, logs, and shares counters between workers (mmap, with a lock).
    "driver": frozenset({"os", "ssl", "logging", "mmap", "threading", "time"}),
    "base": frozenset({"os", "time", "logging", "threading", "sys"}),
}
# What core may use of `os` and `time`: types and pure functions, no calls that reach the
# file system or the clock.
PURE = {
    "os": frozenset({"stat_result", "PathLike", "fspath", "sep"}),
    "time": frozenset({"strftime", "gmtime", "struct_time"}),
}
# The core's one door to the file system (DESIGN §1: reached through one small
# interface, injected; this is its real implementation).
IO_EXEMPT = frozenset({"lanthorn.core.files"})
# Engines never import the protocol libraries directly.
ENGINE_FORBIDDEN = frozenset(
    {"httptools", "h2", "hyperframe", "hpack", "aioquic", "qh3", "wsproto", "websockets"}
)


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = ["lanthorn", *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in PACKAGE_LAYERS:
        return parts[1]
    if module in BASE:
        return "base"
    if module in APP or ".".join(parts[:2]) in APP:
        return "app"
    return None  # a new top-level module: it must be given a place


def imports(module: str, source: str, is_package: bool = False) -> set[str]:
    """Absolute names imported, relative imports resolved against `module`."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                if node.module:
                    names.add(f"{prefix}.{node.module}")
                else:  # from . import a, b: each is a module of the package
                    names.update(f"{prefix}.{alias.name}" for alias in node.names)
            elif node.module:
                names.add(node.module)
                if node.module in PURE:  # from os import open: check the name itself
                    names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _impure_uses(source: str) -> set[str]:
    """`os.x` / `time.x` attribute uses that are not pure."""
    used: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            pure = PURE.get(node.value.id)
            if pure is not None and node.attr not in pure:
                used.add(f"{node.value.id}.{node.attr}")
    return used


def _does_io(layer: str, module: str, name: str) -> bool:
    if layer not in IO_ALLOWED or module in IO_EXEMPT:
        return False
    top = name.split(".", maxsplit=1)[0]
    if top in IO_MODULES - IO_ALLOWED[layer]:
        return True
    # core: `from os import open` is as impure as `os.open(...)`
    return layer == "core" and top in PURE and name != top and name.split(".")[1] not in PURE[top]


def problems(module: str, source: str, is_package: bool = False) -> list[str]:
    layer = layer_of(module)
    if layer is None:
        return [f"{module} belongs to no layer: place it in a package or in BASE/APP"]
    found = []
    names = imports(module, source, is_package)
    for name in sorted(names):
        top = name.split(".")[0]
        if top == "lanthorn" and not any(
            name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED[layer]
        ):
            found.append(f"{module} ({layer}) imports {name}")
        if _does_io(layer, module, name):
            found.append(f"{module} ({layer}) does I/O via {name}")
        if layer == "engines" and top in ENGINE_FORBIDDEN:
            found.append(f"{module} imports protocol library {name}")
    if layer == "core" and module not in IO_EXEMPT:
        found += [f"{module} (core) does I/O via {use}" for use in sorted(_impure_uses(source))]
    return found


def test_imports_point_down() -> None:
    found = []
    layers: dict[str, int] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        layer = layer_of(module)
        layers[str(layer)] = layers.get(str(layer), 0) + 1
        found += problems(module, path.read_text(), path.name == "__init__.py")
    assert found == []
    assert all(layers.get(layer, 0) >= 3 for layer in PACKAGE_LAYERS), layers


VIOLATIONS = {
    "an unplaced module": ("lanthorn.helpers", "x = 1\n"),
    "upward: core imports the driver": ("lanthorn.core.x", "from lanthorn.driver import Service\n"),
    "upward, relative": ("lanthorn.core.x", "from ..driver import Service\n"),
    "protocol decides": ("lanthorn.protocol.x", "from lanthorn.core.respond import Site\n"),
    "engines import the core": ("lanthorn.engines.x", "from lanthorn.core import cache\n"),
    "engines import a protocol": ("lanthorn.engines.x", "import lanthorn.protocol.http1\n"),
    "engines import h2": ("lanthorn.engines.x", "import h2.connection\n"),
    "a socket in protocol": ("lanthorn.protocol.x", "import socket\n"),
    "ssl in core": ("lanthorn.core.x", "import ssl\n"),
    "the clock in core": ("lanthorn.core.x", "import time\nt = time.monotonic()\n"),
    "the clock imported by name": ("lanthorn.core.x", "from time import monotonic\n"),
    "a file read in core": ("lanthorn.core.x", "import os\nfd = os.open('x', 0)\n"),
    "time in protocol": ("lanthorn.protocol.x", "import time\n"),
    "a selector in the driver": ("lanthorn.driver.x", "import selectors\n"),
    "a base module imports the driver": ("lanthorn.logs", "from lanthorn.driver import x\n"),
}


@pytest.mark.parametrize("case", VIOLATIONS)
def test_the_checker_catches_each_rule(case: str) -> None:
    module, source = VIOLATIONS[case]
    assert problems(module, source), case


def test_the_checker_passes_what_is_allowed() -> None:
    assert problems("lanthorn.core.x", "import os\nst: os.stat_result\n") == []
    assert problems("lanthorn.core.x", "import time\ntime.strftime('%Y', time.gmtime(0))\n") == []
    assert problems("lanthorn.driver.x", "from . import contract\nfrom .http1 import H\n") == []
    assert imports("lanthorn.driver", "from .http1 import H\n", is_package=True) == {
        "lanthorn.driver.http1"
    }
    assert problems("lanthorn.engines.x", "from lanthorn.driver import Service\n") == []
    assert problems("lanthorn.cli", "from lanthorn.core.respond import Site\n") == []
