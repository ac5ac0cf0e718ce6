"""Checks of values that cross process boundaries, raising the domain's InvalidInput."""

from __future__ import annotations

from typing import Any

from .errors import InvalidInput


def is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def hex32(value: Any, name: str) -> str:
    """`value` as 32 bytes of lowercase hex, or InvalidInput naming `name`."""
    if not isinstance(value, str) or len(value) != 64 or not is_hex(value):
        raise InvalidInput(f"{name} must be 32 bytes of hex")
    return value.lower()


# Fees a gateway may ask: at most 100 000 sat base, at most 100 % proportional (more is a typo,
# and would price every payment out while looking like a working gateway).
MAX_FEE_BASE_MSAT = 100_000_000
MAX_FEE_PPM = 1_000_000


def fee_msat(fees: dict, amount_msat: int) -> int:
    """Our fee on `amount_msat` for fees {base_msat, proportional_millionths}: base + ppm part."""
    return int(fees["base_msat"]) + amount_msat * int(fees["proportional_millionths"]) // 1_000_000


def fees(base: Any, ppm: Any) -> dict[str, int]:
    """{base_msat, proportional_millionths} checked: whole numbers within the bounds above."""
    for v, name, top in (
        (base, "base_msat", MAX_FEE_BASE_MSAT),
        (ppm, "proportional_millionths", MAX_FEE_PPM),
    ):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top:
            raise InvalidInput(f"{name} must be a whole number from 0 to {top}")
    return {"base_msat": base, "proportional_millionths": ppm}


def flag(value: Any, name: str) -> bool:
    """An optional JSON boolean (absent or null: false); anything else is InvalidInput."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false")
    return value


def amount_text(msat: int) -> str:
    """An amount as the gateway shows it to people: sat, with the msat remainder where there is
    one ("1,234 sat", "1,234.567 sat"), in every form, table and message."""
    sign, (sat, rest) = "-" if msat < 0 else "", divmod(abs(msat), 1000)
    return f"{sign}{sat:,}.{rest:03d} sat" if rest else f"{sign}{sat:,} sat"
