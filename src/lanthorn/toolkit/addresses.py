"""HOST:PORT parsing and the one-line messages for network failures."""

from __future__ import annotations

import errno
import socket


class ToolError(Exception):
    """A failure to report in one line (the CLI prints it and exits 1, or 2 for usage)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def parse(text: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` → (host, port); raises ToolError(code=2)."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ToolError(f"bad address {text!r}: expected HOST:PORT", code=2)
    return host, int(port)


def explain(exc: OSError, host: str, port: int, timeout_s: float) -> ToolError:
    """What went wrong, in terms of the network (never a traceback)."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return ToolError(f"cannot resolve {host!r}: {exc.strerror}")
    if isinstance(exc, TimeoutError):
        return ToolError(f"no answer from {where} within {timeout_s:g} s")
    if exc.errno == errno.ECONNREFUSED:
        return ToolError(f"connection refused by {where} (nothing listening there?)")
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return ToolError(f"{where} is unreachable ({exc.strerror})")
    if exc.errno == errno.EMSGSIZE:
        return ToolError(f"message too large for one datagram to {where}")
    return ToolError(f"{where}: {exc.strerror or exc}")
