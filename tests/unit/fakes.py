"""A fake file system for core table tests: paths → bytes (or directories)."""

from __future__ import annotations

import io
import os
import stat
from typing import BinaryIO

from lanthorn.core.files import Listed, Opened, OutsideRoot

MTIME = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT


class FakeSource:
    def __init__(self, files: dict[str, bytes | None], outside: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        """`files`: relative name → content, or None for a directory ("" is the root)."""
        self.files = {"": None, **files}
        self.outside = outside
        self.mtime = MTIME
        self.opened: list[BinaryIO] = []

    def _stat(self, relative: str) -> os.stat_result:
        content = self.files[relative]
        mode = stat.S_IFDIR | 0o755 if content is None else stat.S_IFREG | 0o644
        size = 0 if content is None else len(content)
        ino = abs(hash(relative)) % 10**6
        ns = self.mtime * 10**9
        fields = (mode, ino, 1, 1, 0, 0, size, self.mtime, self.mtime, self.mtime)
        extra = {"st_atime_ns": ns, "st_mtime_ns": ns, "st_ctime_ns": ns}
        return os.stat_result(fields, extra)

    def open(self, relative: str) -> Opened:
        if relative in self.outside:
            raise OutsideRoot(relative)
        if relative not in self.files:
            parent = relative.rpartition("/")[0]
            if self.files.get(parent, None) is not None:
                raise NotADirectoryError(relative)
            raise FileNotFoundError(relative)
        content = self.files[relative]
        if content is None:
            return Opened(None, self._stat(relative))
        handle = io.BytesIO(content)
        self.opened.append(handle)
        return Opened(handle, self._stat(relative))

    def stat(self, relative: str) -> os.stat_result | None:
        return self._stat(relative) if relative in self.files else None

    def list(self, relative: str) -> list[Listed]:
        prefix = f"{relative}/" if relative else ""
        return [
            Listed(name[len(prefix) :], content is None, len(content or b""), self.mtime)
            for name, content in self.files.items()
            if name.startswith(prefix) and name != relative and "/" not in name[len(prefix) :]
        ]
