"""Command line → Config → server. The only place that exits.

lanthorn [serve] [ROOT] [-r/--root DIR] [--host H] [-p/--port N] [-w/--workers N|auto]
         [--model asyncio|events|threads|single] [--threads N] [--access-log -|PATH|off]
         [--log-level L] [--ready-file PATH] [--config FILE] [--version] ...
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Any, NoReturn

from lanthorn import __version__, native
from lanthorn.config import (
    ACCESS_LOG_FORMATS,
    LOG_LEVELS,
    MODELS,
    TLS_ISSUERS,
    TLS_VERSIONS,
    Config,
    build,
    load_toml,
    merge,
)
from lanthorn.errors import ConfigError

log = logging.getLogger("lanthorn")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"lanthorn: error: {message}\n")


def _workers(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _size(text: str) -> int:
    """`64M`, `512k`, `1G` or bytes."""
    number, unit = text[:-1], text[-1:].lower()
    if unit not in _UNITS or unit == "":
        number, unit = text, ""
    try:
        value = int(number) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 64M, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _tls_options(group: argparse._ArgumentGroup) -> None:
    """Where HTTPS's certificate comes from, and the oldest TLS spoken."""
    group.add_argument(
        "--tls-cert", metavar="PEM", help="certificate chain: serve HTTPS (h2, http/1.1)"
    )
    group.add_argument(
        "--tls-key", metavar="PEM", help="private key, if not in the certificate file"
    )
    group.add_argument("--tls-min", choices=TLS_VERSIONS, help="oldest TLS version (default 1.2)")
    group.add_argument(
        "--tls",
        choices=TLS_ISSUERS[1:],
        help="internal: serve HTTPS with a certificate of your own local CA, made once and "
        "renewed while serving; the log says how to make clients trust it",
    )
    group.add_argument(
        "--tls-ca-dir",
        metavar="DIR",
        help="where --tls internal keeps its CA (default: $XDG_DATA_HOME/lanthorn/ca)",
    )


def _listener_options(p: argparse.ArgumentParser) -> None:
    """Where to listen, and what is spoken there."""
    p.add_argument("--host", help="address or name to listen on (default: localhost)")
    p.add_argument("-p", "--port", type=int, help="TCP port, 0 for any free one (default 8080)")
    p.add_argument(
        "--listen",
        action="append",
        metavar="[tls:|h3:][proxy:]HOST:PORT",
        help="a listener, instead of --host/--port (repeatable): tls: serves HTTPS (and "
        "HTTP/3 beside it), h3: insists on HTTP/3 there, proxy: expects a PROXY protocol "
        "header; an IPv6 host in brackets",
    )
    p.add_argument(
        "--redirect-https",
        action="store_true",
        default=None,
        help="cleartext listeners answer 308 to the HTTPS one (ACME challenges are served)",
    )
    p.add_argument(
        "--proxy-protocol",
        action="store_true",
        default=None,
        help="every listener expects a PROXY protocol (v1 or v2) header from its balancer",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="CIDR",
        help="trust Forwarded / X-Forwarded-For from these networks (repeatable)",
    )


