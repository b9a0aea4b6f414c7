"""A certificate authority of the user's own, as Caddy's `tls internal` has: made once,
kept in the user's data directory, it signs the short-lived certificates a development
server presents for the names it answers to (engines/localtls renews them).

Invariants: the CA's key file is mode 0600 in a directory of mode 0700, and both are
written before `ca.pem` appears (under a lock, so two servers starting at once make one
CA, not two); a directory holding `ca.pem` is never written again. Leaf keys are never
stored here: they live in the server's memory.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import ipaddress
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lanthorn.errors import ConfigError

CA_LIFETIME = datetime.timedelta(days=3650)
# A leaf is valid from a minute before it is made: a client whose clock is a little
# behind (a VM, a container) still accepts it.
BACKDATE = datetime.timedelta(seconds=60)
CERT_FILE = "ca.pem"
KEY_FILE = "ca.key"
_LOCK_FILE = ".lock"


def default_directory() -> Path:
    """`$XDG_DATA_HOME/lanthorn/ca`, else `~/.local/share/lanthorn/ca` (XDG Base
    Directory specification)."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(data) / "lanthorn" / "ca"


@dataclass(frozen=True)
class Leaf:
    """A certificate the CA signed, with its key (PEM) and when it lapses."""

    cert_pem: bytes
    key_pem: bytes
    serial: int
    not_after: float  # wall-clock seconds (time.time)


class LocalCA:
    """The CA in `directory`: its certificate (`path`) and key, loaded or made once."""

    def __init__(self, path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.path = path  # the CA certificate clients are told to trust
        self.cert = cert
        self._key = key

    @classmethod
    def open(cls, directory: Path) -> LocalCA:
        """The CA kept in `directory`, made there (with the directory) the first time;
        ConfigError when it can be neither read nor made."""
        try:
            with _locked(directory):
                if not (directory / CERT_FILE).exists():
                    _create(directory)
                return cls._load(directory)
        except OSError as exc:
            raise ConfigError(f"local CA in {str(directory)!r}: {exc.strerror or exc}") from None

    @classmethod
    def _load(cls, directory: Path) -> LocalCA:
        path = directory / CERT_FILE
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            key = serialization.load_pem_private_key((directory / KEY_FILE).read_bytes(), None)
        except ValueError as exc:
            raise ConfigError(f"local CA in {str(directory)!r} is damaged: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"local CA key {str(directory / KEY_FILE)!r} is not an EC key")
        return cls(path, cert, key)

    @property
    def name(self) -> str:
        """Its common name, as certificate viewers show it."""
        names = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else self.cert.subject.rfc4514_string()

    def issue(self, names: Sequence[str], lifetime_s: float, now: float) -> Leaf:
        """A new key and a certificate for `names` (DNS names or IP addresses; the first
        is the subject), valid for server authentication from `now` (wall-clock
        seconds) for `lifetime_s`."""
        key = ec.generate_private_key(ec.SECP256R1())
        issued = datetime.datetime.fromtimestamp(now, datetime.UTC)
        not_after = issued + datetime.timedelta(seconds=lifetime_s)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(issued - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return Leaf(
            cert.public_bytes(serialization.Encoding.PEM),
            _private_pem(key),
            serial,
            not_after.timestamp(),
        )


def served_names(hosts: Iterable[str]) -> list[str]:
    """What a local server's certificate names: localhost and the loopback addresses,
    and each host it listens on for HTTPS unless that is every address."""
    names = ["localhost", "127.0.0.1", "::1"]
    for given in hosts:
        host = given.strip("[]")
        if host and host not in names and host not in ("0.0.0.0", "::"):
            names.append(host)
    return names


def _alt_names(names: Sequence[str]) -> list[x509.GeneralName]:
    found: list[x509.GeneralName] = []
    for name in names:
        try:
            found.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            found.append(x509.DNSName(name))
    return found


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """`directory` (made 0700 if missing), held by this process alone meanwhile."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _create(directory: Path) -> None:
    """A new CA in `directory`: the key first (0600), then the certificate, each
    written whole under another name and renamed into place."""
    os.chmod(directory, 0o700)  # it holds a key: no one else may list it
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lanthorn"),
            x509.NameAttribute(NameOID.COMMON_NAME, _ca_common_name()),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        # It signs leaves only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / KEY_FILE, _private_pem(key), 0o600)
    _write(directory / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _ca_common_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        user = str(os.getuid())
    return f"lanthorn Local CA - {user}@{socket.gethostname()}"[:64]  # RFC 5280: ub-common-name


def _write(path: Path, data: bytes, mode: int) -> None:
    partial = path.with_name(path.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()  # left by a start that was killed half-way
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with open(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )
