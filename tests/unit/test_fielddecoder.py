"""The request field-block decoder's memory (protocol/fielddecoder): a block seen before
is answered from memory while the HPACK dynamic table stays as it was."""

from __future__ import annotations

import hpack

from lanthorn.protocol.fielddecoder import BlockDecoder

FIELDS = [(b":method", b"GET"), (b":path", b"/a.css"), (b"user-agent", b"test/1")]


def test_a_repeated_block_is_answered_from_memory_while_the_table_stands() -> None:
    encoder, decoder = hpack.Encoder(), BlockDecoder(65536)
    first = encoder.encode(FIELDS)  # literals: they enter the dynamic table
    again = encoder.encode(FIELDS)  # indexes only
    assert decoder.decode(first) == FIELDS
    remembered = decoder.decode(again)
    assert remembered == FIELDS
    # The same list, not a second decoding (compiled, too: the table's state is compared
    # by identity, which a copied tuple would break).
    assert decoder.decode(again) is remembered


def test_a_block_that_changes_the_table_forgets_what_was_remembered() -> None:
    encoder, decoder = hpack.Encoder(), BlockDecoder(65536)
    decoder.decode(encoder.encode(FIELDS))
    again = encoder.encode(FIELDS)
    remembered = decoder.decode(again)
    assert decoder.decode(again) is remembered
    decoder.decode(encoder.encode([(b":path", b"/b.js")]))  # inserts a new entry
    # The same octets now index other entries (RFC 7541 §2.3.3): decoded anew, they
    # name other fields, which a remembered answer would have hidden.
    fresh = decoder.decode(again)
    assert fresh is not remembered and fresh != FIELDS
