"""decide(): request → ResponsePlan. The one place every protocol and engine asks.

Order of decisions (RFC 9110): method (§9.1; 405 carries Allow, §15.5.6) → target form
and path safety → lookup (directory redirect, index file, listing) → representation
(content coding, validators, preconditions, ranges: see `representation`) → site
headers (Cache-Control, X-Content-Type-Options, configured extras).
"""

from __future__ import annotations

import errno
from urllib.parse import quote

from lanthorn.config import SiteConfig
from lanthorn.core import encodings, listing, livereload
from lanthorn.core.cache import Identity, PlanCache, identity
from lanthorn.core.compress import CompressedCache, compressible
from lanthorn.core.files import FileSource, Opened, OsFileSource, OutsideRoot
from lanthorn.core.hints import Hints
from lanthorn.core.mime import content_type
from lanthorn.core.pages import page_plan
from lanthorn.core.paths import PathRejected, SafePath, glob_matches, safe_path, split_target
from lanthorn.core.representation import Variant, etag, plan_for, validators
from lanthorn.core.request import Request
from lanthorn.core.response import REASONS, ResponsePlan

ALLOW = b"GET, HEAD, OPTIONS"
_READ_METHODS = (b"GET", b"HEAD")
# Requests carrying any of these take the full path (the cache holds plain 200s only).
_VALIDATING = frozenset(
    (
        b"range",
        b"if-none-match",
        b"if-modified-since",
        b"if-match",
        b"if-unmodified-since",
    )
)
_VARY_ENCODING = (b"vary", b"Accept-Encoding")

Headers = list[tuple[bytes, bytes]]
Checks = list[tuple[str, Identity | None]]


def _open_failure_status(exc: Exception) -> int:
    """Why a name could not be opened → status. Nothing here is the client's fault
    except asking for what is not there (404) or not allowed (403)."""
    if isinstance(exc, OutsideRoot | PermissionError):
        return 403
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
        return 503  # out of descriptors or memory: try again later
    return 404  # ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, ENXIO, ...


