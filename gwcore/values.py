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
