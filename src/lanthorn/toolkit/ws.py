"""`lanthorn ws URL [MESSAGE|-]`: open a WebSocket, send the message `--repeat` times,
print the last reply and the round-trip times; failures in one line, like `lanthorn
send`. wss:// URLs are checked against the system's CAs, or `--cafile`."""

from __future__ import annotations

import ssl
import time
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import connect

from lanthorn.toolkit.addresses import ToolError, explain
from lanthorn.toolkit.send import Report


def exchange(
    url: str, message: bytes, repeat: int, timeout_s: float, cafile: str | None = None
) -> Report:
    """Send `message` (as text when it is UTF-8, else binary) and wait for each reply."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "wss" else 80)
    context = ssl.create_default_context(cafile=cafile) if parts.scheme == "wss" else None
    try:
        payload: str | bytes = message.decode()
    except UnicodeDecodeError:
        payload = message
    rtts: list[float] = []
    reply: bytes | None = None
    try:
        with connect(url, open_timeout=timeout_s, ssl=context, max_size=None) as ws:
            for _ in range(repeat):
                started = time.perf_counter()
                ws.send(payload)
                answer = ws.recv(timeout=timeout_s)
                rtts.append(time.perf_counter() - started)
                reply = answer.encode() if isinstance(answer, str) else answer
    except InvalidURI:
        raise ToolError(f"bad URL {url!r}: expected ws://HOST[:PORT]/PATH or wss://…", 2) from None
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise ToolError(f"{url}: the server answered HTTP {status}, not a WebSocket") from None
    except InvalidHandshake as exc:
        raise ToolError(f"{url}: WebSocket handshake failed: {exc}") from None
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else "no close frame"
        reason = f" ({exc.rcvd.reason})" if exc.rcvd is not None and exc.rcvd.reason else ""
        raise ToolError(f"{url}: closed by the server: {code}{reason}") from None
    except ssl.SSLError as exc:
        raise ToolError(f"{url}: TLS failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise explain(exc, host, port, timeout_s) from None
    return Report(reply, rtts, 0)
