"""Listeners as configured (`--listen`, [[listen]]), the PROXY protocol header, and the
client a trusted proxy names."""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path

import pytest

from lanthorn.cli import config_from_args
from lanthorn.config import Listen
from lanthorn.core.redirects import to_https
from lanthorn.core.request import Request
from lanthorn.driver.realip import RealClient
from lanthorn.engines.listeners import NOTSENT_LOWAT_BYTES, tune
from lanthorn.errors import ConfigError
from lanthorn.protocol.proxyheader import V2_SIGNATURE, ProxyHeaderError, parse


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1:8080", Listen("127.0.0.1", 8080)),
        (":8080", Listen("", 8080)),
        ("tls:0.0.0.0:8443", Listen("0.0.0.0", 8443, tls=True)),
        ("h3:[::1]:443", Listen("::1", 443, tls=True, http3=True)),
        ("proxy:tls:localhost:8443", Listen("localhost", 8443, tls=True, proxy=True)),
        ("redirect:[::]:80", Listen("::", 80, redirect=True)),
    ],
)
def test_listen_specs(spec: str, expected: Listen) -> None:
    assert Listen.parse(spec) == expected


def test_accepted_tcp_connections_are_tuned() -> None:
    """No Nagle delay, and little unsent data left in the kernel, where a more urgent
    HTTP/2 response could not pass it; Unix sockets have neither."""
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.create_connection(listener.getsockname()),
        listener.accept()[0] as conn,
    ):
        tune(conn)
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == NOTSENT_LOWAT_BYTES
    one, other = socket.socketpair()
    with one, other:
        tune(one)  # nothing to set, and nothing raised


@pytest.mark.parametrize("spec", ["8080", "tls:8443", "::1:80", "host:99999", "tls:[::1:80", ""])
def test_malformed_listen_specs_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="is not"):
        Listen.parse(spec)


def test_listeners_from_the_command_line(tmp_path: Path) -> None:
    cert = str(tmp_path / "cert.pem")
    config = config_from_args(
        [str(tmp_path), "--listen", ":8080", "--listen", "tls::8443", "--tls-cert", cert,
         "--redirect-https", "--proxy-protocol"]
    )  # fmt: skip
    assert config.server.listeners() == (
        Listen("", 8080, proxy=True, redirect=True),
        Listen("", 8443, tls=True, proxy=True),
    )
    # Without --listen: one listener at --host/--port, HTTPS when there is a certificate.
    plain = config_from_args([str(tmp_path), "--host", "::1", "-p", "81"])
    assert plain.server.listeners() == (Listen("::1", 81),)
    secure = config_from_args([str(tmp_path), "-p", "443", "--tls-cert", cert])
    assert secure.server.listeners() == (Listen("localhost", 443, tls=True),)


def test_listen_tables_in_toml(tmp_path: Path) -> None:
    toml = tmp_path / "lanthorn.toml"
    toml.write_text(
        '[server]\ntls_cert = "c.pem"\nlisten = ["127.0.0.1:8080"]\n'
        '[[listen]]\naddress = "0.0.0.0:8443"\ntls = true\nproxy_protocol = true\n'
        '[[listen]]\naddress = "0.0.0.0:80"\nredirect_https = true\n'
    )
    config = config_from_args([str(tmp_path), "--config", str(toml)])
    assert config.server.listeners() == (
        Listen("127.0.0.1", 8080),
        Listen("0.0.0.0", 8443, tls=True, proxy=True),
        Listen("0.0.0.0", 80, redirect=True),
    )
    toml.write_text('[[listen]]\naddress = "0.0.0.0:80"\nredirect = true\n')
    with pytest.raises(ConfigError, match=r"unknown key in \[\[listen\]\] 'redirect'"):
        config_from_args([str(tmp_path), "--config", str(toml)])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "tls::8443"], "tls::8443 needs --tls-cert"),
        (["--listen", ":80", "--tls-cert", "c", "--http3"], "http3 needs a tls listener"),
        (["--listen", "redirect::80"], "no listener has tls"),
        (["--listen", "tls:redirect::443", "--tls-cert", "c"], "HTTPS already"),
        (["--listen", "a:80", "--listen", "proxy:b:80"], "share a port but not a kind"),
        (["--listen", "h3::443", "--tls-cert", "c", "--model", "threads"], "asyncio or events"),
        (["--trusted-proxy", "10.0.0.0/33"], "trusted_proxies"),
    ],
)
def test_listener_mistakes_are_named(tmp_path: Path, args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_args([str(tmp_path), *args])


def test_quic_only_beside_tls_listeners(tmp_path: Path) -> None:
    config = config_from_args(
        [str(tmp_path), "--listen", ":80", "--listen", "tls::443", "--tls-cert", "c"]
    )
    plain, secure = config.server.listeners()
    assert not config.server.quic_on(plain)
    assert config.server.quic_on(secure) and config.server.quic
    off = config_from_args([str(tmp_path), "--listen", "tls::443", "--tls-cert", "c", "--no-http3"])
    assert not off.server.quic


# --- PROXY protocol ----------------------------------------------------------------------


def _v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command, family, len(body)) + body


