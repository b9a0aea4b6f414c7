"""The compiled hot path: which of lanthorn's modules run as extension modules.

`make` compiles the modules setup.py lists (the per-request path of HTTP/1.1 and
HTTP/2 and the engines that carry it) with mypyc into extension modules beside their
sources, and Python imports an extension before a source of the same name. The code is
the same typed Python either way; compiled, a small request costs the server about half
the CPU (docs/bench.md). Without them (`pip install .`) every module runs as Python.

LANTHORN_PURE=1 makes a process import every module from its source even where an
extension exists: for what must see Python frames (the fuzzer's coverage, profilers,
debuggers) and for the test run that checks the pure form.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, SOURCE_SUFFIXES, FileFinder, SourceFileLoader
from pathlib import Path

PACKAGE = Path(__file__).parent  # as the package's __path__ names it


def _extensions() -> dict[str, tuple[Path, Path]]:
    """Each module with an extension beside its source: dotted name → (source,
    extension)."""
    found: dict[str, tuple[Path, Path]] = {}
    for suffix in sorted(EXTENSION_SUFFIXES, key=len, reverse=True):
        for extension in PACKAGE.rglob("*" + suffix):
            source = extension.with_name(extension.name[: -len(suffix)] + ".py")
            if source.exists():
                parts = source.relative_to(PACKAGE).with_suffix("").parts
                found.setdefault(".".join(("lanthorn", *parts)), (source, extension))
    return found


def wanted_pure() -> bool:
    """Whether LANTHORN_PURE=1 asks for every module from its source."""
    return os.environ.get("LANTHORN_PURE") == "1"


def compiled() -> list[str]:
    """The modules this process imports compiled, by dotted name (none when pure)."""
    return [] if wanted_pure() else sorted(_extensions())


def describe() -> str:
    """For `lanthorn --version`: how the hot path runs here."""
    count = len(compiled())
    return f"{count} modules compiled" if count else "pure Python"


def stale() -> list[str]:
    """In a checkout (src/lanthorn beside setup.py, where `make native` builds in place),
    the compiled modules whose source changed after the build: the extension is what
    runs, so the change is not. The build's time is its newest extension's (each module's
    own extension is a small shim that is kept as it was when its C source did not
    change; the code is in the shared `*__mypyc*` library beside the package). An
    installed package is never stale: an installer writes files in any order."""
    if not (PACKAGE.parent.parent / "setup.py").exists():
        return []
    modules = _extensions()
    shared = PACKAGE.parent.glob("*__mypyc*")
    built = max(
        (p.stat().st_mtime for p in (*(ext for _, ext in modules.values()), *shared)),
        default=0.0,
    )
    return sorted(name for name, (source, _) in modules.items() if source.stat().st_mtime > built)


def pure() -> None:
    """From now on, import lanthorn's modules from their sources (those imported
    already stay as they are): each of the package's directories, as the package's
    `__path__` spells it (which is how the import system names them), gets a finder
    that knows source files only."""
    hook = FileFinder.path_hook((SourceFileLoader, SOURCE_SUFFIXES))
    for entry in sys.modules["lanthorn"].__path__:
        for init in Path(entry).rglob("__init__.py"):
            relative = init.parent.relative_to(entry).parts
            directory = os.path.join(entry, *relative) if relative else entry
            sys.path_importer_cache[directory] = hook(directory)
