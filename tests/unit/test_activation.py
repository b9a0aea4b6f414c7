"""systemd's socket passing (engines/activation) and readiness (engines/notify), on
sockets made here; tests/integration/test_activation.py passes them to a real server."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lanthorn.config import Listen, ServerConfig
from lanthorn.engines import activation
from lanthorn.engines.activation import Passed, adopt, take
from lanthorn.engines.notify import notify
from lanthorn.errors import ConfigError


def test_nothing_passed() -> None:
    assert take({}, 100) is None


def test_passed_to_this_process() -> None:
    env = {"LISTEN_PID": "100", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:quic", "HOME": "/"}
    assert take(env, 100) == Passed(range(3, 5), ("web", "quic"))
    assert env == {"HOME": "/"}  # removed: nothing started from here takes them


def test_passed_to_another_process_is_ignored_and_removed() -> None:
    env = {"LISTEN_PID": "99", "LISTEN_FDS": "1"}
    assert take(env, 100) is None
    assert env == {}


@pytest.mark.parametrize("names", [None, "", "a:b:c"])
def test_names_missing_or_miscounted_are_unknown(names: str | None) -> None:
    env = {"LISTEN_PID": "7", "LISTEN_FDS": "2"}
    if names is not None:
        env["LISTEN_FDNAMES"] = names
    assert take(env, 7) == Passed(range(3, 5), ("unknown", "unknown"))


def test_zero_is_nothing() -> None:
    assert take({"LISTEN_PID": "7", "LISTEN_FDS": "0"}, 7) is None


@pytest.mark.parametrize(("pid", "fds"), [("x", "1"), ("7", "one"), ("7", "-1")])
def test_nonsense_is_an_error(pid: str, fds: str) -> None:
    with pytest.raises(ConfigError, match="LISTEN_"):
        take({"LISTEN_PID": pid, "LISTEN_FDS": fds}, 7)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


def test_adopt_a_listening_tcp_socket(listener: socket.socket) -> None:
    fd = os.dup(listener.fileno())  # as systemd's: inheritable, blocking
    with adopt(fd, "web") as sock:
        assert sock.fileno() == fd
        assert sock.type == socket.SOCK_STREAM
        assert sock.getsockname() == listener.getsockname()
        assert not sock.getblocking()
        assert not os.get_inheritable(fd)  # close-on-exec


def test_adopt_a_udp_socket() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
        udp.bind(("::1", 0))
        with adopt(os.dup(udp.fileno()), "quic") as sock:
            assert sock.type == socket.SOCK_DGRAM
            assert sock.family == socket.AF_INET6
            assert not sock.getblocking()


def _refused(fd: int, match: str) -> None:
    try:
        with pytest.raises(ConfigError, match=match):
            adopt(fd, "x")
    finally:
        os.close(fd)  # refused: still the caller's


def test_refuse_a_tcp_socket_not_listening() -> None:
    with socket.socket() as sock:
        _refused(os.dup(sock.fileno()), "not listening")


def test_refuse_a_unix_socket(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(tmp_path / "s"))
        sock.listen()
        _refused(os.dup(sock.fileno()), "not an IPv4 or IPv6 socket")


def test_refuse_what_is_not_a_socket() -> None:
    read, write = os.pipe()
    os.close(write)
    _refused(read, "not a socket")


def test_refuse_a_closed_descriptor() -> None:
    read, write = os.pipe()
    os.close(read)
    os.close(write)
    with pytest.raises(ConfigError, match="not open"):
        adopt(read, "x")


def _passing(monkeypatch: pytest.MonkeyPatch, *socks: socket.socket) -> None:
    """As if systemd had passed `socks` (duplicates of them) to this process."""
    fds = [os.dup(s.fileno()) for s in socks]
    passed = Passed(range(fds[0], fds[0] + len(fds)), tuple(f"n{i}" for i in range(len(fds))))
    assert list(passed.fds) == fds, "duplicates not consecutive"
    monkeypatch.setattr(activation, "take", lambda environ, pid: passed)


QUIC = ServerConfig(tls_cert="cert.pem")  # HTTPS with HTTP/3 beside it
NO_QUIC = ServerConfig(tls_cert="cert.pem", http3=False)


def test_inherited_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTEN_PID", raising=False)
    assert activation.inherited(QUIC) == []


def test_inherited_udp_unused_without_http3(
    monkeypatch: pytest.MonkeyPatch, listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        _passing(monkeypatch, listener, udp)
        with caplog.at_level(logging.INFO, "lanthorn"):
            sockets = [s for s, _ in activation.inherited(NO_QUIC)]
    assert [s.type for s in sockets] == [socket.SOCK_STREAM]
    assert "not used: HTTP/3 is off" in caplog.text
    port = listener.getsockname()[1]
    assert f"TCP 127.0.0.1:{port}" in caplog.text and "(n0, n1:" in caplog.text
    for sock in sockets:
        sock.close()


def test_inherited_udp_served_with_http3(
    monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        _passing(monkeypatch, listener, udp)
        sockets = [s for s, _ in activation.inherited(QUIC)]
        assert [s.getsockname() for s in sockets] == [listener.getsockname(), udp.getsockname()]
    for sock in sockets:
        sock.close()


def test_inherited_http3_binds_udp_beside(
    monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    _passing(monkeypatch, listener)
    sockets = [s for s, _ in activation.inherited(QUIC)]
    assert [(s.type, s.getsockname()) for s in sockets] == [
        (socket.SOCK_STREAM, listener.getsockname()),
        (socket.SOCK_DGRAM, listener.getsockname()),
    ]
    for sock in sockets:
        sock.close()


def test_inherited_needs_a_tcp_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        _passing(monkeypatch, udp)
        with pytest.raises(ConfigError, match="ListenStream="):
            activation.inherited(QUIC)


def test_inherited_sockets_take_the_listener_on_their_port(
    monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    """A passed socket on the port of a `--listen` is that listener (HTTPS, PROXY
    protocol...); one on another port is like --host/--port's."""
    port = listener.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        _passing(monkeypatch, listener, other)
        server = ServerConfig(tls_cert="c.pem", http3=False, listen=(f"proxy:tls::{port}",))
        opened = activation.inherited(server)
        assert [one for _, one in opened] == [
            Listen("", port, tls=True, proxy=True),
            Listen("localhost", other.getsockname()[1], tls=True),
        ]
    for sock, _ in opened:
        sock.close()


# sd_notify ------------------------------------------------------------------------------


def test_notify_a_path(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(tmp_path / "notify"))
        assert notify("READY=1\nSTATUS=x", {"NOTIFY_SOCKET": str(tmp_path / "notify")})
        assert systemd.recv(100) == b"READY=1\nSTATUS=x"


def test_notify_the_abstract_namespace() -> None:
    name = f"lanthorn-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind("\0" + name)
        assert notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert systemd.recv(100) == b"READY=1"


def test_notify_nothing_without_the_variable() -> None:
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": "vsock:2:1234"})


def test_notify_unreachable_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert "cannot notify systemd" in caplog.text