def test_proxy_v1() -> None:
    line = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n"
    assert parse(line + b"GET /") == ("203.0.113.7", len(line))
    line6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 443\r\n"
    assert parse(line6) == ("2001:db8::7", len(line6))
    assert parse(b"PROXY UNKNOWN\r\n") == (None, 15)
    for partial in (b"P", b"PROXY", b"PROXY TCP4 203.0.113.7 10.0"):
        assert parse(partial) is None


@pytest.mark.parametrize(
    "bad",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.1 1\r\n",
        b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.1 1 70000\r\n",
        b"PROXY TCP5 a b 1 2\r\n",
        b"PROXY TCP4 " + b"1" * 120,
        b"\x16\x03\x01",  # TLS without the header
        _v2(2, 0x11, b"\x00" * 12),  # neither LOCAL nor PROXY
        _v2(1, 0x11, b"\x00" * 4),  # too short for IPv4
        V2_SIGNATURE[:11] + b"X" + b"\x21\x11\x00\x0c",
        V2_SIGNATURE + b"\x21\x11\xff\xff",  # longer than any header lanthorn takes
    ],
)
def test_not_a_proxy_header(bad: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(bad)


def test_proxy_v2() -> None:
    body4 = socket.inet_aton("198.51.100.4") + socket.inet_aton("10.0.0.1") + b"\xc0\x00\x01\xbb"
    header = _v2(1, 0x11, body4 + b"\x03\x00\x04abcd")  # with a TLV (CRC32c), skipped
    assert parse(header + b"\x16\x03") == ("198.51.100.4", len(header))
    body6 = ipaddress.IPv6Address("2001:db8::4").packed + bytes(16) + b"\xc0\x00\x01\xbb"
    assert parse(_v2(1, 0x21, body6)) == ("2001:db8::4", 52)
    assert parse(_v2(0, 0x00, b"")) == (None, 16)  # LOCAL: the balancer's health check
    assert parse(_v2(1, 0x31, bytes(216))) == (None, 232)  # AF_UNIX: no address
    assert parse(header[:10]) is None
    assert parse(header[:20]) is None


# --- the client behind a trusted proxy ---------------------------------------------------


def _request(**fields: str) -> Request:
    headers = {k.replace("_", "-").encode(): v.encode() for k, v in fields.items()}
    return Request(b"GET", b"/", "1.1", headers)


def test_real_client_behind_trusted_proxies() -> None:
    nets = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    clients = RealClient(nets)
    xff = _request(x_forwarded_for="198.51.100.1, 203.0.113.5, 10.0.0.2")
    assert clients.of("10.0.0.1", xff) == "203.0.113.5"  # the last hop not trusted
    assert clients.of("192.0.2.1", xff) == "192.0.2.1"  # not from a trusted proxy
    everyone_trusted = _request(x_forwarded_for="10.1.1.1, 10.0.0.2")
    assert clients.of("::1", everyone_trusted) == "10.1.1.1"
    forwarded = _request(forwarded='for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https')
    assert clients.of("::1", forwarded) == "2001:db8:cafe::17"
    assert clients.of("::1", _request(forwarded="for=192.0.2.43:80;by=x")) == "192.0.2.43"
    for useless in (_request(), _request(x_forwarded_for="unknown"), _request(forwarded="for=_x")):
        assert clients.of("10.0.0.1", useless) == "10.0.0.1"
    assert RealClient(()).of("10.0.0.1", xff) == "10.0.0.1"


# --- --redirect-https ---------------------------------------------------------------------


def _redirect(target: bytes, host: bytes | None, port: int = 8443) -> bytes | None:
    headers = {b"host": host} if host is not None else {}
    plan = to_https(Request(b"POST", target, "1.1", headers), port, [])
    if plan is None:
        return None
    assert plan.status == 308
    return dict(plan.headers)[b"location"]


def test_redirects_keep_host_path_and_query() -> None:
    assert _redirect(b"/a/b?x=1", b"example.com:8080") == b"https://example.com:8443/a/b?x=1"
    assert _redirect(b"/", b"example.com", 443) == b"https://example.com/"
    assert _redirect(b"/", b"[::1]:80") == b"https://[::1]:8443/"
    assert _redirect(b"http://other.example/p?q", b"example.com") == b"https://example.com:8443/p?q"
    assert _redirect(b"/.well-known/acme-challenge/tok", b"example.com") is None
    assert _redirect(b"/", None) is None
