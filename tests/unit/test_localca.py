"""--tls internal in memory: the local CA is made once (key 0600 in a 0700 directory)
and reused; its leaves name the served hosts, serve TLS clients only, and lapse; the
certificate is renewed two thirds of the way through its life, by the wall clock, looked
at no more often than the poll interval; the options are checked."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from lanthorn.cli import config_from_args, main
from lanthorn.config import build
from lanthorn.engines import localca, localtls
from lanthorn.engines.localca import LocalCA
from lanthorn.engines.localtls import LocalCertificate
from lanthorn.errors import ConfigError

NAMES = ["localhost", "127.0.0.1", "::1"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ca_is_made_once_with_its_key_private(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "lanthorn" / "ca"
    first = LocalCA.open(directory)
    pem = (directory / "ca.pem").read_bytes()
    key = (directory / "ca.key").read_bytes()
    assert _mode(directory) == 0o700 and _mode(directory / "ca.key") == 0o600
    again = LocalCA.open(directory)
    assert (directory / "ca.pem").read_bytes() == pem and (directory / "ca.key").read_bytes() == key
    assert again.cert == first.cert and again.path == directory / "ca.pem"
    assert first.name.startswith("lanthorn Local CA - ")


def test_the_ca_signs_leaves_only_for_ten_years(tmp_path: Path) -> None:
    cert = LocalCA.open(tmp_path / "ca").cert
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert life >= datetime.timedelta(days=3650)
    assert cert.issuer == cert.subject


def test_an_existing_directory_is_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    LocalCA.open(directory)
    assert _mode(directory) == 0o700


def test_a_damaged_or_unwritable_ca_is_a_config_error(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    LocalCA.open(directory)
    (directory / "ca.key").write_bytes(b"not a key")
    with pytest.raises(ConfigError, match="is damaged"):
        LocalCA.open(directory)
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"local CA in '.*file/ca'"):
        LocalCA.open(blocked / "ca")


def test_the_leaf_names_the_served_hosts_and_serves_tls_only(tmp_path: Path) -> None:
    ca = LocalCA.open(tmp_path / "ca")
    now = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC).timestamp()
    leaf = ca.issue([*NAMES, "dev.example", "192.0.2.7"], 3600.0, now)
    cert = x509.load_pem_x509_certificate(leaf.cert_pem)
    cert.verify_directly_issued_by(ca.cert)
    assert cert.serial_number == leaf.serial
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["localhost", "dev.example"]
    assert alt.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "192.0.2.7")
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc.timestamp() == now + 3600 == leaf.not_after
    assert cert.not_valid_before_utc.timestamp() == now - 60  # a little clock skew is fine


def test_python_ssl_verifies_a_leaf_against_the_ca(tmp_path: Path) -> None:
    """A real handshake in memory: Python's client, the CA as its only trust anchor."""
    ca = LocalCA.open(tmp_path / "ca")
    certificate = LocalCertificate(ca, NAMES)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.load(server.load_cert_chain)
    for name in ("localhost", "127.0.0.1"):
        client = ssl.create_default_context(cafile=str(ca.path))
        assert _handshake(client, server, name) == certificate.leaf.serial
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(ssl.create_default_context(cafile=str(ca.path)), server, "elsewhere.test")


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, name: str) -> int:
    """The serial number of the certificate the client verified."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname=name)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (c, s):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    der = c.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


def test_renewal_at_two_thirds_of_the_life_by_the_wall_clock(tmp_path: Path) -> None:
    """The wall clock is read once per poll (the monotonic `now` says when), and a new
    leaf (with a new key) goes to everything that loaded the old one."""
    clock = Clock()
    certificate = LocalCertificate(LocalCA.open(tmp_path / "ca"), NAMES, 1200.0, clock)
    loaded: dict[str, list[bytes]] = {"tls": [], "quic": []}
    for pems in loaded.values():
        certificate.load(_keeping(pems))
    first = certificate.leaf
    poll = 1200.0 / 12  # under a minute for a short life
    certificate.tick(0.0)
    reads = clock.reads
    certificate.tick(poll / 2)  # before the next poll: not even the clock is read
    assert clock.reads == reads
    clock.now += 1200 * 2 / 3 - 1
    certificate.tick(poll)
    assert certificate.leaf is first
    clock.now += 1
    certificate.tick(poll * 1.5)  # due, but the poll is not
    assert certificate.leaf is first
    certificate.tick(poll * 2)
    renewed = certificate.leaf
    assert renewed.serial != first.serial and renewed.key_pem != first.key_pem
    assert renewed.not_after == clock.now + 1200
    assert all(pems == [first.cert_pem, renewed.cert_pem] for pems in loaded.values())


def _keeping(pems: list[bytes]) -> Callable[[str, str | None], None]:
    """A loader that keeps each certificate it is given."""
    return lambda cert, key: pems.append(Path(cert).read_bytes())


def test_the_temporary_files_are_private_and_removed(tmp_path: Path) -> None:
    certificate = LocalCertificate(LocalCA.open(tmp_path / "ca"), NAMES)
    seen: list[tuple[Path, int, int]] = []

    def into(cert: str, key: str | None) -> None:
        assert key is not None
        seen.append((Path(key), _mode(Path(key).parent), _mode(Path(key))))

    certificate.load(into)
    [(key, dir_mode, key_mode)] = seen
    assert (dir_mode, key_mode) == (0o700, 0o600)
    assert not key.exists() and not key.parent.exists()


def test_a_failed_renewal_keeps_the_old_leaf_and_tries_again(tmp_path: Path) -> None:
    clock = Clock()
    certificate = LocalCertificate(LocalCA.open(tmp_path / "ca"), NAMES, 120.0, clock)
    failing = [False]

    def into(cert: str, key: str | None) -> None:
        if failing[0]:
            raise ssl.SSLError("no")

    certificate.load(into)
    first = certificate.leaf
    failing[0] = True
    clock.now += 100
    certificate.tick(0.0)
    assert certificate.leaf is first
    failing[0] = False
    certificate.tick(10.0)  # the next poll (120 / 12 s later)
    assert certificate.leaf is not first


def test_served_names() -> None:
    for everywhere in ("localhost", "0.0.0.0", "::", ""):
        assert localca.served_names([everywhere]) == NAMES
    assert localca.served_names(["dev.example"]) == [*NAMES, "dev.example"]
    assert localca.served_names(["[fd00::1]", "192.0.2.7", "::1"]) == [
        *NAMES,
        "fd00::1",
        "192.0.2.7",
    ]


def test_the_names_are_those_of_the_https_listeners(tmp_path: Path) -> None:
    """With several listeners, the hosts of the HTTPS ones (not the cleartext ones)."""
    config = config_from_args(
        [str(tmp_path), "--tls", "internal", "--tls-ca-dir", str(tmp_path / "ca"),
         "--listen", "192.0.2.1:8080", "--listen", "tls:dev.example:8443"]
    )  # fmt: skip
    assert localtls.start(config.server).names == [*NAMES, "dev.example"]


def test_the_data_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert localca.default_directory() == tmp_path / "xdg" / "lanthorn" / "ca"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert localca.default_directory() == tmp_path / ".local" / "share" / "lanthorn" / "ca"


def test_the_lifetime_for_tests(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = config_from_args([str(tmp_path), "--tls", "internal", "--tls-ca-dir", str(tmp_path)])
    assert localtls.start(config.server).lifetime_s == 24 * 3600
    monkeypatch.setenv(localtls.LIFETIME_ENV, "5")
    assert localtls.start(config.server).lifetime_s == 5
    monkeypatch.setenv(localtls.LIFETIME_ENV, "soon")
    with pytest.raises(ConfigError, match="not a positive number"):
        localtls.start(config.server)


def test_options_and_toml(tmp_path: Path) -> None:
    config = config_from_args([str(tmp_path), "--tls", "internal"])
    assert config.server.tls == "internal" and config.server.https and config.server.quic
    toml = build({"server": {"tls": "internal", "tls_ca_dir": "/x"}, "site": {"root": "."}})
    assert (toml.server.tls, toml.server.tls_ca_dir) == ("internal", "/x")
    with pytest.raises(ConfigError, match="tls 'acme' is not one of internal"):
        build({"server": {"tls": "acme"}})


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--tls", "internal", "--tls-cert", "c.pem"],
            "tls internal issues its own certificate: drop it or --tls-cert (tls_cert)\n",
        ),
        (["--tls-ca-dir", "x"], "--tls-ca-dir (tls_ca_dir) needs tls internal\n"),
        (["--tls", "acme"], "argument --tls: invalid choice: 'acme' (choose from "),
    ],
)
def test_mistakes_are_one_line_and_exit_2(
    args: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code: object = main([str(tmp_path), *args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("lanthorn: error: ") and said in err and err.count("\n") == 1, err
