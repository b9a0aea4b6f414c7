"""Listening sockets and the ready file.

`localhost` binds every loopback address it resolves to (127.0.0.1 and ::1), like Caddy.
With port 0 the first socket picks the ephemeral port and the others reuse it, so a
server has one port whatever its address family.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket

from lanthorn.config import Listen
from lanthorn.errors import ConfigError

BACKLOG = 1024
# A UDP socket's buffers (the kernel caps them at net.core.[rw]mem_max): a burst of
# QUIC's datagrams either way fits, instead of being dropped (engines/datagrams).
UDP_BUFFER = 4 * 1024 * 1024
# accept() failures that mean "no resources right now": back off instead of spinning on
# a listener that stays readable.
OUT_OF_RESOURCES = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))


def bind(
    host: str, port: int, *, reuse_port: bool = False, listen: bool = True
) -> list[socket.socket]:
    """Bound (and, unless told otherwise, listening) non-blocking sockets for every
    address `host` resolves to."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:  # a name that does not resolve: the user's to fix
        raise ConfigError(f"cannot listen on host {host!r}: {exc.strerror}") from None
    seen: set[tuple[int, str]] = set()
    sockets: list[socket.socket] = []
    errors: list[str] = []
    for family, kind, proto, _, sockaddr in infos:
        key = (family, str(sockaddr[0]))
        if key in seen:
            continue
        seen.add(key)
        address = sockaddr
        if sockets:  # same port on every address
            address = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            if listen:
                sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            errors.append(str(exc.strerror))
            continue
        sockets.append(sock)
    if not sockets:
        raise OSError(f"cannot listen on {host}:{port}: {'; '.join(sorted(set(errors)))}")
    return sockets


# A listening socket and the listener it was opened for.
Opened = tuple[socket.socket, Listen]
# Where a listener was bound (its address, its port now known) and what it speaks.
Bound = tuple[str, int, Listen]


def bind_each(
    listeners: tuple[Listen, ...], *, reuse_port: bool = False, listen: bool = True
) -> list[Opened]:
    """Sockets for every listener (each on every address its host resolves to); one
    that cannot be bound closes the others."""
    opened: list[Opened] = []
    try:
        for one in listeners:
            sockets = bind(one.host, one.port, reuse_port=reuse_port, listen=listen)
            opened += [(sock, one) for sock in sockets]
    except BaseException:
        for sock, _ in opened:
            sock.close()
        raise
    return opened


def streams(opened: list[Opened]) -> list[Opened]:
    """The TCP ones (the others are UDP, for HTTP/3)."""
    return [(sock, one) for sock, one in opened if sock.type == socket.SOCK_STREAM]


def bound(opened: list[Opened]) -> list[Bound]:
    return [(str(s.getsockname()[0]), int(s.getsockname()[1]), one) for s, one in opened]


def datagrams(sockets: list[socket.socket], *, reuse_port: bool = False) -> list[socket.socket]:
    """A UDP socket (for QUIC) beside each listening TCP socket: the same address and
    port number, non-blocking."""
    bound: list[socket.socket] = []
    for tcp in sockets:
        if tcp.type != socket.SOCK_STREAM:
            continue
        udp = socket.socket(tcp.family, socket.SOCK_DGRAM)
        try:
            if reuse_port:
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UDP_BUFFER)
            if tcp.family == socket.AF_INET6:
                udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            udp.bind(tcp.getsockname()[:2])
            udp.setblocking(False)
        except OSError as exc:
            udp.close()
            for other in bound:
                other.close()
            raise OSError(f"cannot listen on UDP {tcp.getsockname()[:2]}: {exc.strerror}") from None
        bound.append(udp)
    return bound


def url(host: str, port: int, scheme: str = "http") -> str:
    return f"{scheme}://[{host}]:{port}/" if ":" in host else f"{scheme}://{host}:{port}/"


def scheme(listener: Listen) -> str:
    return "https" if listener.tls else "http"


def write_ready_file(path: str, where: list[tuple[str, int, str]], **extra: object) -> None:
    """Atomically write JSON describing where the server accepts connections: each
    (host, port, scheme)."""
    document = {
        "pid": os.getpid(),
        "addresses": [{"host": h, "port": p, "scheme": scheme} for h, p, scheme in where],
        "urls": [url(h, p, scheme) for h, p, scheme in where],
        **extra,
    }
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(document, fh)
    os.replace(tmp, path)


def remove_ready_file(path: str | None) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.remove(path)


# How much unsent data the kernel may hold for a TCP connection (TCP_NOTSENT_LOWAT): what
# is written past it waits in the server, where HTTP/2's scheduler can still send a more
# urgent response first (RFC 9218). Without it, the send buffer (up to 4 MiB by Linux's
# default tcp_wmem) is filled with a large download, and a stylesheet asked for later
# waits behind all of it. Chromium loading a 20 MB image, then a stylesheet, on loopback:
# image bytes that reached it while the CSS was on its way, median 5.5 MB (4 runs)
# without this, 1.0 MB (18 runs) with 16 KiB.
NOTSENT_LOWAT_BYTES = 16 * 1024


def tune(conn: socket.socket) -> None:
    """Per-connection options: responses are written whole, so Nagle only adds delay;
    little unsent data is left to the kernel (NOTSENT_LOWAT_BYTES)."""
    if conn.family in (socket.AF_INET, socket.AF_INET6):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, NOTSENT_LOWAT_BYTES)
