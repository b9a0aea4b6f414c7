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
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from lanthorn.errors import ConfigError

MODELS = ("asyncio", "events", "threads", "single")
QUIC_MODELS = ("asyncio", "events")  # the models with a UDP path for HTTP/3
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
TLS_VERSIONS = ("1.2", "1.3")
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

    def __post_init__(self) -> None:
        if not os.path.isdir(self.root):
            raise ConfigError(f"document root {self.root!r} is not a directory")
        if "/" in self.index or not self.index:
            raise ConfigError(f"index {self.index!r} must be a plain file name")
        _require_positive(self, "small_file_bytes", "cache_entries", "cache_bytes")
        _require_positive(self, "compress_min_bytes", "compress_max_bytes")
        self.cache_control_rules()
        self.extra_headers()
        self.error_page_map()

    def cache_control_rules(self) -> list[tuple[str, str]]:
        """(glob, value) pairs; `.css=...` is shorthand for `*.css=...`."""
        rules = []
        for rule in self.cache_control:
            glob, eq, value = rule.partition("=")
            glob, value = glob.strip(), value.strip()
            if not eq or not glob or not value or not _printable(value):
                raise ConfigError(f"cache-control rule {rule!r} is not GLOB=VALUE")
            rules.append(("*" + glob if glob.startswith(".") else glob, value))
        return rules

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
    user: str | None = None  # switch to this user once the ports are bound (started as root)
    # HTTP/3 over QUIC on the same port number, UDP (RFC 9114). None: wherever TLS is
    # served by a model with a UDP path (as Caddy does); True insists; False: never.
    http3: bool | None = None
    quic_retry: bool = False  # QUIC address validation: Retry before any connection state

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
            if not self.tls_cert:
                raise ConfigError("http3 needs tls_cert: QUIC is always encrypted")
            if self.model not in QUIC_MODELS:
                raise ConfigError(
                    f"http3 needs the {' or '.join(QUIC_MODELS)} model (not {self.model})"
                )
        if self.quic and self.workers > 255:
            raise ConfigError("HTTP/3 serves up to 255 workers (a connection ID byte names one)")

    @property
    def quic(self) -> bool:
        """HTTP/3 is served: TLS is, by a model that can, and it was not turned off."""
        return bool(self.tls_cert) and self.http3 is not False and self.model in QUIC_MODELS


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


# Where live-reload pages connect back to (the script injected into them names it).
LIVE_RELOAD_PATH = "/_lanthorn/live-reload"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
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
