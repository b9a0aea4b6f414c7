"""Decoding a fuzzer's bytes into choices. Past the end every read yields zeros/empty,
so any byte string is a valid input and a corpus file is just the bytes it decodes from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class Source:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def exhausted(self) -> bool:
        return self._pos >= len(self._data)

    def byte(self) -> int:
        if self._pos >= len(self._data):
            return 0
        self._pos += 1
        return self._data[self._pos - 1]

    def number(self, size: int) -> int:
        """A big-endian unsigned integer of `size` bytes."""
        return int.from_bytes(self.take(size).ljust(size, b"\0"), "big")

    def take(self, count: int) -> bytes:
        data = self._data[self._pos : self._pos + count]
        self._pos += len(data)
        return data

    def sized(self) -> bytes:
        """A byte string preceded by its length (one byte)."""
        return self.take(self.byte())

    def pick(self, options: Sequence[T]) -> T:
        return options[self.byte() % len(options)]

    def rest(self) -> bytes:
        data = self._data[self._pos :]
        self._pos = len(self._data)
        return data
