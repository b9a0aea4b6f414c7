"""Listening sockets passed by systemd (socket activation, sd_listen_fds(3)).

When `LISTEN_PID` is this process's pid, `LISTEN_FDS=n` says that descriptors 3 to 3+n-1
are sockets systemd opened for it (a .socket unit's `ListenStream=` and
`ListenDatagram=` lines, in their order), and `LISTEN_FDNAMES` names them (colon-separated,
`FileDescriptorName=`; used in the log only). The server then serves on those and binds
nothing for TCP: --host and --port are not used.

- The variables are removed whether or not they were meant for this process (as
  `sd_listen_fds(1)` does), so nothing started from here takes them for its own.
- Each descriptor is made close-on-exec and non-blocking. A TCP socket must already be
  listening; a UDP socket is HTTP/3's, when HTTP/3 is on (else it is closed, with a
  warning). With HTTP/3 on and no UDP socket passed, one is bound beside each TCP socket
  as without systemd.
- With `-w N` every worker accepts from the same passed sockets (inherited over fork),
  instead of binding its own with SO_REUSEPORT: the kernel wakes the workers in turn and
  each engine takes an empty accept queue (EAGAIN) in its stride.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import stat
from collections.abc import MutableMapping
from dataclasses import dataclass

from lanthorn.config import Listen, ServerConfig
from lanthorn.engines import listeners as listening
from lanthorn.errors import ConfigError

log = logging.getLogger("lanthorn")

FIRST_FD = 3  # SD_LISTEN_FDS_START
_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


@dataclass(frozen=True)
class Passed:
    """The descriptors systemd passed to this process, and their names ("unknown" when
    it gave none, as `sd_listen_fds_with_names` says)."""

    fds: range
    names: tuple[str, ...]


def take(environ: MutableMapping[str, str], pid: int) -> Passed | None:
    """What the environment passes to process `pid`, if anything; the variables are
    removed from `environ` in every case."""
    target, count, names = (environ.pop(name, None) for name in _VARIABLES)
    if target is None or count is None:
        return None
    try:
        meant_for, n = int(target), int(count)
    except ValueError:
        raise ConfigError(f"LISTEN_PID={target!r}, LISTEN_FDS={count!r}: not numbers") from None
    if meant_for != pid or n == 0:  # another process's (a parent's), or nothing passed
        return None
    if n < 0:
        raise ConfigError(f"LISTEN_FDS={count!r} is negative")
    labels = tuple(names.split(":")) if names else ()
    if len(labels) != n:
        labels = ("unknown",) * n
    return Passed(range(FIRST_FD, FIRST_FD + n), labels)


def adopt(fd: int, name: str) -> socket.socket:
    """A socket object over passed descriptor `fd`: TCP listening, or UDP; IPv4 or
    IPv6. Anything else is a mistake in the socket unit, reported as one."""
    what = f"descriptor {fd} ({name}) passed by systemd"
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        raise ConfigError(f"{what} is not open") from None
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"{what} is not a socket")
    os.set_inheritable(fd, False)
    sock = socket.socket(fileno=fd)  # family, type and protocol are read from the socket
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        sock.detach()
        raise ConfigError(f"{what} is not an IPv4 or IPv6 socket (ListenStream=[HOST:]PORT)")
    if sock.type == socket.SOCK_STREAM:
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.detach()
            raise ConfigError(f"{what} is a TCP socket that is not listening")
    elif sock.type == socket.SOCK_DGRAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, listening.UDP_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, listening.UDP_BUFFER)
    else:
        sock.detach()
        raise ConfigError(f"{what} is neither TCP nor UDP")
    sock.setblocking(False)
    return sock


def inherited(server: ServerConfig) -> list[listening.Opened]:
    """The sockets to serve on, when systemd passed some to this process (else none),
    each with the listener it stands for: the one of `--listen` on its port, else one
    like --host/--port's (HTTPS when there is a certificate). UDP ones are HTTP/3's
    (passed, or bound beside each TCP socket that serves it)."""
    passed = take(os.environ, os.getpid())
    if passed is None:
        return []
    sockets = [adopt(fd, name) for fd, name in zip(passed.fds, passed.names, strict=True)]
    streams = [s for s in sockets if s.type == socket.SOCK_STREAM]
    udp = [s for s in sockets if s.type == socket.SOCK_DGRAM]
    if not streams:
        for sock in udp:
            sock.close()
        raise ConfigError("systemd passed no TCP socket (LISTEN_FDS): add ListenStream=")
    by_port = {one.port: one for one in server.listeners()}
    default = Listen(server.host, server.port, tls=server.https)

    def listener(sock: socket.socket) -> Listen:
        port = sock.getsockname()[1]
        return dataclasses.replace(by_port.get(port, default), port=port)

    opened = [(sock, listener(sock)) for sock in streams]
    quic = [sock for sock, one in opened if server.quic_on(one)]
    if udp and not quic:
        log.warning("the UDP sockets passed by systemd are not used: HTTP/3 is off")
        for sock in udp:
            sock.close()
        udp = []
    log.info(
        "serving on what systemd passed (%s: %s), not --host/--port",
        ", ".join(passed.names),
        ", ".join(_describe(s) for s in streams + udp),
    )
    if quic and not udp:
        udp = listening.datagrams(quic)
    return opened + [(sock, listener(sock)) for sock in udp]


def _describe(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    kind = "TCP" if sock.type == socket.SOCK_STREAM else "UDP"
    return f"{kind} [{host}]:{port}" if ":" in host else f"{kind} {host}:{port}"
