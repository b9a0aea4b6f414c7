"""RFC 6455 conformance in the suite: the Autobahn TestSuite's framing, fragmentation,
UTF-8, close and limit cases (1-7, 10) against the echo endpoint; `make autobahn` runs
all of them, compression and the 16 MiB performance cases included."""

from __future__ import annotations

from tests.conformance import autobahn


def test_autobahn_core_cases_pass() -> None:
    results = autobahn.run(["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"])
    assert len(results) > 200
    assert autobahn.failures(results) == []
