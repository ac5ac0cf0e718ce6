"""What every rule of the federation shares: the refusal type and the input checks.

`FedError(code, message, status)` is a rule broken by a request: nothing was changed; `status` is
the HTTP status the API answers with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devworld.fedlib import crypto


class FedError(Exception):
    """A rule the request broke: nothing was changed. `status` is the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Spend:
    """A checked input: its amount, the key that must sign, and how to apply it."""

    amount: int
    signer: str | None
    apply: Any  # callable(conn, txid)


def _hex(value: Any, nbytes: int | None, what: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except (ValueError, TypeError):
        raise FedError("invalid_input", f"{what} must be hex") from None
    if nbytes is not None and len(raw) != nbytes:
        raise FedError("invalid_input", f"{what} must be {nbytes} bytes")
    return value.lower()


def _int(value: Any, what: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise FedError("invalid_input", f"{what} must be an integer >= {minimum}")
    return value


def _key(value: Any, what: str) -> str:
    if not crypto.valid_xonly(value):
        raise FedError("invalid_input", f"{what} must be a 32-byte x-only public key (hex)")
    return str(value).lower()
