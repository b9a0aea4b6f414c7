"""Readiness for systemd (sd_notify(3), a unit with `Type=notify`).

When `NOTIFY_SOCKET` names a Unix datagram socket (a path, or `@name` in the abstract
namespace), the server sends `READY=1` to it once every worker accepts connections —
when the ready file is written. The main process sends it (the supervisor with `-w N`),
as systemd's default `NotifyAccess=main` requires. Without the variable nothing is sent;
a socket that cannot be reached is a warning, never a reason to stop serving.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("lanthorn")


def notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `state` (newline-separated `KEY=VALUE` lines) to systemd; whether it was."""
    name = environ.get("NOTIFY_SOCKET", "")
    path = "\0" + name[1:] if name.startswith("@") else name
    if not path.startswith(("/", "\0")):  # unset, or a kind of address not served (vsock)
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode(), path)
        except OSError as exc:
            log.warning("cannot notify systemd at NOTIFY_SOCKET=%s: %s", name, exc.strerror)
            return False
    return True
