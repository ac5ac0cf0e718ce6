"""Fedimint's consensus encoding (fedimint-core-0.13.0/src/encoding), both ways.

`Writer` and `Reader` are symmetric: integers u16/u32/u64 are LDK BigSize (big-endian,
canonical: a non-minimal form is refused when read), `u8` and `bool` one byte, byte strings and
strings and vectors a BigSize length then their items, fixed arrays raw, `Option` a 0/1 tag,
maps a BigSize count then key/value pairs in strictly ascending key order (refused otherwise;
the keys of the protocol's maps are integers or fixed-size values, whose order is that of their
canonical encodings by width then bytes),
enums `BigSize(variant) ‖ BigSize(len) ‖ body` with the body read whole, module items
`BigSize(module instance id) ‖ BigSize(len) ‖ body`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

MAX_U64 = (1 << 64) - 1
MAX_LENGTH = 1 << 24  # no item of the protocol is near this; a guard against garbage lengths


class DecodeError(ValueError):
    """Bytes that are not a valid encoding; the message says where and why."""


def bigsize(n: int) -> bytes:
    if not 0 <= n <= MAX_U64:
        raise ValueError(f"{n} does not fit a u64")
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "big")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "big")
    return b"\xff" + n.to_bytes(8, "big")


class Writer:
    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def u8(self, n: int) -> Writer:
        self._parts.append(bytes([n]))
        return self

    def bool(self, b: bool) -> Writer:
        return self.u8(1 if b else 0)

    def varint(self, n: int) -> Writer:
        """u16, u32 and u64 alike: BigSize."""
        self._parts.append(bigsize(n))
        return self

    def raw(self, data: bytes) -> Writer:
        """A fixed-size array (hashes, keys, signatures): the bytes, no length."""
        self._parts.append(bytes(data))
        return self

    def bytes(self, data: bytes) -> Writer:
        """`Vec<u8>`: length, then the bytes."""
        return self.varint(len(data)).raw(data)

    def str(self, text: str) -> Writer:
        return self.bytes(text.encode())

    def vec(self, items: Iterable[T], put: Callable[[Writer, T], object]) -> Writer:
        items = list(items)
        self.varint(len(items))
        for item in items:
            put(self, item)
        return self

    def option(self, value: T | None, put: Callable[[Writer, T], object]) -> Writer:
        if value is None:
            return self.u8(0)
        self.u8(1)
        put(self, value)
        return self

    def map(
        self,
        items: dict[K, V],
        put_key: Callable[[Writer, K], object],
        put_value: Callable[[Writer, V], object],
    ) -> Writer:
        """A BTreeMap: sorted by the keys' encodings (as Rust orders integer and byte keys)."""
        encoded = sorted(
            ((encode(lambda w, k=k: put_key(w, k)), v) for k, v in items.items()),
            key=lambda kv: _key_order(kv[0]),
        )
        self.varint(len(encoded))
        for key, value in encoded:
            self.raw(key)
            put_value(self, value)
        return self

    def framed(self, tag: int, body: bytes) -> Writer:
        """An enum variant or a module item: tag, body length, body."""
        return self.varint(tag).bytes(body)


def _key_order(encoded_key: bytes) -> tuple[int, bytes]:
    # BigSize keys sort by value; the canonical form makes (width, bytes) order the same
    return (len(encoded_key), encoded_key)


def encode(put: Callable[[Writer], object]) -> bytes:
    w = Writer()
    put(w)
    return w.getvalue()


class Reader:
    def __init__(self, data: bytes, what: str = "value") -> None:
        self.data, self.pos, self.what = memoryview(bytes(data)), 0, what

    def fail(self, why: str) -> DecodeError:
        return DecodeError(f"{self.what}: {why} at byte {self.pos}")

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def done(self) -> None:
        if self.remaining():
            raise self.fail(f"{self.remaining()} bytes left over")

    def raw(self, n: int) -> bytes:
        if n > self.remaining():
            raise self.fail(f"{n} bytes wanted, {self.remaining()} left")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def u8(self) -> int:
        return self.raw(1)[0]

    def bool(self) -> bool:
        b = self.u8()
        if b > 1:
            raise self.fail(f"a bool is 0 or 1, not {b}")
        return b == 1

    def varint(self, maximum: int = MAX_U64) -> int:
        first = self.u8()
        if first < 0xFD:
            n = first
        else:
            width, least = {0xFD: (2, 0xFD), 0xFE: (4, 0x10000), 0xFF: (8, 0x100000000)}[first]
            n = int.from_bytes(self.raw(width), "big")
            if n < least:
                raise self.fail(f"non-canonical BigSize {n}")
        if n > maximum:
            raise self.fail(f"{n} is above {maximum}")
        return n

    def length(self) -> int:
        n = self.varint()
        if n > MAX_LENGTH or n > self.remaining() * 8 + 8:
            raise self.fail(f"length {n} is out of range")
        return n

    def bytes(self) -> bytes:
        return self.raw(self.length())

    def str(self) -> str:
        try:
            return self.bytes().decode()
        except UnicodeDecodeError:
            raise self.fail("a string is UTF-8") from None

    def vec(self, get: Callable[[Reader], T]) -> list[T]:
        return [get(self) for _ in range(self.length())]

    def option(self, get: Callable[[Reader], T]) -> T | None:
        tag = self.u8()
        if tag > 1:
            raise self.fail(f"an Option is 0 or 1, not {tag}")
        return get(self) if tag else None

    def map(self, get_key: Callable[[Reader], K], get_value: Callable[[Reader], V]) -> dict[K, V]:
        out: dict[K, V] = {}
        last: tuple[int, bytes] | None = None
        for _ in range(self.length()):
            start = self.pos
            key = get_key(self)
            order = _key_order(bytes(self.data[start : self.pos]))
            if last is not None and order <= last:
                raise self.fail("map keys must be unique and in ascending order")
            last = order
            out[key] = get_value(self)
        return out

    def framed(self) -> tuple[int, Reader]:
        """An enum variant or a module item: its tag and a reader over exactly its body."""
        tag = self.varint()
        return tag, Reader(self.bytes(), f"{self.what} variant {tag}")
