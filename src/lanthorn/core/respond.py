"""decide(): request → ResponsePlan. The one place every protocol and engine asks.

Order of decisions (RFC 9110): method (§9.1, 405 with Allow §15.5.6) → target form and
path safety → lookup (directory redirects, index files) → representation headers.
"""

from __future__ import annotations

import errno
import os
from urllib.parse import quote

from lanthorn.clock import http_date
from lanthorn.config import SiteConfig
from lanthorn.core.cache import PlanCache
from lanthorn.core.files import FileSource, Opened, OsFileSource, OutsideRoot
from lanthorn.core.mime import content_type
from lanthorn.core.paths import PathRejected, safe_path, split_target
from lanthorn.core.request import Request
from lanthorn.core.response import REASONS, FileBody, ResponsePlan

ALLOW = b"GET, HEAD, OPTIONS"
_READ_METHODS = (b"GET", b"HEAD")


def _page(status: int) -> bytes:
    title = f"{status} {REASONS[status].decode()}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>lanthorn</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def _error_plan(status: int, extra: list[tuple[bytes, bytes]]) -> ResponsePlan:
    body = _page(status)
    headers = [
        (b"content-type", b"text/html"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    return ResponsePlan(status, headers, body)


# Shared, never-mutated plans for every error status (adapters memoise their wire form).
ERRORS: dict[int, ResponsePlan] = {
    status: _error_plan(status, [(b"allow", ALLOW)] if status == 405 else [])
    for status in REASONS
    if status >= 400
}
OPTIONS_PLAN = ResponsePlan(204, [(b"allow", ALLOW)], b"")


def error(status: int) -> ResponsePlan:
    return ERRORS[status]


def etag(st: os.stat_result) -> bytes:
    """A strong validator (RFC 9110 §8.8.3) from inode, mtime and size."""
    return f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'.encode()


def _open_failure_status(exc: Exception) -> int:
    """Why a name could not be opened → status. Nothing here is the client's fault
    except asking for what is not there (404) or not allowed (403)."""
    if isinstance(exc, OutsideRoot | PermissionError):
        return 403
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
        return 503  # out of descriptors or memory: try again later
    return 404  # ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, ENXIO, ...


def _redirect_to_directory(parts: tuple[str, ...], query: bytes) -> ResponsePlan:
    """301 to the slash-terminated directory (RFC 9110 §15.4.2). The Location is rebuilt
    from the normalised path, re-encoded, so it is always a path-absolute reference: a
    target like `//evil.example/../docs` can never become a network-path reference."""
    path = "".join("/" + quote(part, safe="", errors="surrogateescape") for part in parts)
    location = (path + "/").encode("ascii") + (b"?" + query if query else b"")
    return ResponsePlan(301, [(b"location", location), (b"content-length", b"0")], b"")


class Site:
    """Everything needed to answer requests for one document root."""

    def __init__(self, config: SiteConfig, source: FileSource | None = None) -> None:
        self.config = config
        self.source: FileSource = source or OsFileSource(
            config.root, follow_outside=config.follow_symlinks_outside
        )
        self.cache = PlanCache(
            self.source, config.cache_entries, config.cache_bytes, config.revalidate_s
        )

    def respond(self, request: Request, now: float) -> ResponsePlan:
        """Decide the response. `now` is monotonic seconds (cache revalidation only)."""
        method = request.method
        if method not in _READ_METHODS:
            return OPTIONS_PLAN if method == b"OPTIONS" else ERRORS[405]
        target = request.target
        plan = self.cache.get(target, now)
        if plan is not None:
            return plan
        try:
            raw_path, query = split_target(target)
            path = safe_path(raw_path, allow_dotfiles=self.config.allow_dotfiles)
        except PathRejected as exc:
            return ERRORS[exc.status]
        relative = path.relative
        try:
            opened = self.source.open(relative)
        except (OSError, OutsideRoot) as exc:
            return ERRORS[_open_failure_status(exc)]
        if opened.file is None:  # a directory
            if not path.directory:
                return _redirect_to_directory(path.parts, query)
            return self._directory(relative, target, now)
        if path.directory:  # "/file.html/" names a directory that is a file: no such thing
            opened.file.close()
            return ERRORS[404]
        return self._file(opened, relative, target, now)

    def _directory(self, relative: str, target: bytes, now: float) -> ResponsePlan:
        index = f"{relative}/{self.config.index}" if relative else self.config.index
        try:
            opened = self.source.open(index)
        except (OSError, OutsideRoot) as exc:
            status = _open_failure_status(exc)
            return ERRORS[403 if status == 404 else status]  # no index, no listing: 403
        if opened.file is None:
            return ERRORS[403]
        return self._file(opened, index, target, now)

    def _file(self, opened: Opened, relative: str, target: bytes, now: float) -> ResponsePlan:
        st = opened.stat
        file = opened.file
        assert file is not None
        size = st.st_size
        headers = [
            (b"content-type", content_type(relative, self.config.charset)),
            (b"content-length", str(size).encode()),
            (b"last-modified", http_date(st.st_mtime).encode()),
            (b"etag", etag(st)),
        ]
        if size > self.config.small_file_bytes:
            return ResponsePlan(200, headers, FileBody(file, 0, size))
        with file as fh:
            body = fh.read(size) or b""
        if len(body) != size:  # truncated between fstat and read: describe what we have
            headers[1] = (b"content-length", str(len(body)).encode())
            return ResponsePlan(200, headers, body)
        plan = ResponsePlan(200, headers, body)
        # Only targets in plain origin-form are cached: the key is the raw target.
        if target.startswith(b"/") and b"?" not in target and b"#" not in target:
            self.cache.put(target, plan, relative, st, now)
        return plan
