"""The fuzz targets in `make test`: every corpus input replayed in-process, then a bounded
coverage-guided run per target (LANTHORN_FUZZ_SECONDS each, 8 by default, with a fixed
LANTHORN_FUZZ_SEED) in a subprocess. A crash fails the test with the exact input, to be
made a regression test (test_regressions.py). `make fuzz` runs the targets for longer."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import NAMES, load

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"
SECONDS = float(os.environ.get("LANTHORN_FUZZ_SECONDS", "8"))
# A fixed seed by default, so that a failure in CI is likely to recur when run again;
# set LANTHORN_FUZZ_SEED=0 for a random one (libFuzzer's meaning of 0).
SEED = int(os.environ.get("LANTHORN_FUZZ_SEED", "1"))
MIN_RUNS = 100  # fewer means the harness is broken or pathologically slow


@pytest.mark.parametrize("name", NAMES)
def test_corpus_passes(name: str) -> None:
    seeds = sorted((CORPUS / name).iterdir())
    assert seeds, f"no corpus for {name}"
    target = load(name)
    for seed in seeds:
        target(seed.read_bytes())


def _report(name: str, log: str, found: list[Path]) -> str:
    lines = [f"fuzz target {name!r} failed (LANTHORN_FUZZ_SEED={SEED})"]
    for path in found:
        data = path.read_bytes()
        lines += [f"{path.name}: {data!r}", f"  base64: {base64.b64encode(data).decode()}"]
    lines += ["--- last lines of the fuzzer's output ---", *log.splitlines()[-40:]]
    return "\n".join(lines)


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_bounded(name: str, tmp_path: Path) -> None:
    generated = tmp_path / "corpus"  # new inputs land here, never in the repository
    generated.mkdir()
    command = [
        sys.executable, "-m", "tests.fuzz.run", name,
        f"-max_total_time={SECONDS:g}", f"-seed={SEED}", "-timeout=10", "-rss_limit_mb=2048",
        f"-artifact_prefix={tmp_path}/", str(generated), str(CORPUS / name),
    ]  # fmt: skip
    env = {**os.environ, "LANTHORN_FUZZ_TMP": str(tmp_path)}
    done = subprocess.run(
        command,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=SECONDS + 60,
        check=False,
    )
    log = done.stdout + done.stderr
    found = sorted(p for p in tmp_path.iterdir() if p.is_file())  # crash-, timeout-, oom-
    assert done.returncode == 0 and not found, _report(name, log, found)
    runs = re.search(r"Done (\d+) runs", log)
    assert runs is not None, _report(name, log, found)
    assert int(runs.group(1)) >= MIN_RUNS, _report(name, log, found)
