"""The server's TLS context and certificate, built once by the launcher before it binds
or forks (so it fails at start-up, and every worker shares the context's session-ticket
keys); the driver's TLS sessions (driver/tls.py) only use it. A renewed certificate
(--tls internal) is loaded into the same context, so those keys stay shared."""

from __future__ import annotations

import os
import ssl

from lanthorn.config import Config
from lanthorn.driver.context import Certificate, CertificateFiles
from lanthorn.driver.tls import ALPN
from lanthorn.errors import ConfigError

# TLS 1.2 suites: forward secrecy and AEAD only (Mozilla's "intermediate" profile; none
# of them is on RFC 9113 Appendix A's list that HTTP/2 refuses). TLS 1.3 suites are all
# of that kind already.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def context(cert: str, key: str | None, min_version: str = "1.2") -> ssl.SSLContext:
    """The server's TLS context; ConfigError when the certificate or key cannot be used.
    ALPN offers h2 whatever --no-h2c says: that option is about cleartext."""
    return _loaded(CertificateFiles(cert, key), min_version)


def _loaded(files: CertificateFiles, min_version: str) -> ssl.SSLContext:
    """A context with `files` loaded into it (and `files` knowing it, for SIGHUP)."""
    cert, key = files.cert, files.key
    for kind, path in (("certificate", cert), ("key", key)):
        if path is not None and os.path.isdir(path):
            raise ConfigError(f"TLS {kind} {path!r} is a directory, not a PEM file")
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"TLS {kind} {path!r} not found")
    ctx = _bare(min_version)
    try:
        files.load(ctx.load_cert_chain)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(_unusable(cert, key, exc)) from exc
    return ctx


def _bare(min_version: str) -> ssl.SSLContext:
    """A server context with everything but its certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _VERSIONS[min_version]  # at least 1.2: RFC 9113 §9.2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION  # RFC 9113 §9.2.1
    ctx.set_alpn_protocols(ALPN)
    return ctx


def _unusable(cert: str, key: str | None, exc: Exception) -> str:
    """Why the certificate and key cannot be used, in the user's words where OpenSSL's
    ("[SSL] PEM lib") name none."""
    if b"CERTIFICATE" not in _head(cert):
        return f"TLS certificate {cert!r} is not a PEM certificate"
    if key is None and b"PRIVATE KEY" not in _head(cert):
        return f"TLS certificate {cert!r} holds no private key: give it with --tls-key"
    if key is not None and b"PRIVATE KEY" not in _head(key):
        return f"TLS key {key!r} is not a PEM private key"
    if isinstance(exc, ssl.SSLError) and exc.reason == "KEY_VALUES_MISMATCH":
        return f"TLS key {key or cert!r} is not the key of certificate {cert!r}"
    return f"cannot use TLS certificate {cert!r} with key {key or cert!r}: {exc}"


def _head(path: str) -> bytes:
    with open(path, "rb") as pem:
        return pem.read(1 << 20)


def server_tls(config: Config) -> tuple[ssl.SSLContext, Certificate] | None:
    """The TLS context and the certificate loaded into it when serving HTTPS, else
    None. With --tls internal, the local CA is made on first use and issues the first
    certificate here."""
    server = config.server
    if server.tls == "internal":
        from lanthorn.engines import localtls  # (cryptography: loaded only for it)

        local = localtls.start(server)
        ctx = _bare(server.tls_min)
        local.load(ctx.load_cert_chain)
        return ctx, local
    if server.tls_cert is None:
        return None
    files = CertificateFiles(server.tls_cert, server.tls_key)
    return _loaded(files, server.tls_min), files
