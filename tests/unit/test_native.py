"""The compiled hot path (lanthorn/native.py): which modules run compiled, which are stale,
and LANTHORN_PURE."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from lanthorn import native

SUFFIX = EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so


def _package(tmp_path: Path) -> Path:
    """A checkout's package tree (src/lanthorn beside setup.py): `a` and `sub.b` have
    extensions, `c` has none, and an extension without a source (mypyc's shared
    runtime) is not a module of ours."""
    (tmp_path / "setup.py").write_text("")
    package = tmp_path / "src" / "lanthorn"
    (package / "sub").mkdir(parents=True)
    for name in ("a.py", "c.py", "sub/b.py"):
        (package / name).write_text("")
    for name in ("a", "sub/b", "0123abcd__mypyc"):
        (package / (name + SUFFIX)).write_bytes(b"")
    (package.parent / ("0123abcd__mypyc" + SUFFIX)).write_bytes(b"")  # where mypyc puts it
    return package


def test_extensions_beside_sources_are_the_compiled_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(native, "PACKAGE", _package(tmp_path))
    monkeypatch.delenv("LANTHORN_PURE", raising=False)
    assert native.compiled() == ["lanthorn.a", "lanthorn.sub.b"]
    assert native.describe() == "2 modules compiled"
    monkeypatch.setenv("LANTHORN_PURE", "0")  # only "1" means pure
    assert native.describe() == "2 modules compiled"
    monkeypatch.setenv("LANTHORN_PURE", "1")
    assert native.compiled() == []
    assert native.describe() == "pure Python"


def test_a_source_edited_after_its_build_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = _package(tmp_path)
    monkeypatch.setattr(native, "PACKAGE", package)
    built = (package / ("a" + SUFFIX)).stat().st_mtime
    os.utime(package / "a.py", (built - 10, built - 10))
    os.utime(package / "sub" / "b.py", (built - 10, built - 10))
    assert native.stale() == []
    os.utime(package / "sub" / "b.py", (built + 10, built + 10))
    assert native.stale() == ["lanthorn.sub.b"]
    # A module's own extension is a shim a rebuild may keep as it was: the build's time
    # is its newest extension's (here the shared library's, rebuilt after the edit).
    os.utime(package / ("a" + SUFFIX), (built - 100, built - 100))
    os.utime(package / "a.py", (built - 50, built - 50))
    runtime = package.parent / ("0123abcd__mypyc" + SUFFIX)
    os.utime(runtime, (built + 20, built + 20))
    assert native.stale() == []
    # Installed (no setup.py two levels up), the order an installer wrote files in
    # means nothing.
    (package.parent.parent / "setup.py").unlink()
    assert native.stale() == []


def _imported_from(env: dict[str, str]) -> str:
    code = "import lanthorn.driver.http1 as m; print(m.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_this_process_imports_what_native_reports() -> None:
    """Compiled where built (`make` builds them before the suite), else from source."""
    import lanthorn.driver.http1 as module

    from_source = (module.__file__ or "").endswith(".py")
    assert from_source == ("lanthorn.driver.http1" not in native.compiled())


def test_lanthorn_pure_imports_every_module_from_its_source() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LANTHORN_PURE"}
    built = (native.PACKAGE / "driver" / ("http1" + SUFFIX)).exists()
    assert _imported_from(env).endswith(SUFFIX if built else "driver/http1.py")
    assert _imported_from({**env, "LANTHORN_PURE": "1"}).endswith("driver/http1.py")


def test_lanthorn_pure_follows_the_package_path_as_spelled(tmp_path: Path) -> None:
    """The import system names a subpackage's directory after the package's __path__
    entry as written (`src/./lanthorn`): pure mode keys its finders the same way."""
    env = {**os.environ, "LANTHORN_PURE": "1", "PYTHONPATH": ""}
    src = native.PACKAGE.parent
    code = (
        f"import sys; sys.path.insert(0, {str(src) + '/./'!r}); "
        "import lanthorn.driver.http1 as m; print(m.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().endswith("driver/http1.py")