def _operations(p: argparse.ArgumentParser) -> None:
    """Logs, metrics and health checks."""
    p.add_argument("--access-log", metavar="-|PATH|off", help="access log (default: stdout)")
    p.add_argument(
        "--access-log-format",
        choices=ACCESS_LOG_FORMATS,
        help="access log lines: combined (nginx's) or json (default: combined)",
    )
    p.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve /metrics (Prometheus), /healthz and /readyz there (needs lanthorn[metrics])",
    )
    p.add_argument("--log-level", choices=LOG_LEVELS, help="server log level (default: info)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="lanthorn",
        description="Serve a directory over HTTP/1.1, HTTP/2 and, with --tls-cert or "
        "--tls internal, HTTP/3. "
        "ROOT defaults to ./www if it exists, else the current directory.",
        epilog="other commands: `lanthorn serve ...` (the same as `lanthorn ...`); "
        "`lanthorn bench --help` (load tests against nginx and Caddy); `lanthorn echo`, "
        "`lanthorn send`, `lanthorn ws` (the socket toolkit: TCP/UDP echo servers and "
        "clients, a WebSocket client; each has --help)",
    )
    p.add_argument("root_pos", nargs="?", metavar="ROOT", help="document root")
    p.add_argument("-r", "--root", help="document root (same as ROOT)")
    _listener_options(p)
    p.add_argument("-w", "--workers", type=_workers, help="worker processes, or 'auto'")
    p.add_argument("--model", choices=MODELS, help="concurrency model (default: asyncio)")
    p.add_argument("--threads", type=int, help="pool size of the threads model (default 32)")
    _operations(p)
    p.add_argument("--ready-file", metavar="PATH", help="write bound addresses as JSON here")
    p.add_argument("--config", metavar="FILE", help="TOML configuration file")
    p.add_argument("--max-connections", type=int, help="open connections per worker")
    p.add_argument("--header-timeout", type=float, metavar="S", help="request head timeout")
    p.add_argument("--keepalive-timeout", type=float, metavar="S", help="idle keep-alive")
    p.add_argument("--send-timeout", type=float, metavar="S", help="client not reading")
    p.add_argument("--grace", type=float, metavar="S", help="graceful shutdown period")
    p.add_argument(
        "--no-h2c",
        dest="h2c",
        action="store_false",
        default=None,
        help="no HTTP/2 over cleartext TCP (over TLS, ALPN still offers h2)",
    )
    p.add_argument("--max-streams", type=int, help="concurrent HTTP/2 streams per connection")
    p.add_argument(
        "--h3-max-streams", type=int, metavar="N", help="HTTP/3 requests in progress per connection"
    )
    _tls_options(p.add_argument_group("HTTPS"))
    p.add_argument(
        "--http3",
        action="store_true",
        default=None,
        help="insist on HTTP/3 (it is on wherever TLS is, on the asyncio and events models)",
    )
    p.add_argument(
        "--no-http3",
        dest="http3",
        action="store_false",
        default=None,
        help="no HTTP/3 over QUIC (UDP) beside HTTPS",
    )
    p.add_argument(
        "--quic-retry",
        action="store_true",
        default=None,
        help="QUIC address validation: a Retry before any connection state (Initial floods)",
    )
    p.add_argument("--user", metavar="NAME", help="run as this user once the ports are bound")
    p.add_argument("--max-conns-per-ip", type=int, metavar="N", help="connections per client")
    p.add_argument("--rate-limit", metavar="RATE[/s|/m]", help="requests per client (429 past)")
    p.add_argument("--rate-burst", type=int, metavar="N", help="requests beyond the rate allowed")
    p.add_argument("--memory-budget", type=_size, metavar="SIZE", help="buffered per worker")
    ws = p.add_argument_group("WebSocket (RFC 6455; off unless a path is given)")
    ws.add_argument("--ws-echo", metavar="PATH", help="a WebSocket echo endpoint at PATH")
    ws.add_argument(
        "--ws-max-message", type=_size, metavar="SIZE", help="largest message (1M; past it 1009)"
    )
    ws.add_argument(
        "--ws-origin",
        action="append",
        metavar="ORIGIN",
        help="another origin allowed to open sockets (scheme://host[:port]; repeatable)",
    )
    site = p.add_argument_group("site")
    site.add_argument("--index", help="index file name (default index.html)")
    site.add_argument("--charset", help="add '; charset=CHARSET' to text/* types")
    site.add_argument("--dotfiles", action="store_true", default=None, help="serve dotfiles")
    site.add_argument(
        "--follow-symlinks", action="store_true", default=None, help="allow symlinks out of root"
    )
    site.add_argument(
        "--no-precompressed",
        dest="precompressed",
        action="store_false",
        default=None,
        help="ignore .zst/.br/.gz sidecar files",
    )
    site.add_argument(
        "--compress", action="store_true", default=None, help="compress text types on the fly"
    )
    site.add_argument(
        "--cache-control",
        action="append",
        metavar="GLOB=VALUE",
        help="Cache-Control for matching paths (repeatable; first match wins)",
    )
    site.add_argument(
        "--header", action="append", metavar="NAME:VALUE", help="extra response header"
    )
    site.add_argument(
        "--no-nosniff",
        dest="nosniff",
        action="store_false",
        default=None,
        help="omit X-Content-Type-Options: nosniff",
    )
    site.add_argument(
        "--autoindex", action="store_true", default=None, help="list directories without index"
    )
    site.add_argument(
        "--error-page", action="append", metavar="STATUS=/PATH", help="custom error page"
    )
    site.add_argument(
        "--spa", action="store_true", default=None, help="serve /index.html for unknown routes"
    )
    site.add_argument(
        "--early-hints",
        action="store_true",
        default=None,
        help="103 Early Hints before HTML pages over HTTP/2 and HTTP/3 (on by default)",
    )
    site.add_argument(
        "--no-early-hints",
        dest="early_hints",
        action="store_false",
        default=None,
        help="no 103 Early Hints",
    )
    site.add_argument(
        "--hint-link",
        action="append",
        metavar="GLOB=LINK",
        help="a Link value for the Early Hints of matching pages, e.g. "
        "'index.html=</font.woff2>; rel=preload; as=font; crossorigin' (repeatable)",
    )
    site.add_argument(
        "--live-reload",
        action="store_true",
        default=None,
        help="reload pages (or swap their stylesheets) when files under the root change",
    )
    p.add_argument(
        "--version", action="version", version=f"lanthorn {__version__} ({native.describe()})"
    )
    return p


