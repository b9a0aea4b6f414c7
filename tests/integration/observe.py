"""Waiting on what can be observed instead of sleeping: conditions polled against a
deadline, the kernel's view of a TCP connection, a process's descriptors and signals.

Linux only (/proc), like the rest of the integration suite.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

POLL_S = 0.02
T = TypeVar("T")


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> float:
    """Poll until `predicate()` is true; the monotonic time it first was. Fails after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        if predicate():
            return now
        if now > deadline:
            raise AssertionError(f"not within {timeout} s: {what or predicate}")
        time.sleep(POLL_S)


def wait_for_value(produce: Callable[[], T | None], timeout: float = 15.0, what: str = "") -> T:
    """Poll until `produce()` gives something truthy, and return it."""
    found: list[T] = []

    def ready() -> bool:
        value = produce()
        if value:
            found.append(value)
        return bool(value)

    wait_for(ready, timeout, what or str(produce))
    return found[0]


def _hex_port(address: str) -> int:
    return int(address.rpartition(":")[2], 16)


def server_socket_inode(server_port: int, client: socket.socket) -> int | None:
    """The inode of the server's end of `client`'s TCP connection, as /proc/net/tcp sees
    it: 0 while it waits in the accept queue and again once the server has closed it (an
    orphan still flushing, or in FIN_WAIT), None once the connection is gone."""
    client_port = client.getsockname()[1]
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if _hex_port(local) == server_port and _hex_port(remote) == client_port:
                return inode
    return None


def closed_by_server(server_port: int, client: socket.socket) -> bool:
    """The server no longer holds its end of `client` (closed or reset), whether or not
    the client has read what was sent before. Only meaningful once it was accepted."""
    return not server_socket_inode(server_port, client)


def descriptors(pid: int) -> dict[int, str]:
    """A process's open descriptors → what they point at."""
    out: dict[int, str] = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            continue  # closed meanwhile
    return out


def signal_pending(pid: int, signum: int) -> bool:
    """Whether `signum` sent to `pid` is still waiting to be delivered."""
    bit = 1 << (signum - 1)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("SigPnd", "ShdPnd") and int(value, 16) & bit:
            return True
    return False


def process_state(pid: int) -> str | None:
    """The one-letter state of `pid` (R, S, T, Z...), None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]


@contextmanager
def descriptor_limit(needed: int) -> Iterator[int]:
    """Raise this process's soft RLIMIT_NOFILE to at least `needed` (up to the hard
    limit) for the duration, so that it and the servers it starts can hold that many
    descriptors; the previous limit is restored afterwards. Yields the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise AssertionError(f"needs {needed} descriptors; the hard limit is {hard}")
    raised = max(soft, needed) if soft != resource.RLIM_INFINITY else soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    try:
        yield raised
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
