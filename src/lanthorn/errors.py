"""Error types shared by every layer.

A `ProtocolError` carries the HTTP status the peer should get (RFC 9110 §15.5/§15.6);
the driver turns it into a response in one place and then closes the connection.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer broke the protocol; answer `status` (if it can still be sent) and close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class ConfigError(Exception):
    """An invalid option or configuration file; the CLI reports it and exits 2."""
