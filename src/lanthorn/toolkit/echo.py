"""Echo servers: TCP (a thread per connection, or asyncio) and UDP.

TCP: whatever arrives goes back, however the stream is split into reads (partial reads
are the normal case); when the client closes its side, the server finishes and closes.
UDP: each datagram is answered with the same datagram (boundaries are preserved);
one larger than `--max-size` arrives truncated (MSG_TRUNC) and is dropped, not echoed
in part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("lanthorn.echo")

READ_BYTES = 65536


def _serve_tcp_client(conn: socket.socket) -> None:
    with conn:
        try:
            while data := conn.recv(READ_BYTES):
                conn.sendall(data)
        except OSError as exc:  # the client vanished: its problem, not the server's
            log.info("client dropped: %s", exc.strerror)


def tcp_threads(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError as exc:  # EMFILE, ECONNABORTED...: keep serving the others
            log.warning("accept failed: %s", exc.strerror)
            stop.wait(0.1)
            continue
        conn.settimeout(None)
        threading.Thread(target=_serve_tcp_client, args=(conn,), daemon=True).start()


async def _tcp_asyncio_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(READ_BYTES):
            writer.write(data)
            await writer.drain()
    except OSError as exc:
        log.info("client dropped: %s", exc.strerror)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _tcp_asyncio(sock: socket.socket, stop: threading.Event) -> None:
    server = await asyncio.start_server(_tcp_asyncio_client, sock=sock)
    async with server:
        while not stop.is_set():
            await asyncio.sleep(0.2)


def tcp_asyncio(sock: socket.socket, stop: threading.Event) -> None:
    asyncio.run(_tcp_asyncio(sock, stop))


def udp(sock: socket.socket, stop: threading.Event, max_size: int) -> None:
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            data, _, flags, peer = sock.recvmsg(max_size)
        except TimeoutError:
            continue
        except OSError as exc:
            log.info("receive failed: %s", exc.strerror)
            continue
        if flags & socket.MSG_TRUNC:
            log.warning("dropped a datagram from %s larger than %d bytes", peer, max_size)
            continue
        try:
            sock.sendto(data, peer)
        except OSError as exc:
            log.info("reply to %s failed: %s", peer, exc.strerror)


def bind(kind: str, host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    if kind == "tcp":
        sock.listen(128)
    return sock


def run(
    kind: str, sock: socket.socket, model: str, max_size: int, on_ready: Callable[[], None]
) -> None:
    """Serve until SIGTERM/SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    on_ready()
    with sock:
        if kind == "udp":
            udp(sock, stop, max_size)
        elif model == "asyncio":
            tcp_asyncio(sock, stop)
        else:
            tcp_threads(sock, stop)
