"""Headless Chromium driven over the DevTools protocol (with the `websockets` client):
a browser per test, a tab per page, JavaScript evaluated in it."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect


class Page:
    """One browser tab, driven by Runtime.evaluate."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def evaluate(self, expression: str) -> Any:
        params = {"expression": expression, "returnByValue": True}
        return self.call("Runtime.evaluate", params)["result"].get("value")

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """A DevTools method on this tab; its result."""
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        while True:
            answer = json.loads(self.ws.recv(timeout=10))
            if answer.get("id") == ident:
                return answer["result"]

    def until(self, expression: str, timeout_s: float = 10.0) -> float:
        """Seconds until `expression` is true in the page."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            try:
                if self.evaluate(expression):
                    return time.monotonic() - started
            except (KeyError, TimeoutError):
                pass  # the page is being replaced: its context is gone for a moment
            time.sleep(0.02)
        raise AssertionError(f"never true: {expression}")


def trusting_home(home: Path, ca: Path | None) -> Path:
    """A HOME whose NSS database (Chromium's on Linux) trusts `ca`, or nothing: for
    `launch(..., home=)`."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    if ca is not None:
        subprocess.run(
            ["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "lanthorn", "-i", str(ca)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    return home


@contextlib.contextmanager
def launch(
    profile: Path, *flags: str, home: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Chromium, headless, with `flags`, and the port of its DevTools endpoint.
    Certificates are not checked (the tests' servers use their own), unless a `home` is
    given: then Chromium runs with that HOME and trusts what its NSS database
    (`home/.pki/nssdb`) and the system trust."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is missing: `make test` installs it (apt-get install chromium)"
    trust = [] if home is not None else ["--ignore-certificate-errors"]
    env = None if home is None else {**os.environ, "HOME": str(home)}
    proc = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         *trust, f"--user-data-dir={profile}", *flags, "about:blank"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        port = 0
        deadline = time.monotonic() + 30
        while not port and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "DevTools listening on ws://" in line:
                port = int(line.split("ws://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        assert port, "Chromium did not start its DevTools endpoint"
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@contextlib.contextmanager
def open_page(devtools_port: int, url: str) -> Iterator[Page]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{devtools_port}/json/new?{url}", method="PUT"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        target = json.loads(response.read())
    with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
        yield Page(ws)