class Site:
    """Everything needed to answer requests for one document root."""

    def __init__(self, config: SiteConfig, source: FileSource | None = None) -> None:
        self.config = config
        self.source: FileSource = source or OsFileSource(
            config.root, follow_outside=config.follow_symlinks_outside
        )
        # With live reload on, a saved file is served at once: re-checked on every request.
        revalidate_s = 0.0 if config.live_reload else config.revalidate_s
        self.cache = PlanCache(self.source, config.cache_entries, config.cache_bytes, revalidate_s)
        common: Headers = [(b"x-content-type-options", b"nosniff")] if config.nosniff else []
        self.common = common + config.extra_headers()
        self._rules = config.cache_control_rules()
        self._error_pages = config.error_page_map()
        self.errors = {
            status: page_plan(
                status, [(b"allow", ALLOW), *self.common] if status == 405 else self.common
            )
            for status in REASONS
            if status >= 400
        }
        self._options = ResponsePlan(204, [(b"allow", ALLOW), *self.common], b"")
        self._compressed = CompressedCache(config.cache_bytes // 4) if config.compress else None
        self._negotiates = config.precompressed or config.compress
        self._hints = (
            Hints(config.hint_link_rules(), config.cache_entries) if config.early_hints else None
        )

    # --- entry point ----------------------------------------------------------------------

    def respond(self, request: Request, now: float) -> ResponsePlan:
        """Decide the response. `now` is monotonic seconds (cache revalidation only)."""
        method = request.method
        if method not in _READ_METHODS:
            return self._options if method == b"OPTIONS" else self.errors[405]
        headers = request.headers
        key = request.target
        if self._negotiates and b"accept-encoding" in headers:
            key += b"\n" + headers[b"accept-encoding"]
        plain = _VALIDATING.isdisjoint(headers)
        if plain:
            plan = self.cache.get(key, now)
            if plan is not None:
                return plan
        return self._decide(request, key if plain else None, now)

    def _decide(self, request: Request, cache_key: bytes | None, now: float) -> ResponsePlan:
        try:
            raw_path, query = split_target(request.target)
            path = safe_path(raw_path, allow_dotfiles=self.config.allow_dotfiles)
        except PathRejected as exc:
            return self._error(exc.status, request, None, now)
        if query or b"#" in request.target or not request.target.startswith(b"/"):
            cache_key = None  # only plain origin-form targets are cache keys
        try:
            opened = self.source.open(path.relative)
        except (OSError, OutsideRoot) as exc:
            return self._error(_open_failure_status(exc), request, path, now)
        if opened.file is None:  # a directory
            if not path.directory:
                return self._redirect_to_directory(path, query)
            return self._directory(path, request, cache_key, now)
        if path.directory:  # "/file.html/" names a file as if it were a directory
            opened.file.close()
            return self._error(404, request, path, now)
        return self._file(opened, path.relative, request, cache_key, now)

    # --- lookups --------------------------------------------------------------------------

    def _redirect_to_directory(self, path: SafePath, query: bytes) -> ResponsePlan:
        """301 to the slash-terminated directory (§15.4.2). The Location is rebuilt from
        the normalised path, re-encoded, so it is always a path-absolute reference: a
        target like `//evil.example/../docs` can never become a network-path reference."""
        encoded = "".join("/" + quote(p, safe="", errors="surrogateescape") for p in path.parts)
        location = (encoded + "/").encode("ascii") + (b"?" + query if query else b"")
        headers = [(b"location", location), (b"content-length", b"0"), *self.common]
        return ResponsePlan(301, headers, b"")

    def _directory(
        self, path: SafePath, request: Request, cache_key: bytes | None, now: float
    ) -> ResponsePlan:
        relative = path.relative
        index = f"{relative}/{self.config.index}" if relative else self.config.index
        try:
            opened = self.source.open(index)
        except (OSError, OutsideRoot) as exc:
            status = _open_failure_status(exc)
            if status != 404:
                return self._error(status, request, path, now)
            if self.config.autoindex:
                return self._listing(path, request)
            return self._error(403, request, path, now)  # no index, no listing (nginx: 403)
        if opened.file is None:
            return self._error(403, request, path, now)
        return self._file(opened, index, request, cache_key, now)

    def _listing(self, path: SafePath, request: Request) -> ResponsePlan:
        try:
            entries = self.source.list(path.relative)
        except OSError as exc:
            return self.errors[_open_failure_status(exc)]
        shown = listing.visible(entries, self.config.allow_dotfiles)
        if listing.wants_json(request.headers.get(b"accept")):
            body, ctype = listing.render_json(shown), b"application/json"
        else:
            display = "/" + "".join(part + "/" for part in path.parts)
            body, ctype = listing.render_html(display, shown), b"text/html; charset=utf-8"
        headers = [
            (b"content-type", ctype),
            (b"content-length", b"%d" % len(body)),
            (b"vary", b"Accept"),
            (b"cache-control", b"no-cache"),
            *self.common,
        ]
        return ResponsePlan(200, headers, body)

    def _error(
        self, status: int, request: Request, path: SafePath | None, now: float
    ) -> ResponsePlan:
        """An error status, with the SPA fallback (404 on an extension-less path serves
        the root index) and configured error pages applied."""
        if (
            status == 404
            and self.config.spa
            and path is not None
            and not (path.parts and "." in path.parts[-1])
        ):
            try:
                opened = self.source.open(self.config.index)
            except (OSError, OutsideRoot):
                pass
            else:
                if opened.file is not None:
                    return self._file(opened, self.config.index, request, None, now)
        page = self._error_pages.get(status)
        if page is not None:
            plan = self._error_page(status, page)
            if plan is not None:
                return plan
        return self.errors[status]

    def _error_page(self, status: int, page: str) -> ResponsePlan | None:
        try:
            target = safe_path(page.encode("utf-8", "surrogateescape"))
            opened = self.source.open(target.relative)
        except (PathRejected, OSError, OutsideRoot):
            return None
        if opened.file is None:
            return None
        page_variant = self._stored(opened, "identity")  # large pages are sent, not cut
        ctype = content_type(target.relative, self.config.charset)
        headers = [
            (b"content-type", ctype),
            (b"content-length", b"%d" % page_variant.size),
            *self.common,
        ]
        return ResponsePlan(status, headers, page_variant.whole())

    # --- files ----------------------------------------------------------------------------

    def _file(
        self,
        opened: Opened,
        relative: str,
        request: Request,
        cache_key: bytes | None,
        now: float,
    ) -> ResponsePlan:
        ctype = content_type(relative, self.config.charset)
        hints = (  # read before a variant takes the file (core/hints)
            self._hints.fields(relative, opened)
            if self._hints is not None and ctype.startswith(b"text/html")
            else ()
        )
        checks: Checks = [(relative, identity(opened.stat))]
        chosen, varies = self._variant(opened, relative, ctype, request, checks)
        extra: Headers = []
        if varies or chosen is None:
            extra.append(_VARY_ENCODING)  # §12.5.5: the choice depended on Accept-Encoding
        cache_control = self._cache_control(relative)
        if cache_control is not None:
            extra.append((b"cache-control", cache_control))
        extra += self.common
        if chosen is None:
            return page_plan(406, extra)
        plan = plan_for(request, chosen, ctype, extra, hints)
        if cache_key is not None and plan.status == 200 and isinstance(plan.body, bytes):
            self.cache.put(cache_key, plan, checks, now)
        return plan

    def _compresses(self, ctype: bytes, size: int) -> bool:
        config = self.config
        return (
            compressible(ctype) and config.compress_min_bytes <= size <= config.compress_max_bytes
        )

    def _variant(
        self, opened: Opened, relative: str, ctype: bytes, request: Request, checks: Checks
    ) -> tuple[Variant | None, bool]:
        """Pick the representation to send (None: nothing acceptable → 406), and say
        whether other codings exist (a sidecar, or on-the-fly compression), i.e. whether
        the response varies with Accept-Encoding. Sidecars that exist, are regular files
        inside the root and are not older than the original are candidates; their
        identities join `checks` for cache revalidation."""
        st = opened.stat
        if (
            self.config.live_reload
            and ctype.startswith(b"text/html")
            and st.st_size <= livereload.MAX_PAGE_BYTES
        ):
            return self._live(opened), False  # as generated: no sidecar, no compression
        sidecars: dict[str, Opened] = {}
        if self.config.precompressed:
            for name, suffix in encodings.CODINGS.items():
                try:
                    candidate = self.source.open(relative + suffix)
                except (OSError, OutsideRoot):
                    checks.append((relative + suffix, None))
                    continue
                checks.append((relative + suffix, identity(candidate.stat)))
                if candidate.file is None or candidate.stat.st_mtime_ns < st.st_mtime_ns:
                    if candidate.file is not None:
                        candidate.file.close()  # stale: older than the original
                    continue
                sidecars[name] = candidate
        available = tuple(sidecars)
        generated = self._compressed is not None and self._compresses(ctype, st.st_size)
        if generated:
            available = tuple(encodings.CODINGS)
        varies = generated or any(found is not None for _, found in checks[1:])
        coding = encodings.choose(request.headers.get(b"accept-encoding"), available)
        for name, sidecar in sidecars.items():
            if name != coding and sidecar.file is not None:
                sidecar.file.close()
        if coding is None:
            _close(opened)
            return None, varies
        if coding in sidecars:
            _close(opened)
            return self._stored(sidecars[coding], coding), varies
        if coding != "identity":
            return self._generated(opened, relative, coding), varies
        return self._stored(opened, "identity"), varies

    def _stored(self, opened: Opened, coding: str) -> Variant:
        st = opened.stat
        file = opened.file
        assert file is not None
        last_modified, mtime_s = validators(st)
        tag = etag(st, coding)
        if st.st_size > self.config.small_file_bytes:
            return Variant(file, None, st.st_size, tag, last_modified, mtime_s, coding)
        with file as fh:
            data = fh.read(st.st_size) or b""
        # Read from the descriptor that was described: sizes always agree with the bytes.
        return Variant(None, data, len(data), tag, last_modified, mtime_s, coding)

    def _live(self, opened: Opened) -> Variant:
        """The page with the live-reload script; its ETag differs from the file's (the
        bytes do), Last-Modified is the file's."""
        st = opened.stat
        assert opened.file is not None
        with opened.file as fh:
            data = livereload.inject(fh.read(st.st_size) or b"")
        last_modified, mtime_s = validators(st)
        tag = etag(st, "identity")[:-1] + b'-live"'
        return Variant(None, data, len(data), tag, last_modified, mtime_s, "identity")

    def _generated(self, opened: Opened, relative: str, coding: str) -> Variant:
        assert self._compressed is not None and opened.file is not None
        st = opened.stat
        with opened.file as fh:
            data = self._compressed.get(
                (relative, *identity(st)), coding, lambda: fh.read(st.st_size) or b""
            )
        last_modified, mtime_s = validators(st)
        return Variant(None, data, len(data), etag(st, coding), last_modified, mtime_s, coding)

    def _cache_control(self, relative: str) -> bytes | None:
        for glob, value in self._rules:
            if glob_matches(relative, glob):
                return value.encode("latin-1")
        return None


def _close(opened: Opened) -> None:
    if opened.file is not None:
        opened.file.close()
