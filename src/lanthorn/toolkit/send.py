"""Clients: send a message, print the reply, measure round-trip times.

TCP: connect, send, shut the sending side (so the echo server knows the message is
complete), read until the server closes. UDP: one datagram out, one back; a reply that
does not come within `--timeout` counts as lost instead of hanging forever.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from dataclasses import dataclass

from lanthorn.toolkit.addresses import ToolError, explain


@dataclass
class Report:
    reply: bytes | None
    rtts_s: list[float]
    lost: int

    def summary(self) -> str:
        if not self.rtts_s:
            return f"0 replies, {self.lost} lost"
        ms = [t * 1000 for t in self.rtts_s]
        text = (
            f"{len(ms)} replies, rtt min/median/max = "
            f"{min(ms):.3f}/{statistics.median(ms):.3f}/{max(ms):.3f} ms"
        )
        return text + (f", {self.lost} lost" if self.lost else "")


def _family(host: str, port: int, kind: int) -> tuple[int, tuple[object, ...]]:
    info = socket.getaddrinfo(host, port, type=kind)[0]
    return info[0], info[4]


def _send_all(sock: socket.socket, message: bytes, failures: list[OSError]) -> None:
    try:
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)  # "that is all": the server's read returns b""
    except OSError as exc:
        failures.append(exc)


def tcp(host: str, port: int, message: bytes, repeat: int, timeout_s: float) -> Report:
    """Send and receive at the same time: an echo of a large message would otherwise
    deadlock, both sides blocked writing into full buffers with nobody reading."""
    rtts: list[float] = []
    reply = b""
    for _ in range(repeat):
        failures: list[OSError] = []
        try:
            start = time.perf_counter()
            with socket.create_connection((host, port), timeout=timeout_s) as sock:
                sender = threading.Thread(target=_send_all, args=(sock, message, failures))
                sender.start()
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
                sender.join()
            if failures:
                raise failures[0]
            rtts.append(time.perf_counter() - start)
            reply = b"".join(chunks)
        except OSError as exc:
            raise explain(exc, host, port, timeout_s) from None
    return Report(reply, rtts, 0)


def _discard_late_replies(sock: socket.socket) -> None:
    while True:
        try:
            sock.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, TimeoutError):
            return


def udp(host: str, port: int, message: bytes, repeat: int, timeout_s: float) -> Report:
    rtts: list[float] = []
    reply: bytes | None = None
    lost = 0
    try:
        family, address = _family(host, port, socket.SOCK_DGRAM)
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(address)  # so ICMP "port unreachable" is reported to us
            for _ in range(repeat):
                _discard_late_replies(sock)  # a late answer must not pass for this one's
                start = time.perf_counter()
                sock.send(message)
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    lost += 1
                    continue
                rtts.append(time.perf_counter() - start)
                reply = data
    except OSError as exc:
        raise explain(exc, host, port, timeout_s) from None
    if not rtts:
        raise ToolError(
            f"no reply from {host}:{port} within {timeout_s:g} s "
            f"({lost} of {repeat} datagrams lost)"
        )
    return Report(reply, rtts, lost)
