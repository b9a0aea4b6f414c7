"""Session tickets (driver/tickets): what one worker issues, the others learn intact
(encode → decode); a ticket is taken once; the store is bounded; garbage is ignored."""

from __future__ import annotations

import datetime

import pytest
from qh3.tls import CipherSuite, SessionTicket

from lanthorn.driver.tickets import SessionTickets, decode, encode


def _ticket(identity: bytes, early: int | None = 0xFFFFFFFF) -> SessionTicket:
    now = datetime.datetime(2026, 12, 1, 12, 0, 0, 250000)
    return SessionTicket(
        age_add=123456789,
        cipher_suite=CipherSuite.AES_128_GCM_SHA256,
        not_valid_after=now + datetime.timedelta(days=1),
        not_valid_before=now,
        resumption_secret=b"s" * 32,
        server_name="localhost",
        ticket=identity,
        max_early_data_size=early,
        other_extensions=[(0x39, b"transport parameters"), (16, b"\x00\x03\x02h3")],
    )


@pytest.mark.parametrize("early", [0xFFFFFFFF, None])
def test_a_ticket_crosses_to_another_worker_intact(early: int | None) -> None:
    ticket = _ticket(b"id" * 32, early)
    assert decode(encode(ticket)) == ticket
    issuer, other = SessionTickets(share=True), SessionTickets(share=True)
    issuer.issued(ticket)
    for message in issuer.shared:
        other.learn(message)
    assert other.fetch(ticket.ticket) == ticket
    assert other.fetch(ticket.ticket) is None  # used once
    assert issuer.fetch(ticket.ticket) == ticket  # (the issuer's own copy)


def test_one_worker_shares_nothing_and_the_store_is_bounded() -> None:
    tickets = SessionTickets(share=False, limit=3)
    for n in range(5):
        tickets.issued(_ticket(bytes([n]) * 8))
    assert tickets.shared == [] and len(tickets) == 3
    assert tickets.fetch(b"\x00" * 8) is None  # the oldest went first
    assert tickets.fetch(b"\x04" * 8) is not None


def test_what_is_not_a_ticket_is_ignored() -> None:
    tickets = SessionTickets(share=True)
    message = encode(_ticket(b"x" * 8))
    for garbage in (b"", b"\x00" * 10, message[:-1], message + b"!", b"\xff" * 64):
        tickets.learn(garbage)
    assert len(tickets) == 0
