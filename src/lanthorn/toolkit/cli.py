"""`lanthorn echo tcp|udp ...`, `lanthorn send tcp|udp HOST:PORT ...` and
`lanthorn ws URL ...`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from lanthorn.toolkit import echo, send, ws
from lanthorn.toolkit.addresses import ToolError, parse


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def echo_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lanthorn echo", description="an echo server")
    p.add_argument("kind", choices=("tcp", "udp"))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("-p", "--port", type=int, default=9000, help="port, 0 for any free (9000)")
    p.add_argument("--model", choices=("threads", "asyncio"), default="threads", help="(threads)")
    p.add_argument(
        "--max-size", type=_positive(int), default=65507, help="largest UDP datagram echoed"
    )
    p.add_argument("--ready-file", help="write the bound address as JSON here")
    args = p.parse_args(argv)
    try:
        sock = echo.bind(args.kind, args.host, args.port)
    except OSError as exc:
        print(
            f"lanthorn echo: cannot bind {args.host}:{args.port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    host, port = sock.getsockname()[:2]

    def ready() -> None:
        print(f"echo {args.kind} listening on {host}:{port}", file=sys.stderr, flush=True)
        if args.ready_file:
            from lanthorn.engines.listeners import write_ready_file

            write_ready_file(args.ready_file, [(host, port, args.kind)], kind=args.kind)

    echo.run(args.kind, sock, args.model, args.max_size, ready)
    return 0


def send_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lanthorn send", description="send and time the reply")
    p.add_argument("kind", choices=("tcp", "udp"))
    p.add_argument("address", metavar="HOST:PORT")
    p.add_argument("message", nargs="?", default="-", help="text to send, or - for stdin")
    p.add_argument("--repeat", type=_positive(int), default=1)
    p.add_argument("--timeout", type=_positive(float), default=2.0, metavar="S")
    args = p.parse_args(argv)

    def exchange(data: bytes) -> send.Report:
        host, port = parse(args.address)
        client = send.tcp if args.kind == "tcp" else send.udp
        return client(host, port, data, max(1, args.repeat), args.timeout)

    return _report("lanthorn send", args.message, exchange)


def ws_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="lanthorn ws", description="a WebSocket client")
    p.add_argument("url", metavar="URL", help="ws://HOST[:PORT]/PATH or wss://...")
    p.add_argument("message", nargs="?", default="-", help="text to send, or - for stdin")
    p.add_argument("--repeat", type=_positive(int), default=1)
    p.add_argument("--timeout", type=_positive(float), default=5.0, metavar="S")
    p.add_argument("--cafile", metavar="PEM", help="trust this CA for wss:// (a test server)")
    args = p.parse_args(argv)

    def exchange(data: bytes) -> send.Report:
        return ws.exchange(args.url, data, args.repeat, args.timeout, args.cafile)

    return _report("lanthorn ws", args.message, exchange)


def _report(prog: str, message: str, exchange: Callable[[bytes], send.Report]) -> int:
    """Send `message` (- for stdin), print the reply and the round trips; a failure is
    one line and the exit status."""
    try:
        data = sys.stdin.buffer.read() if message == "-" else message.encode()
        report = exchange(data)
    except ToolError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.code
    if report.reply is not None:
        sys.stdout.buffer.write(report.reply)
        if not report.reply.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
    print(report.summary(), file=sys.stderr)
    return 0
