"""Run one fuzz target under atheris: `python -m tests.fuzz.run TARGET [libFuzzer args]`.

The code under test (lanthorn, and the protocol libraries it drives) is instrumented for
coverage; the harness itself is not. A crash writes the input as `crash-<sha1>` under
`-artifact_prefix` and exits non-zero. lanthorn runs as Python here, never compiled
(lanthorn/native.py): coverage is counted in Python code only.
"""

from __future__ import annotations

import os
import sys

import atheris

INSTRUMENTED = ["lanthorn", "h2", "hpack", "hyperframe", "email", "urllib"]


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1].startswith("-"):
        raise SystemExit("usage: python -m tests.fuzz.run TARGET [libFuzzer options] [CORPUS...]")
    name = argv[1]
    os.environ["LANTHORN_PURE"] = "1"  # read when lanthorn is first imported, just below
    with atheris.instrument_imports(include=INSTRUMENTED):
        from tests.fuzz.targets import load

        target = load(name)
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
