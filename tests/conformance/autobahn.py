"""The Autobahn TestSuite's fuzzing client against lanthorn's WebSocket echo endpoint.

`autobahntestsuite` runs only on Python 2.7: it is installed (once, from PyPI) into
.autobahn/ with pyenv's 2.7 interpreter (or a `python2.7` on PATH). `run(cases)` starts a
lanthorn server with --ws-echo, runs the cases, and returns every case's verdict;
`python -m tests.conformance.autobahn` (make autobahn) runs all of them and writes the
summary to docs/autobahn.md.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from tests.servers import Server

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / ".autobahn"
# What counts as passing (the suite's own words); anything else is a failure.
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
PASSING_CLOSE = {"OK", "INFORMATIONAL"}
_LAUNCHER = """import site, sys
site.addsitedir(sys.argv.pop(1))  # processes the namespace packages' .pth files
from autobahntestsuite import wstest
sys.argv[0] = "wstest"
wstest.run()
"""


def python27() -> str:
    """An interpreter for the suite; AssertionError (a failed check, never a skip) if
    this machine has none."""
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/2.7*/bin/python")))
    path = found[-1] if found else shutil.which("python2.7")
    assert path, "Python 2.7 is needed for the Autobahn TestSuite (pyenv install 2.7.18)"
    return path


def install() -> tuple[str, Path]:
    """(interpreter, site directory) with autobahntestsuite installed."""
    python = python27()
    stamp = TARGET / ".installed"
    if not stamp.exists():
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--target", str(TARGET / "site"), "autobahntestsuite"],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        stamp.touch()
    return python, TARGET / "site"


def run(cases: list[str], *extra: str) -> dict[str, dict[str, str]]:
    """Case id → {"behavior", "behaviorClose"} for `cases` (Autobahn's patterns)."""
    python, site = install()
    with tempfile.TemporaryDirectory(prefix="lanthorn-autobahn-") as work:
        tmp = Path(work)
        args = ("--ws-echo", "/echo", "--ws-max-message", "64M", "--access-log", "off", *extra)
        with Server(ROOT / "www", *args, tmp=tmp) as server:
            spec = {
                "outdir": str(tmp / "reports"),
                "servers": [{"agent": "lanthorn", "url": f"ws://127.0.0.1:{server.port}/echo"}],
                "cases": cases,
                "exclude-cases": [],
                "exclude-agent-cases": {},
            }
            (tmp / "spec.json").write_text(json.dumps(spec))
            (tmp / "wstest.py").write_text(_LAUNCHER)
            subprocess.run(
                [python, str(tmp / "wstest.py"), str(site), "-m", "fuzzingclient",
                 "-s", str(tmp / "spec.json")],
                check=True, capture_output=True, cwd=tmp, timeout=1800,
            )  # fmt: skip
        results: dict[str, dict[str, str]] = json.loads(
            (tmp / "reports" / "index.json").read_text()
        )["lanthorn"]
    return results


def failures(results: dict[str, dict[str, str]]) -> list[str]:
    return sorted(
        case
        for case, verdict in results.items()
        if verdict["behavior"] not in PASSING or verdict["behaviorClose"] not in PASSING_CLOSE
    )


def _key(case: str) -> list[int]:
    return [int(part) for part in case.split(".")]


def summary(results: dict[str, dict[str, str]]) -> str:
    groups: dict[str, Counter[str]] = {}
    for case, verdict in results.items():
        group = case.split(".")[0]
        groups.setdefault(group, Counter())[verdict["behavior"]] += 1
    lines = [
        "# Autobahn TestSuite: lanthorn's WebSocket echo endpoint",
        "",
        "`make autobahn` (tests/conformance/autobahn.py): the suite's fuzzing client",
        "(autobahntestsuite on Python 2.7) against `lanthorn www --ws-echo /echo",
        "--ws-max-message 64M` (the 9.x cases send messages of up to 16 MiB), asyncio model.",
        "",
        "| group | cases | verdicts |",
        "|---|---:|---|",
    ]
    for group in sorted(groups, key=int):
        counts = groups[group]
        verdicts = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
        lines.append(f"| {group} | {sum(counts.values())} | {verdicts} |")
    failed = failures(results)
    lines += [
        "",
        f"{len(results)} cases; failed: {', '.join(sorted(failed, key=_key)) or 'none'}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    results = run(["*"])
    text = summary(results)
    (ROOT / "docs" / "autobahn.md").write_text(text)
    print(text)
    return 1 if failures(results) else 0


if __name__ == "__main__":
    sys.exit(main())
