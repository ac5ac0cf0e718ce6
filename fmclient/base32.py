"""Fedimint's own base32 (fedimint-core-0.13.0/src/base32.rs): alphabet `0-9a-v`, bits packed
from the low end of a little-endian buffer, no padding, no checksum; strings carry a prefix such
as `fedimint` (e-cash, setup codes, invite codes in their second form)."""

from __future__ import annotations

ALPHABET = "0123456789abcdefghijklmnopqrstuv"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
FEDIMINT_PREFIX = "fedimint"


def encode(data: bytes) -> str:
    out, buffer, bits = [], 0, 0
    for byte in data:
        buffer |= byte << bits
        bits += 8
        while bits >= 5:
            out.append(ALPHABET[buffer & 31])
            buffer >>= 5
            bits -= 5
    if bits:
        out.append(ALPHABET[buffer & 31])
    return "".join(out)


def decode(text: str) -> bytes:
    """Leftover bits (fewer than 8) are dropped, as fedimint's decoder drops them."""
    out, buffer, bits = bytearray(), 0, 0
    for i, ch in enumerate(text):
        value = _VALUE.get(ch)
        if value is None:
            raise ValueError(f"invalid base32 character {ch!r} at {i}")
        buffer |= value << bits
        bits += 5
        while bits >= 8:
            out.append(buffer & 0xFF)
            buffer >>= 8
            bits -= 8
    return bytes(out)


def decode_prefixed(prefix: str, text: str) -> bytes:
    text = text.strip().lower()
    if not text.startswith(prefix):
        raise ValueError(f"does not start with {prefix!r}")
    return decode(text[len(prefix) :])
