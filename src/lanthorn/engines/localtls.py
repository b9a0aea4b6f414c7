"""`--tls internal`: the server's certificate comes from the user's local CA
(engines/localca) and is renewed while the server runs.

A leaf lives LIFETIME_S (24 h: Caddy's 12 h would do as well; a day is long enough that
a laptop that slept overnight wakes up with a good certificate more often than not) and
is renewed once two thirds of it have passed, with a new key. Its key stays in memory:
it touches the disk only inside a private temporary directory, for the moment it takes
OpenSSL to read it (`ssl.SSLContext.load_cert_chain` reads files only).

Each worker renews its own copy of the certificate (forked with it): nothing passes
between processes, `-w 1` and `-w N` work the same way, and since every copy chains to
the same CA, a client does not care which worker's leaf it gets. The supervisor's copy
is never renewed; a worker it forks later renews at once if its copy is due.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lanthorn.config import ServerConfig
from lanthorn.driver.context import Load
from lanthorn.engines.localca import Leaf, LocalCA, default_directory, served_names
from lanthorn.errors import ConfigError

log = logging.getLogger("lanthorn")

LIFETIME_S = 24 * 3600.0
RENEW_AT = 2 / 3  # of a leaf's lifetime
# How often, at most, the wall clock is compared with the renewal time. The monotonic
# clock stops while the machine sleeps, so a monotonic deadline alone could pass a
# certificate's expiry; the wall clock does not.
POLL_S = 60.0
# For tests only: a leaf lifetime in seconds, to see renewals happen.
LIFETIME_ENV = "LANTHORN_TLS_INTERNAL_LIFETIME_S"


class LocalCertificate:
    """The leaf the local CA issued for the served names, kept fresh. `load` registers
    who takes it in (the TLS context, each QUIC configuration); `tick` renews it when
    due and loads the new one into each of them."""

    def __init__(
        self,
        ca: LocalCA,
        names: list[str],
        lifetime_s: float = LIFETIME_S,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.ca = ca
        self.names = names
        self.lifetime_s = lifetime_s
        self._wall = wall
        self._poll_s = min(POLL_S, lifetime_s / 12)
        self._loaders: list[Load] = []
        self._check_at = 0.0  # monotonic: the wall clock is next looked at then
        self._adopt(self._issue())

    def _issue(self) -> Leaf:
        return self.ca.issue(self.names, self.lifetime_s, self._wall())

    def _adopt(self, leaf: Leaf) -> None:
        self.leaf = leaf
        # Wall clock: two thirds of the way from its issue to its expiry.
        self._renew_at = leaf.not_after - self.lifetime_s * (1 - RENEW_AT)

    def load(self, into: Load) -> None:
        with _files(self.leaf) as (cert, key):
            into(cert, key)
        self._loaders.append(into)

    def tick(self, now: float) -> None:
        if now < self._check_at:
            return
        self._check_at = now + self._poll_s
        if self._wall() >= self._renew_at:
            self.renew()

    def renew(self) -> None:
        """A new leaf, loaded wherever the old one was; on failure the old one stays
        and the next poll tries again."""
        try:
            leaf = self._issue()
            with _files(leaf) as (cert, key):
                for into in self._loaders:
                    into(cert, key)
        except (OSError, ValueError) as exc:
            log.error("could not renew the local TLS certificate: %s", exc)
            return
        self._adopt(leaf)
        log.info(
            "renewed the local TLS certificate (serial %x, valid until %s)",
            leaf.serial,
            time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(leaf.not_after)),
        )

    def trust_commands(self, url: str) -> list[str]:
        """How to make each kind of client trust the CA (the server log says it)."""
        ca = str(self.ca.path)
        return [
            f"curl: curl --cacert {ca} {url}",
            f"the system (Debian, Ubuntu): sudo cp {ca} /usr/local/share/ca-certificates/"
            "lanthorn.crt && sudo update-ca-certificates",
            "Chromium, Chrome (NSS): mkdir -p $HOME/.pki/nssdb && certutil -d "
            f"sql:$HOME/.pki/nssdb -A -t C,, -n lanthorn -i {ca}",
        ]


def start(server: ServerConfig) -> LocalCertificate:
    """The local CA (made on first use) and a first leaf for the served names;
    ConfigError when the CA cannot be read or made."""
    directory = Path(server.tls_ca_dir) if server.tls_ca_dir else default_directory()
    ca = LocalCA.open(directory)
    log.info("local CA %r: %s", ca.name, ca.path)
    hosts = [one.host for one in server.listeners() if one.tls]
    return LocalCertificate(ca, served_names(hosts), _lifetime_s())


def _lifetime_s() -> float:
    text = os.environ.get(LIFETIME_ENV)
    if not text:
        return LIFETIME_S
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ConfigError(f"{LIFETIME_ENV} {text!r} is not a positive number of seconds")
    return value


@contextlib.contextmanager
def _files(leaf: Leaf) -> Iterator[tuple[str, str]]:
    """The leaf's certificate and key as files in a directory only this user can
    enter (mkdtemp makes it 0700), removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="lanthorn-tls-") as directory:
        cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        for path, data in ((cert, leaf.cert_pem), (key, leaf.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as out:
                out.write(data)
        yield cert, key
