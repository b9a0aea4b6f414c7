"""The file system as the core reaches it: one small interface, injectable for tests.

Contract "open, then describe" (DESIGN §3): `open` returns the open file together with
the `fstat` of that same descriptor, so size, mtime and validators describe exactly the
bytes that will be sent.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO, NamedTuple, Protocol


class OutsideRoot(Exception):
    """The name resolves (through a symlink) to something outside the document root."""


class Listed(NamedTuple):
    name: str
    is_dir: bool
    size: int
    mtime_s: float


class Opened(NamedTuple):
    file: BinaryIO | None  # None for a directory (nothing to read)
    stat: os.stat_result


class FileSource(Protocol):
    def open(self, relative: str) -> Opened:
        """Open a regular file or directory under the root.

        Raises FileNotFoundError (also for anything that is neither a regular file nor a
        directory), NotADirectoryError, PermissionError or OutsideRoot.
        """

    def stat(self, relative: str) -> os.stat_result | None:
        """Current status of the name, following symlinks; None when it is gone."""

    def list(self, relative: str) -> list[Listed]:
        """A directory's entries that resolve inside the root (symlinks followed)."""


class OsFileSource:
    """The real file system under `root`; symlinks may not leave the root unless allowed."""

    def __init__(self, root: str, *, follow_outside: bool = False) -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip("/") + "/"
        self._follow_outside = follow_outside

    def _path(self, relative: str) -> str:
        return f"{self._prefix}{relative}" if relative else self.root

    def open(self, relative: str) -> Opened:
        # O_NONBLOCK: opening a FIFO must never block the server.
        fd = os.open(self._path(relative), os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise FileNotFoundError(relative)
            if not self._follow_outside:
                self._check_inside(fd)
        except BaseException:
            os.close(fd)
            raise
        if stat.S_ISDIR(st.st_mode):
            os.close(fd)
            return Opened(None, st)
        return Opened(open(fd, "rb", buffering=0), st)

    def _check_inside(self, fd: int) -> None:
        # The descriptor's own path is race-free: it names what was actually opened,
        # whatever symlinks were swapped around it.
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # no /proc: fall back to resolving the name again
            real = os.path.realpath(f"/dev/fd/{fd}")
        if real != self.root and not real.startswith(self._prefix):
            raise OutsideRoot(real)

    def stat(self, relative: str) -> os.stat_result | None:
        try:
            return os.stat(self._path(relative))
        except OSError:
            return None

    def list(self, relative: str) -> list[Listed]:
        entries = []
        with os.scandir(self._path(relative)) as scan:
            for entry in scan:
                try:
                    st = entry.stat()
                    if not self._follow_outside and entry.is_symlink():
                        real = os.path.realpath(entry.path)
                        if real != self.root and not real.startswith(self._prefix):
                            continue
                except OSError:
                    continue  # vanished, or a dangling link
                is_dir = stat.S_ISDIR(st.st_mode)
                if is_dir or stat.S_ISREG(st.st_mode):
                    entries.append(Listed(entry.name, is_dir, st.st_size, st.st_mtime))
        return entries
