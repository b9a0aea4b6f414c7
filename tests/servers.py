"""Start real lanthorn servers for tests: `python -m lanthorn ... --port 0 --ready-file`.

Nothing here sleeps for a fixed time: start-up waits on the ready file (polled, with a
deadline), shutdown on the process exiting.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

START_TIMEOUT_S = 20.0


class Server:
    """A running server process; `port`, `url(path)`, `stop()`."""

    def __init__(
        self,
        root: Path | str,
        *args: str,
        tmp: Path,
        cwd: Path | None = None,
        launcher: Sequence[str] = (),
        pass_fds: Sequence[int] = (),
    ) -> None:
        """`launcher` is a command that runs the server's (appended to it); `pass_fds`
        stay open in the child."""
        self.ready_file = tmp / f"ready-{os.getpid()}-{time.monotonic_ns()}.json"
        self.log_file = tmp / f"server-{time.monotonic_ns()}.log"
        self.args = [
            sys.executable,
            "-m",
            "lanthorn",
            str(root),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--ready-file",
            str(self.ready_file),
            *args,
        ]
        self._log = open(self.log_file, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*launcher, *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            pass_fds=pass_fds,
        )
        self.info = self._wait_ready()
        addresses = self.info["addresses"]
        assert isinstance(addresses, list)
        self.port: int = addresses[0]["port"]
        self.host = "127.0.0.1"
        urls = self.info["urls"]
        assert isinstance(urls, list)
        self.scheme = str(urls[0]).split(":", 1)[0]  # https when serving TLS

    def _wait_ready(self) -> dict[str, object]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.output()}")
            try:
                info: dict[str, object] = json.loads(self.ready_file.read_text())
                return info
            except (FileNotFoundError, json.JSONDecodeError):
                time.sleep(0.02)
        self.proc.kill()
        raise RuntimeError(f"server not ready in {START_TIMEOUT_S}s: {self.output()}")

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_file.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
