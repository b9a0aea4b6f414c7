"""The driver layer: one driver per connection, shared by every engine. What engines
use of it is here: the contract they carry out (`contract`), the per-worker context
(`Service`) and `connect`, which picks a new connection's driver."""

from lanthorn.core.response import FileBody
from lanthorn.driver.context import Service
from lanthorn.driver.contract import (
    BATCH_BYTES,
    CLOSE,
    DRAIN_QUIET_S,
    LINGER_BYTES,
    LINGER_S,
    Action,
    Connection,
    discard,
    peer_host,
)
from lanthorn.driver.negotiate import connect

__all__ = [
    "BATCH_BYTES",
    "CLOSE",
    "DRAIN_QUIET_S",
    "LINGER_BYTES",
    "LINGER_S",
    "Action",
    "Connection",
    "FileBody",
    "Service",
    "connect",
    "discard",
    "peer_host",
]
