# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := $(VENV)/.deps-stamp
TOOLS  := wrk ab curl nginx h2load nghttp openssl chromium ps gtlsclient caddy haproxy \
          systemd-analyze certutil cc
APT    := wrk apache2-utils curl nginx-light nghttp2-client openssl chromium procps ngtcp2-client \
          caddy systemd haproxy libnss3-tools gcc libc6-dev python3-dev

.PHONY: run test check lint typecheck pytest pytest-pure native system-tools peers bench clean fuzz \
        autobahn

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(SERVE)

# What serving needs, and no more (the test toolchain is ten times its size).
SERVE := $(VENV)/.serve-stamp
$(SERVE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

# The compiled hot path (src/lanthorn/native.py, setup.py): mypyc builds extension
# modules beside the sources, again whenever a source changes (from a clean build/: what
# an earlier module list left there would end up in the package). Without a C compiler
# or Python's headers the server runs as pure Python, slower, and says so here; the
# stamp is left only by a build that worked, so the next make tries again.
NATIVE := $(VENV)/.native-stamp
MYPYC  := mypy==2.4.1
CAN_COMPILE := import os, shutil, sysconfig, sys; \
  cc = (sysconfig.get_config_var("CC") or "cc").split()[0]; \
  sys.exit(not (shutil.which(cc) and \
  os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))))
$(NATIVE): setup.py pyproject.toml $(shell find src/lanthorn -name '*.py') | $(SERVE)
	find src -name '*.so' -delete  # (one left from a module no longer compiled would shadow it)
	rm -rf build
	@if ! $(BIN)/python -c '$(CAN_COMPILE)'; then \
	  echo "no C compiler or Python headers: the hot path runs as pure Python, about half as fast"; \
	  echo "(as root: apt-get install gcc libc6-dev python3-dev; then make native)"; \
	elif $(BIN)/python -m pip install -q 'setuptools>=77' '$(MYPYC)' && \
	  LANTHORN_COMPILE=1 $(BIN)/python setup.py -q build_ext --inplace >$(VENV)/native.log 2>&1; \
	then echo "compiled the hot path: $$($(BIN)/lanthorn --version)"; touch $@; \
	else find src -name '*.so' -delete; \
	  echo "compiling the hot path failed ($(VENV)/native.log): pure Python, about half as fast"; fi

native: $(NATIVE)

## make run: serve the demo site (www/) on http://localhost:8080/
run: $(SERVE) $(NATIVE)
	$(BIN)/lanthorn www --live-reload

## make test: install what the suite needs, then lint, type-check and run every test
test: system-tools peers check

check: lint typecheck pytest pytest-pure

lint: $(DEPS)
	$(BIN)/ruff format --check src tests examples
	$(BIN)/ruff check src tests examples

typecheck: $(DEPS)
	$(BIN)/mypy

pytest: $(DEPS) $(NATIVE)
	$(BIN)/pytest -q

# The same code as Python (what `pip install .` without a compiler runs): the in-process
# tests again, with every module imported from its source.
pytest-pure: $(DEPS) $(NATIVE)
	LANTHORN_PURE=1 $(BIN)/pytest -q -p no:cacheprovider tests/unit tests/property \
	  tests/fuzz/test_regressions.py

## make fuzz: each fuzz target for FUZZ_SECONDS (`make -j2 fuzz` runs two at once);
## what they find is kept in .fuzz/ (corpus/<target>, crash-* inputs). `make test` runs
## the same targets for a few seconds each (tests/fuzz/test_fuzz.py).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := http1 http2 streams paths ranges conditional encodings websocket http3

fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))

fuzz-%: $(DEPS)
	@mkdir -p .fuzz/corpus/$* .fuzz/found .fuzz/tmp
	LANTHORN_FUZZ_TMP=.fuzz/tmp $(BIN)/python -m tests.fuzz.run $* \
	  -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	  -artifact_prefix=.fuzz/found/$*- .fuzz/corpus/$* tests/fuzz/corpus/$*

# The Debian tools the integration tests drive (installed only when missing, as root).
system-tools:
	@missing=""; for t in $(TOOLS); do command -v $$t >/dev/null 2>&1 || \
	  [ -x /usr/sbin/$$t ] || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT) >/dev/null; \
	  else echo "missing tools:$$missing (run: sudo apt-get install $(APT))"; exit 1; fi; \
	fi

# Other Python servers `lanthorn bench --peer-python` compares against, in their own venv
# (never lanthorn's dependencies); hypercorn with its HTTP/3 extra (aioquic) for --tool h3.
# Rebuilt when this file changes, so a new peer reaches an existing venv.
PEERS_VENV := .venv-peers
PEERS_PIP  := uvicorn starlette aiohttp granian 'hypercorn[h3]'
$(PEERS_VENV)/.stamp: Makefile
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q $(PEERS_PIP)
	touch $@

peers: $(PEERS_VENV)/.stamp

## make bench: the architectures and nginx side by side (see docs/bench.md)
bench: $(DEPS) system-tools
	$(BIN)/lanthorn bench --models single,threads,events,asyncio --peers nginx,http.server \
	  --files small,large --conns 10,100,400 --rounds 2 --duration 4 --out bench-results

## make autobahn: every Autobahn TestSuite case against the WebSocket echo endpoint (the
## suite runs on Python 2.7, from pyenv); the summary goes to docs/autobahn.md
autobahn: $(DEPS)
	$(BIN)/python -m tests.conformance.autobahn

clean:
	rm -rf $(VENV) $(PEERS_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .fuzz .autobahn \
	  build
	find src -name '*.so' -delete
