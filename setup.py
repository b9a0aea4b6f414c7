"""The compiled hot path, optional: with LANTHORN_COMPILE=1 the build compiles the
modules below with mypyc (which comes with mypy) into extension modules; without it the
package is pure Python, as every other setting lives in pyproject.toml.

`make native` builds them in place (`setup.py build_ext --inplace`); a wheel for a
machine without a compiler: `LANTHORN_COMPILE=1 pip wheel --no-build-isolation .` with
lanthorn's dependencies, mypy and setuptools installed. See lanthorn/native.py.
"""

import os

from setuptools import setup

# What one request runs through, per protocol; each compiles from the same typed source
# that runs as Python elsewhere (docs/bench.md has what it is worth). A compiled class is
# closed: no attributes but its declared ones, methods that cannot be replaced, no copy
# (so driver/context's Service, which `open_door` copies, stays Python), and constants
# read through the class must be Final.
NATIVE = [
    "clock",
    "timers",
    "core/cache",
    "core/request",
    "core/respond",
    "core/response",
    "protocol/events",
    "protocol/fielddecoder",
    "protocol/frameguard",
    "protocol/h2wire",
    "protocol/http1",
    "protocol/http2",
    "protocol/multiplexed",
    "protocol/priority",
    "protocol/requestfields",
    "driver/admission",
    "driver/contract",
    "driver/http1",
    "driver/ledger",
    "driver/negotiate",
    "driver/outgoing",
    "driver/streams",
    "driver/tls",
    "engines/asyncio",
    "engines/events",
]

ext_modules = []
if os.environ.get("LANTHORN_COMPILE") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify([f"src/lanthorn/{name}.py" for name in NATIVE], opt_level="3")

setup(ext_modules=ext_modules)
