"""Core Lightning's values as its JSON-RPC and its `htlc_accepted` hook give them: short channel
ids (`"BLOCKxTXxOUT"` or an integer) and amounts (msat, an integer or an older `"1234msat"`), read
by the backend and by the hook alike."""

from __future__ import annotations

from typing import Any


def scid_to_int(value: str | int) -> int:
    """A short channel id as the integer lnd and BOLT 7 use: block << 40 | tx << 16 | output."""
    if isinstance(value, int):
        return value
    block, tx, out = (int(x) for x in value.split("x"))
    return (block << 40) | (tx << 16) | out


def msat(value: Any) -> int:
    """CLN amounts: an integer of msat, or (older) a string "1234msat"."""
    if isinstance(value, int):
        return value
    return int(str(value).removesuffix("msat"))
