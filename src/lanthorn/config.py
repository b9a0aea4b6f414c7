"""Configuration as data: frozen dataclasses grouped by concern.

A TOML file and the command line are both turned into one nested mapping
(`{"server": {...}, "site": {...}, "limits": {...}}`), merged (command line wins) and
validated here. Unknown keys are rejected with the nearest valid name. Config objects are
picklable so prefork workers can receive them; runtime objects (sockets, files) are built
beside the config, never inside it.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from lanthorn.errors import ConfigError

MODELS = ("asyncio", "events", "threads", "single")
QUIC_MODELS = ("asyncio", "events")  # the models with a UDP path for HTTP/3
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
TLS_VERSIONS = ("1.2", "1.3")
TLS_ISSUERS = (None, "internal")  # None: the certificate is tls_cert's, if any
ACCESS_LOG_FORMATS = ("combined", "json")


@dataclass(frozen=True)
class SiteConfig:
    """What is served and how files map to responses."""

    root: str = "."
    index: str = "index.html"
    allow_dotfiles: bool = False
    follow_symlinks_outside: bool = False
    charset: str | None = None  # added to text/* Content-Types when set
    small_file_bytes: int = 64 * 1024  # at most this size: read whole and cached
    cache_entries: int = 4096
    cache_bytes: int = 64 * 1024 * 1024
    revalidate_s: float = 1.0  # a cached file is re-checked at most this often
    precompressed: bool = True  # serve x.zst / x.br / x.gz sidecars when accepted
    compress: bool = False  # compress compressible types on the fly
    compress_min_bytes: int = 256
    compress_max_bytes: int = 1024 * 1024
    cache_control: tuple[str, ...] = ("*.html=no-cache",)  # "GLOB=VALUE", first match wins
    headers: tuple[str, ...] = ()  # "Name: value" added to every response
    nosniff: bool = True  # X-Content-Type-Options: nosniff on every response
    autoindex: bool = False  # list directories without an index (HTML or JSON)
    error_pages: tuple[str, ...] = ()  # "404=/404.html"
    spa: bool = False  # unknown extension-less paths serve /index.html
    # Development: HTML pages get a script that reloads them (or swaps a stylesheet) when
    # a file under the root changes; files are re-checked on every request meanwhile.
    live_reload: bool = False
    # 103 Early Hints (RFC 8297) before HTML pages, over HTTP/2 and HTTP/3 (never HTTP/1.1):
    # Link values from a scan of the page (core/hints) and from `hint_links`.
    early_hints: bool = True
    hint_links: tuple[str, ...] = ()  # "GLOB=LINK", every match applies, in order

    def __post_init__(self) -> None:
        if not os.path.isdir(self.root):
            raise ConfigError(f"document root {self.root!r} is not a directory")
        if "/" in self.index or not self.index:
            raise ConfigError(f"index {self.index!r} must be a plain file name")
        _require_positive(self, "small_file_bytes", "cache_entries", "cache_bytes")
        _require_positive(self, "compress_min_bytes", "compress_max_bytes")
        self.cache_control_rules()
        self.hint_link_rules()
        self.extra_headers()
        self.error_page_map()

    def cache_control_rules(self) -> list[tuple[str, str]]:
        """(glob, value) pairs; `.css=...` is shorthand for `*.css=...`."""
        return _glob_rules(self.cache_control, "cache-control rule", "VALUE", _printable)

    def hint_link_rules(self) -> list[tuple[str, str]]:
        """(glob, Link field value) pairs, each value one or more `<URI>; params`."""
        return _glob_rules(self.hint_links, "hint link", "<URI>; PARAMS", _LINK.fullmatch)

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        pairs = []
        for header in self.headers:
            name, colon, value = header.partition(":")
            name, value = name.strip(), value.strip()
            if not colon or not _TOKEN.fullmatch(name) or not _printable(value):
                raise ConfigError(f"header {header!r} is not NAME: VALUE")
            pairs.append((name.lower().encode("ascii"), value.encode("latin-1")))
        return pairs

    def error_page_map(self) -> dict[int, str]:
        pages = {}
        for page in self.error_pages:
            code, eq, path = page.partition("=")
            if not eq or not code.strip().isdigit() or not path.strip().startswith("/"):
                raise ConfigError(f"error page {page!r} is not STATUS=/path")
            status = int(code)
            if not 400 <= status <= 599:
                raise ConfigError(f"error page status {status} is not 4xx or 5xx")
            pages[status] = path.strip()
        return pages


@dataclass(frozen=True)
class Limits:
    """Per-connection and per-worker bounds; every one has a precise outcome."""

    max_connections: int = 1024  # per worker; beyond it the worker stops accepting
    header_timeout_s: float = 15.0  # a request head (and body) must arrive within this → 408
    keepalive_timeout_s: float = 60.0  # idle keep-alive connections are closed after this
    send_timeout_s: float = 60.0  # a client that reads nothing for this long is dropped
    grace_s: float = 10.0  # on SIGTERM, in-flight responses get this long to finish
    max_url_bytes: int = 8 * 1024  # → 414
    max_head_bytes: int = 16 * 1024  # request line + header fields → 431
    max_headers: int = 100  # → 431
    max_body_bytes: int = 1024 * 1024  # request bodies are drained up to this, else 413
    max_streams: int = 128  # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (nginx's default)
    # HTTP/3 requests in progress per connection (nginx: http3_max_concurrent_streams).
    # Lower than HTTP/2's: qh3's packet scheduler walks every open stream for every
    # packet, so one connection of 10,000 small requests took ~2.0 s at 128, ~1.3 at 32.
    h3_max_streams: int = 32
    # Per client address, across the workers of one server (0: off) — nginx limit_conn:
    # connections past it are answered 503 and closed.
    max_conns_per_ip: int = 0
    # Requests per client address — nginx limit_req with nodelay: "RATE/s" or "RATE/m"
    # ("" off); up to `rate_burst` requests beyond the rate are served at once, the
    # rest get 429 with Retry-After.
    rate_limit: str = ""
    rate_burst: int = 0
    # What one worker may buffer for its clients (unwritten output, heads still
    # arriving); past it, new connections and requests get 503 instead of memory.
    memory_budget_bytes: int = 256 * 1024 * 1024
    # A client cut off for HTTP/2 abuse (floods, reset storms) has its new connections
    # held unread, then closed unheard, for this long, doubling with each repeat (0: off).
    abuse_penalty_s: float = 1.0

    def __post_init__(self) -> None:
        optional = {"max_conns_per_ip", "rate_limit", "rate_burst", "abuse_penalty_s"}
        _require_positive(self, *(f.name for f in fields(self) if f.name not in optional))
        if self.max_conns_per_ip < 0 or self.rate_burst < 0 or self.abuse_penalty_s < 0:
            raise ConfigError("max_conns_per_ip, rate_burst, abuse_penalty_s must not be negative")
        self.rate_per_s()

    def rate_per_s(self) -> float:
        """The request rate per client in requests per second; 0 when off."""
        if not self.rate_limit:
            return 0.0
        match = _RATE.fullmatch(self.rate_limit.strip())
        if match is None or float(match[1]) <= 0:
            raise ConfigError(f"rate limit {self.rate_limit!r} is not RATE/s or RATE/m")
        return float(match[1]) / (60.0 if match[2] == "m" else 1.0)


@dataclass(frozen=True)
class ServerConfig:
    """Where to listen and how to run."""

    host: str = "localhost"
    port: int = 8080
    workers: int = 1
    model: str = "asyncio"
    threads: int = 32  # pool size of the `threads` model
    access_log: str = "-"  # "-" stdout, "off", or a file path
    access_log_format: str = "combined"  # ACCESS_LOG_FORMATS
    metrics: str | None = None  # "HOST:PORT": /metrics, /healthz, /readyz served there
    log_level: str = "info"
    ready_file: str | None = None
    h2c: bool = True  # HTTP/2 for clients with prior knowledge; with TLS, ALPN offers h2
    tls_cert: str | None = None  # PEM certificate chain: serve HTTPS instead of HTTP
    tls_key: str | None = None  # PEM private key, when not in the certificate file
    tls_min: str = "1.2"  # the oldest TLS version accepted: "1.2" or "1.3"
    # "internal": serve HTTPS with a certificate of the user's own local CA (made once,
    # renewed while serving: engines/localtls), as Caddy's `tls internal`.
    tls: str | None = None
    tls_ca_dir: str | None = None  # where that CA is kept (default: the user's data dir)
    user: str | None = None  # switch to this user once the ports are bound (started as root)
    # HTTP/3 over QUIC on the same port number, UDP (RFC 9114). None: wherever TLS is
    # served by a model with a UDP path (as Caddy does); True insists; False: never.
    http3: bool | None = None
    quic_retry: bool = False  # QUIC address validation: Retry before any connection state
    # Where to listen: "[tls:|h3:][proxy:][redirect:]HOST:PORT" each (see Listen.parse);
    # none: one listener at host:port, HTTPS when tls_cert or tls is given.
    listen: tuple[str, ...] = ()
    proxy_protocol: bool = False  # every listener expects a PROXY protocol header first
    redirect_https: bool = False  # every cleartext listener answers 308 to the HTTPS one
    # Networks (CIDR) whose Forwarded / X-Forwarded-For name the real client (nginx's
    # set_real_ip_from): logs and per-client limits then see that client.
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range 0-65535")
        if self.model not in MODELS:
            raise ConfigError(f"model {self.model!r} is not one of {', '.join(MODELS)}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log level {self.log_level!r} is not one of {LOG_LEVELS}")
        _require_positive(self, "workers", "threads")
        if self.tls_key and not self.tls_cert:
            raise ConfigError("tls_key needs tls_cert")
        if self.tls not in TLS_ISSUERS:
            raise ConfigError(f"tls {self.tls!r} is not one of {', '.join(TLS_ISSUERS[1:])}")
        if self.tls and self.tls_cert:
            raise ConfigError(f"tls {self.tls} issues its own certificate: drop it or tls_cert")
        if self.tls_ca_dir and self.tls != "internal":
            raise ConfigError("tls_ca_dir needs tls internal")
        if self.access_log_format not in ACCESS_LOG_FORMATS:
            formats = ", ".join(ACCESS_LOG_FORMATS)
            raise ConfigError(
                f"access log format {self.access_log_format!r} is not one of {formats}"
            )
        if self.metrics is not None:
            metrics_address(self.metrics)  # fails here if it is not HOST:PORT
        if self.tls_min not in TLS_VERSIONS:
            raise ConfigError(f"tls_min {self.tls_min!r} is not one of {', '.join(TLS_VERSIONS)}")
        if self.http3:
            if not self.https:
                raise ConfigError("http3 needs tls_cert or tls internal: QUIC is always encrypted")
            if self.model not in QUIC_MODELS:
                raise ConfigError(
                    f"http3 needs the {' or '.join(QUIC_MODELS)} model (not {self.model})"
                )
        if self.quic and self.workers > 255:
            raise ConfigError("HTTP/3 serves up to 255 workers (a connection ID byte names one)")
        self._check_listeners(self.listeners())
        self.trusted_networks()

    def listeners(self) -> tuple[Listen, ...]:
        """Every listener, with the server-wide PROXY protocol and redirect switches
        applied (a redirect only where there is cleartext to redirect from)."""
        given = tuple(Listen.parse(spec) for spec in self.listen) or (
            Listen(self.host, self.port, tls=self.https),
        )
        return tuple(
            dataclasses.replace(
                one,
                proxy=one.proxy or self.proxy_protocol,
                redirect=one.redirect or (self.redirect_https and not one.tls),
            )
            for one in given
        )

    def _check_listeners(self, listeners: tuple[Listen, ...]) -> None:
        if self.http3 and not any(one.tls for one in listeners):
            raise ConfigError("http3 needs a tls listener: QUIC is always encrypted")
        kinds: dict[int, Listen] = {}
        for one in listeners:
            if one.tls and not self.https:
                raise ConfigError(f"listener {one} needs tls_cert or tls internal")
            if one.http3 and self.model not in QUIC_MODELS:
                raise ConfigError(f"listener {one} needs the {' or '.join(QUIC_MODELS)} model")
            if one.redirect and one.tls:
                raise ConfigError(f"listener {one} is HTTPS already: it cannot redirect to it")
            if one.redirect and not any(other.tls for other in listeners):
                raise ConfigError(f"listener {one} redirects to HTTPS, but no listener has tls")
            same = kinds.setdefault(one.port, one) if one.port else one
            if (same.tls, same.proxy, same.redirect) != (one.tls, one.proxy, one.redirect):
                raise ConfigError(f"listeners {same} and {one} share a port but not a kind")

    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        try:
            return tuple(ipaddress.ip_network(net, strict=False) for net in self.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(f"trusted_proxies: {exc}") from None

    def quic_on(self, listener: Listen) -> bool:
        """HTTP/3 is served beside this listener: it is HTTPS, on a model that can, and
        HTTP/3 was not turned off."""
        wanted = self.http3 if listener.http3 is None else listener.http3
        return listener.tls and wanted is not False and self.model in QUIC_MODELS

    @property
    def https(self) -> bool:
        """TLS is served: with the user's certificate, or one of the local CA's."""
        return bool(self.tls_cert) or self.tls is not None

    @property
    def quic(self) -> bool:
        """HTTP/3 is served on some listener."""
        return any(self.quic_on(one) for one in self.listeners())


@dataclass(frozen=True)
class Listen:
    """One listening address and what is spoken there."""

    host: str
    port: int
    tls: bool = False  # HTTPS (and HTTP/3 beside it on UDP, as the server's http3 says)
    http3: bool | None = None  # `h3:` insists on HTTP/3 here; None: as the server says
    proxy: bool = False  # a PROXY protocol header (v1 or v2) comes first
    redirect: bool = False  # every request but ACME challenges gets 308 to HTTPS

    PREFIXES = ("tls", "h3", "proxy", "redirect")

    @classmethod
    def parse(cls, spec: str) -> Listen:
        """`[tls:|h3:][proxy:][redirect:]HOST:PORT`; an IPv6 host in brackets; an empty
        host is every address."""
        flags: set[str] = set()
        rest = spec.strip()
        while (head := rest.partition(":"))[0] in cls.PREFIXES and head[1]:
            flags.add(head[0])
            rest = head[2]
        host, colon, port = rest.rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")
        host = host[1:-1] if bracketed else host
        if (
            not colon
            or not port.isdigit()
            or int(port) > 65535
            or "[" in host
            or (":" in host and not bracketed)
        ):
            raise ConfigError(f"listen address {spec!r} is not [tls:|h3:][proxy:]HOST:PORT")
        secure = bool(flags & {"tls", "h3"})
        return cls(host, int(port), secure, True if "h3" in flags else None,
                   "proxy" in flags, "redirect" in flags)  # fmt: skip

    @classmethod
    def table(cls, table: Mapping[str, Any]) -> str:
        """A TOML `[[listen]]` table (address, and tls, http3, proxy_protocol,
        redirect_https as true or false) as the spec `parse` reads."""
        for key in table:
            if key != "address" and key not in _TABLE_PREFIXES:
                raise _unknown("key in [[listen]]", key, ["address", *_TABLE_PREFIXES])
        address = table.get("address")
        if not isinstance(address, str):
            raise ConfigError(f'[[listen]] needs address = "HOST:PORT", got {address!r}')
        on = [prefix for key, prefix in _TABLE_PREFIXES.items() if table.get(key) is True]
        return "".join(f"{prefix}:" for prefix in on) + address

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        on = {"tls": self.tls, "proxy": self.proxy, "redirect": self.redirect}
        return "".join(f"{k}:" for k, v in on.items() if v) + f"{host}:{self.port}"


@dataclass(frozen=True)
class WebSocketConfig:
    """WebSocket endpoints (RFC 6455; none unless asked for) and their bounds."""

    echo: str | None = None  # a path answering every message with itself
    # Origins allowed besides the server's own host (RFC 6455 §10.2: a page elsewhere
    # must not open a socket to a developer's server), e.g. "https://example.com".
    origins: tuple[str, ...] = ()
    max_message_bytes: int = 1024 * 1024  # larger → close 1009
    ping_interval_s: float = 30.0  # an idle socket is pinged; closed if nothing comes back
    deflate: bool = True  # permessage-deflate (RFC 7692) when the client offers it

    def __post_init__(self) -> None:
        _require_positive(self, "max_message_bytes", "ping_interval_s")
        if self.echo is not None and not self.echo.startswith("/"):
            raise ConfigError(f"WebSocket path {self.echo!r} must start with /")
        for origin in self.origins:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ConfigError(f"origin {origin!r} is not scheme://host[:port]")

    def endpoints(self, live_reload: bool) -> dict[str, str]:
        """Path → what answers there."""
        found = {self.echo: "echo"} if self.echo else {}
        if live_reload:
            found[LIVE_RELOAD_PATH] = "live-reload"
        return found


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    site: SiteConfig = field(default_factory=SiteConfig)
    limits: Limits = field(default_factory=Limits)
    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerConfig,
    "site": SiteConfig,
    "limits": Limits,
    "websocket": WebSocketConfig,
}


# [[listen]] keys and the spec prefixes they stand for (Listen.table).
_TABLE_PREFIXES = {
    "http3": "h3",
    "tls": "tls",
    "proxy_protocol": "proxy",
    "redirect_https": "redirect",
}
# Where live-reload pages connect back to (the script injected into them names it).
LIVE_RELOAD_PATH = "/_lanthorn/live-reload"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 3986 §2: the characters a URI reference may hold (unreserved, reserved, and % of
# percent-encoding). None of them can end a Link's `<...>` or its field (no CR, LF, <, >).
URI_REFERENCE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
# A Link field value (RFC 8288 §3) as configured: a URI reference in angle brackets, then
# parameters (and maybe more links) in visible ASCII and spaces, nothing that ends a field.
_LINK = re.compile(rf"<{URI_REFERENCE.pattern}>[\x20-\x7e]*")
_RATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(?:\s*(?:r/|/)\s*([sm]))?")


def metrics_address(text: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 address in brackets) as (host, port); port 0 is any free one."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not (sep and host and port.isdigit() and int(port) <= 65535):
        raise ConfigError(f"metrics address {text!r} is not HOST:PORT")
    return host, int(port)


def _printable(value: str) -> bool:
    """A field value that cannot split a header (no CR, LF, NUL or other controls)."""
    return all(ch == "\t" or 0x20 <= ord(ch) < 0x7F or 0x80 <= ord(ch) <= 0xFF for ch in value)


def _glob_rules(
    rules: tuple[str, ...], what: str, form: str, valid: Callable[[str], object]
) -> list[tuple[str, str]]:
    """`GLOB=VALUE` rules as (glob, value) pairs, each value `valid`; `.css` is shorthand
    for `*.css`, and a leading `/` is dropped (globs match paths under the root)."""
    pairs = []
    for rule in rules:
        glob, eq, value = rule.partition("=")
        glob, value = glob.strip().lstrip("/"), value.strip()
        if not eq or not glob or not value or not valid(value):
            raise ConfigError(f"{what} {rule!r} is not GLOB={form}")
        pairs.append(("*" + glob if glob.startswith(".") else glob, value))
    return pairs


def _require_positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value <= 0:
            raise ConfigError(f"{name} must be positive, got {value}")


def _unknown(kind: str, name: str, valid: list[str]) -> ConfigError:
    near = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return ConfigError(f"unknown {kind} {name!r}{hint}")


def _coerce(section: str, f: dataclasses.Field[Any], value: Any) -> Any:
    kind = str(f.type)
    wants: tuple[type, ...]
    if kind.startswith("tuple"):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{section}.{f.name} must be a list of strings, got {value!r}")
        return tuple(value)
    if kind.startswith("bool"):
        wants = (bool,)
    elif kind.startswith("int"):
        wants = (int,)
    elif kind.startswith("float"):
        wants = (int, float)
    else:
        wants = (str,)
    if value is None and "None" in kind:
        return None
    if not isinstance(value, wants) or (wants != (bool,) and isinstance(value, bool)):
        raise ConfigError(f"{section}.{f.name} must be {kind}, got {value!r}")
    return float(value) if wants == (int, float) else value


def build(mapping: Mapping[str, Any]) -> Config:
    """Validate a nested mapping and build the Config; raises ConfigError."""
    groups: dict[str, Any] = {}
    mapping = _hint_table(_listen_tables(mapping))
    for section, values in mapping.items():
        cls = _SECTIONS.get(section)
        if cls is None:
            raise _unknown("section", section, list(_SECTIONS))
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{section}] must be a table")
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in known:
                raise _unknown(f"key in [{section}]", key, list(known))
            kwargs[key] = _coerce(section, known[key], value)
        groups[section] = cls(**kwargs)
    return Config(**groups)


# What a running process cannot change in place (SIGHUP to a server of one process, which
# has no supervisor to start new workers): where and how it listens and runs, what its
# TLS and logs were opened with, and the per-client state its limits keep.
_FIXED = {
    "server": ("host", "port", "workers", "model", "threads", "access_log", "access_log_format",
               "ready_file", "tls", "tls_cert", "tls_key", "tls_min", "tls_ca_dir", "user",
               "http3", "quic_retry", "listen", "proxy_protocol", "redirect_https",
               "trusted_proxies", "metrics"),
    "limits": ("max_connections", "max_conns_per_ip", "rate_limit", "rate_burst",
               "memory_budget_bytes", "abuse_penalty_s"),
    "site": ("live_reload",),
}  # fmt: skip


def fixed_changes(old: Config, new: Config) -> list[str]:
    """The settings (as `section.key`) that differ between `old` and `new` but cannot
    change in a running process; the rest (the site, timeouts and sizes, WebSocket
    endpoints, h2c, the log level) can."""
    changed = []
    for section, keys in _FIXED.items():
        before, after = getattr(old, section), getattr(new, section)
        changed += [f"{section}.{k}" for k in keys if getattr(before, k) != getattr(after, k)]
    if old.site.live_reload and old.site.root != new.site.root:
        changed.append("site.root")  # the watcher watches the old one
    return changed


def _listen_tables(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """`[[listen]]` tables in TOML become [server] listen entries, after any given there."""
    tables = mapping.get("listen")
    if tables is None:
        return mapping
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise ConfigError("listen must be [[listen]] tables")
    server = dict(mapping.get("server", {}))
    server["listen"] = [*server.get("listen", ()), *(Listen.table(t) for t in tables)]
    return {**{k: v for k, v in mapping.items() if k != "listen"}, "server": server}


def _hint_table(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A TOML `[hint_links]` table (glob → a Link value or a list of them) becomes
    [site] hint_links entries, after any given there."""
    table = mapping.get("hint_links")
    if table is None:
        return mapping
    if not isinstance(table, Mapping):
        raise ConfigError("hint_links must be a table: GLOB = LINK or [LINK, ...]")
    rules = []
    for glob, links in table.items():
        values = [links] if isinstance(links, str) else links
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"[hint_links] {glob!r} must be a Link value or a list of them")
        rules += [f"{glob}={link}" for link in values]
    site = dict(mapping.get("site", {}))
    site["hint_links"] = [*site.get("hint_links", ()), *rules]
    return {**{k: v for k, v in mapping.items() if k != "hint_links"}, "site": site}


def load_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path!r}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path!r}: {exc}") from exc


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Two-level merge: sections are merged key by key, `override` winning."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for section, values in override.items():
        if isinstance(values, Mapping) and isinstance(merged.get(section), dict):
            merged[section].update(values)
        else:
            merged[section] = dict(values) if isinstance(values, Mapping) else values
    return merged
