"""`lanthorn bench`: the lecture's architectures and the field's servers, side by side.

lanthorn bench [ROOT] [--models single,threads,events,asyncio] [--workers 1,2]
               [--peers nginx,http.server] [--files small,medium,large]
               [--conns 10,100,400] [--duration 10s] [--rounds N]
               [--tool wrk|ab|h2load|h3] [--requests N] [--out DIR] [--quick] [--profile]
lanthorn bench --attack NAME[,NAME...]|all ...   (see attack_cli)
lanthorn bench compare A/results.json B/results.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lanthorn.bench import attack_cli, report
from lanthorn.bench.attackers import ATTACKS
from lanthorn.bench.runner import FILES, PEERS, Plan, Run, execute, lanthorn, measure, scratch
from lanthorn.bench.targets import make_certificate
from lanthorn.config import MODELS

TOOLS = {
    "wrk": ("wrk", "wrk"),
    "ab": ("ab", "apache2-utils"),
    "h2load": ("h2load", "nghttp2-client"),
    "h3": ("gtlsclient", "ngtcp2-client"),
}
# --models, --peers and --conns when not given. HTTP/3: lanthorn's one model that serves
# it, against Caddy, on one gtlsclient connection.
DEFAULTS: dict[str, list[Any]] = {
    "models": ["asyncio", "events", "threads"],
    "peers": ["nginx"],
    "conns": [10, 100],
}
TOOL_DEFAULTS: dict[str, dict[str, list[Any]]] = {
    "h3": {"models": ["asyncio"], "peers": ["caddy"], "conns": [1]},
}
DEMO_INDEX = Path(__file__).resolve().parents[3] / "www" / "index.html"


def _list(kind: type, allowed: tuple[str, ...] | None = None) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if allowed is not None:
            bad = [item for item in items if item not in allowed]
            if bad:
                raise argparse.ArgumentTypeError(f"{bad[0]!r} is not one of {', '.join(allowed)}")
        try:
            return [kind(item) for item in items]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _seconds(text: str) -> float:
    return float(text[:-1]) if text.endswith("s") else float(text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lanthorn bench", description=__doc__.split("\n")[0])
    p.add_argument("root", nargs="?", help="serve this directory instead of a generated root")
    p.add_argument(
        "--models",
        type=_list(str, MODELS),
        help="lanthorn's models: asyncio,events,threads (h3: asyncio)",
    )
    p.add_argument(
        "--workers", type=_list(int), default=[1], help="lanthorn's worker counts, e.g. 1,2 (1)"
    )
    p.add_argument(
        "--peers", type=_list(str, (*PEERS, "none")), help="nginx (caddy with --tool h3)"
    )
    p.add_argument(
        "--peer-python",
        metavar="PYTHON",
        help="interpreter of a separate venv with uvicorn+starlette / aiohttp / granian",
    )
    p.add_argument(
        "--files",
        type=_list(str, tuple(FILES)),
        default=["small", "large"],
        help="small (the demo page, 955 B), medium (100 KiB), large (10 MiB): small,large",
    )
    p.add_argument("--conns", type=_list(int), help="10,100 (1 with --tool h3)")
    p.add_argument("--duration", type=_seconds, default=5.0, help="seconds per run (5s)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, targets alternating (3)")
    p.add_argument(
        "--tool",
        choices=tuple(TOOLS),
        default="wrk",
        help="load generator: wrk, ab (HTTP/1.1), h2load (HTTP/2), h3 (gtlsclient, HTTP/3)",
    )
    p.add_argument(
        "--streams", type=int, default=10, help="h2load: concurrent streams per connection (10)"
    )
    p.add_argument(
        "--requests",
        type=int,
        default=10000,
        help="h3: requests per gtlsclient connection (10000; no more than 100 MiB of answers)",
    )
    p.add_argument(
        "--idle-conns",
        type=int,
        default=0,
        metavar="N",
        help="also measure memory per idle keep-alive connection with N connections",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="every target serves HTTPS (self-signed certificate; always with --tool h3)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        help="where results.json, report.md and the charts go (bench-results)",
    )
    p.add_argument("--quick", action="store_true", help="one round of 1 s: a smoke test")
    p.add_argument("--profile", action="store_true", help="profile the first lanthorn target")
    attack_cli.add_arguments(p, _list(str, (*ATTACKS, "all")))
    return p


def _progress(total: int) -> tuple[object, object]:
    """A rich progress bar when the terminal is interactive, plain lines otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, disable=not console.is_terminal,
    )  # fmt: skip
    task = bar.add_task("starting", total=total)

    def update(run: Run | None, label: str) -> None:
        if run is None:
            bar.update(task, description=label)
            return
        bar.advance(task)
        r = run.result
        flag = f"  ERRORS={r.errors}" if r.errors else ""
        console.print(
            f"{label}: {r.requests_per_s:,.0f} req/s, {r.bytes_per_s / 2**20:,.1f} MiB/s, "
            f"p99 {r.latency_p99_s * 1000:.2f} ms{flag}"
        )

    return bar, update


