"""SIGTERM/SIGINT → a flag, for the engines that poll (single, threads, events).

The handler also puts the service into draining mode, so connections being served
finish their current response and close instead of waiting for another request (the
events and threads engines drain at their loop's next turn instead, after closing their
listeners).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from lanthorn.clock import monotonic
from lanthorn.driver import Service


class StopFlag(threading.Event):
    @classmethod
    def install(
        cls, service: Service, on_stop: Callable[[], None] | None = None, *, drain: bool = True
    ) -> StopFlag:
        """`on_stop` runs once, in the handler (on the main thread), when a stop begins;
        with `drain` the handler also starts the service's drain (an engine whose loop
        drains at its next turn passes False)."""
        flag = cls()

        def handler(signum: int, frame: FrameType | None) -> None:
            if not flag.is_set():
                if drain:
                    service.drain(monotonic())
                flag.set()
                if on_stop is not None:
                    on_stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        return flag
