"""`single`: one thread, one connection at a time — the teaching baseline.

While a connection is served, nobody else is. A connection is served only once it has a
complete request (until then the main loop reads it with the others); between requests
it is parked when another client is waiting and picked up again when it sends more, so
one slow or idle client cannot hold the server. It is the
`threads` pool with no worker threads: the main thread does the serving itself.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from lanthorn.driver import Service
from lanthorn.engines.stopping import StopFlag
from lanthorn.engines.threads import Pool


def run(listeners: list[socket.socket], service: Service, on_ready: Callable[[], None]) -> None:
    pool = Pool(service, listeners, workers=0)
    pool.run(StopFlag.install(service, pool.stop_listening), on_ready)