def run(args: argparse.Namespace, argv: list[str]) -> int:
    for name, default in {**DEFAULTS, **TOOL_DEFAULTS.get(args.tool, {})}.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.attack:
        return attack_cli.run(args, argv, DEMO_INDEX)
    if args.quick:
        args.rounds, args.duration = 1, 1.0
    peers = [p for p in args.peers if p != "none"]
    plan = Plan(args.models, args.workers, peers, args.files, args.conns, args.duration,
                args.rounds, args.tool, warmup_s=0.5 if args.quick else 1.0,
                peer_python=args.peer_python, streams=args.streams,
                idle_conns=args.idle_conns, tls=args.tls or args.tool == "h3",
                requests=args.requests)  # fmt: skip
    command, package = TOOLS[args.tool]
    if not shutil.which(command):
        print(f"lanthorn bench: {command} is missing (apt-get install {package})", file=sys.stderr)
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with scratch(args.root, DEMO_INDEX, "lanthorn-bench-") as (root, work):
        total = (
            plan.rounds
            * len(plan.files)
            * len(plan.conns)
            * (len(plan.models) * len(plan.workers) + len(peers))
        )
        bar, update = _progress(total)
        with bar:  # type: ignore[attr-defined]
            execute(plan, root, work, update)  # type: ignore[arg-type]
        if args.profile:
            profile = out / "profile.html"
            tls = make_certificate(work) if plan.tls else None
            target = lanthorn(plan, plan.models[0], 1, tls, profile=profile)
            measure(target, root, work, FILES[plan.files[0]][0], conns=plan.conns[-1], plan=plan)
            print(f"profile: {profile}", file=sys.stderr)
    document = report.results_document(plan, argv)
    (out / "results.json").write_text(json.dumps(document, indent=2))
    rows = report.summarize(plan)
    text = report.markdown(rows, document)
    (out / "report.md").write_text(text)
    report.charts(rows, out)
    print(text)
    print(f"written: {out}/results.json, report.md, *.png", file=sys.stderr)
    return 1 if any(r.errors for r in rows) else 0


# What a run needs beyond the server (the `bench` extra): the progress bar and the charts.
EXTRA = ("rich", "matplotlib")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return _compare(argv[1:])
    args = parser().parse_args(argv)
    missing = [name for name in EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"lanthorn bench: {' and '.join(missing)} missing: pip install 'lanthorn[bench]'",
            file=sys.stderr,
        )
        return 2
    return run(args, argv)


def _compare(paths: list[str]) -> int:
    """`lanthorn bench compare A B`: one line and exit 2 for a file that is not there or
    is not what `lanthorn bench` writes."""
    if len(paths) != 2:
        print("usage: lanthorn bench compare A/results.json B/results.json", file=sys.stderr)
        return 2
    try:
        a, b = (json.loads(Path(p).read_text()) for p in paths)
        attacks = attack_cli.compare(a, b)
        print(attacks if attacks is not None else report.compare(*map(_loaded, paths)))
    except OSError as exc:
        print(f"lanthorn bench: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError) as exc:  # JSON, or not the bench's
        print(
            f"lanthorn bench: {' or '.join(paths)}: not results.json files of lanthorn bench "
            f"({type(exc).__name__}: {exc})",
            file=sys.stderr,
        )
        return 2
    return 0


def _loaded(path: str) -> Any:
    return report.load_results(Path(path))
