"""SIGTERM/SIGINT → a flag, for the engines that poll (single, threads, events).

The handler also puts the service into draining mode, so connections being served
finish their current response and close instead of waiting for another request.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from lanthorn.clock import monotonic
from lanthorn.driver import Service


class StopFlag(threading.Event):
    @classmethod
    def install(cls, service: Service) -> StopFlag:
        flag = cls()

        def handler(signum: int, frame: FrameType | None) -> None:
            if not flag.is_set():
                service.drain(monotonic())
                flag.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        return flag
