"""QUIC Retry tokens (driver/quic.RetryTokens): valid once made, for their address and
for TOKEN_S, in every worker of the server (they share its secret); a changed byte,
another address, an old token or another server's is refused."""

from __future__ import annotations

from lanthorn.driver.quic import TOKEN_S, RetryTokens

HERE = ("127.0.0.1", 5000)
SECRET = b"s" * 32


def test_a_token_brings_back_the_connection_ids() -> None:
    tokens = RetryTokens(SECRET)
    token = tokens.make(HERE, b"original", b"retry-id", 100.0)
    assert tokens.check(HERE, token, 100.5) == (b"original", b"retry-id")
    other_worker = RetryTokens(SECRET)
    assert other_worker.check(HERE, token, 100.5) == (b"original", b"retry-id")


def test_forged_moved_and_old_tokens_are_refused() -> None:
    tokens = RetryTokens(SECRET)
    token = tokens.make(HERE, b"\x01" * 8, b"\x02" * 8, 100.0)
    forged = token[:3] + bytes([token[3] ^ 1]) + token[4:]
    assert tokens.check(HERE, forged, 100.0) is None
    assert tokens.check(("127.0.0.1", 5001), token, 100.0) is None  # another port
    assert tokens.check(("127.0.0.2", 5000), token, 100.0) is None
    assert tokens.check(HERE, token, 100.0 + TOKEN_S + 0.1) is None  # too old
    assert tokens.check(HERE, b"", 100.0) is None
    assert tokens.check(HERE, b"x" * 40, 100.0) is None
    assert RetryTokens(b"t" * 32).check(HERE, token, 100.0) is None  # another server's
