"""`single`: one thread, one connection at a time — the teaching baseline.

While a connection is served, nobody else is. Between requests, an idle keep-alive
connection is parked when another client is waiting and picked up again when it sends
more, so one client cannot hold the server for its whole keep-alive timeout. It is the
`threads` pool with no worker threads: the main thread does the serving itself.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from lanthorn.driver import Service
from lanthorn.engines.stopping import StopFlag
from lanthorn.engines.threads import Pool


def run(listeners: list[socket.socket], service: Service, on_ready: Callable[[], None]) -> None:
    Pool(service, listeners, workers=0).run(StopFlag.install(service), on_ready)