_CLI_KEYS: dict[str, tuple[str, str]] = {
    "host": ("server", "host"),
    "port": ("server", "port"),
    "workers": ("server", "workers"),
    "model": ("server", "model"),
    "threads": ("server", "threads"),
    "access_log": ("server", "access_log"),
    "access_log_format": ("server", "access_log_format"),
    "metrics": ("server", "metrics"),
    "log_level": ("server", "log_level"),
    "ready_file": ("server", "ready_file"),
    "h2c": ("server", "h2c"),
    "tls_cert": ("server", "tls_cert"),
    "tls_key": ("server", "tls_key"),
    "tls_min": ("server", "tls_min"),
    "tls": ("server", "tls"),
    "tls_ca_dir": ("server", "tls_ca_dir"),
    "http3": ("server", "http3"),
    "quic_retry": ("server", "quic_retry"),
    "user": ("server", "user"),
    "listen": ("server", "listen"),
    "redirect_https": ("server", "redirect_https"),
    "proxy_protocol": ("server", "proxy_protocol"),
    "trusted_proxy": ("server", "trusted_proxies"),
    "max_conns_per_ip": ("limits", "max_conns_per_ip"),
    "rate_limit": ("limits", "rate_limit"),
    "rate_burst": ("limits", "rate_burst"),
    "memory_budget": ("limits", "memory_budget_bytes"),
    "max_streams": ("limits", "max_streams"),
    "h3_max_streams": ("limits", "h3_max_streams"),
    "max_connections": ("limits", "max_connections"),
    "header_timeout": ("limits", "header_timeout_s"),
    "keepalive_timeout": ("limits", "keepalive_timeout_s"),
    "send_timeout": ("limits", "send_timeout_s"),
    "grace": ("limits", "grace_s"),
    "index": ("site", "index"),
    "charset": ("site", "charset"),
    "dotfiles": ("site", "allow_dotfiles"),
    "follow_symlinks": ("site", "follow_symlinks_outside"),
    "precompressed": ("site", "precompressed"),
    "compress": ("site", "compress"),
    "cache_control": ("site", "cache_control"),
    "header": ("site", "headers"),
    "nosniff": ("site", "nosniff"),
    "autoindex": ("site", "autoindex"),
    "error_page": ("site", "error_pages"),
    "spa": ("site", "spa"),
    "live_reload": ("site", "live_reload"),
    "early_hints": ("site", "early_hints"),
    "hint_link": ("site", "hint_links"),
    "ws_echo": ("websocket", "echo"),
    "ws_max_message": ("websocket", "max_message_bytes"),
    "ws_origin": ("websocket", "origins"),
}


def _in_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """A configuration error names settings as the TOML file does (`grace_s`); the
    options that set them are added (`--grace (grace_s)`), for who used those."""
    flags: dict[str, str] = {}
    for action in parser._actions:
        if action.dest in _CLI_KEYS and action.option_strings:
            flags.setdefault(_CLI_KEYS[action.dest][1], action.option_strings[-1])

    def named(match: re.Match[str]) -> str:
        flag = flags.get(match[0])
        return match[0] if flag is None else f"{flag} ({match[0]})"

    return re.sub(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", named, message)


def config_from_args(argv: list[str]) -> Config:
    """Parse arguments (without the program name) into a validated Config."""
    if argv[:1] == ["serve"]:
        argv = argv[1:]
    parser = _parser()
    try:
        return _config(parser, parser.parse_args(argv))
    except ConfigError as exc:
        raise ConfigError(_in_flags(str(exc), parser)) from None


def _config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Config:
    if args.root and args.root_pos and args.root != args.root_pos:
        raise ConfigError("give the document root once (ROOT or --root)")
    cli: dict[str, dict[str, Any]] = {"server": {}, "site": {}, "limits": {}, "websocket": {}}
    for name, (section, key) in _CLI_KEYS.items():
        value = getattr(args, name)
        if value is not None:
            cli[section][key] = value
    root = args.root or args.root_pos
    if root is not None:
        cli["site"]["root"] = root
    file_values = load_toml(args.config) if args.config else {}
    mapping = merge(file_values, cli)
    if "root" not in mapping.get("site", {}):
        mapping["site"]["root"] = "www" if os.path.isdir("www") else "."
    return build(mapping)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from lanthorn.bench.cli import main as bench

        return bench(argv[1:])
    if argv[:1] in (["echo"], ["send"], ["ws"]):
        from lanthorn.toolkit import cli as toolkit

        tool = {"echo": toolkit.echo_main, "send": toolkit.send_main, "ws": toolkit.ws_main}
        return tool[argv[0]](argv[1:])
    try:
        config = config_from_args(argv)
    except ConfigError as exc:
        print(f"lanthorn: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # The WebSocket library logs each socket opened and closed (the access log has them),
    # the watcher each change live reload reports: warnings only.
    for chatty in ("websockets", "watchfiles"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))
    stale = native.stale()
    if stale:  # a checkout edited since `make` compiled it: the edits would not run
        log.warning(
            "compiled modules older than their sources (run `make native`): %s",
            ", ".join(stale),
        )
    from lanthorn.engines.launch import serve

    try:
        serve(config, reload=lambda: config_from_args(argv))
    except ConfigError as exc:
        print(f"lanthorn: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"lanthorn: error: {exc}", file=sys.stderr)
        return 1
    return 0
