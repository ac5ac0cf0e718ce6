"""What the LNv1 modules (`fmclient.lnv1`, `fmclient.lnv1_tx`, `fmclient.lnv1_gateway`) share:
`Lnv1Error`, the checks of the JSON values the guardians and gateways send (objects, hex, keys,
whole numbers, byte lists), a BIP340 check, and one whole value read from its encoding."""

from __future__ import annotations

from typing import Any

from coincurve import PublicKeyXOnly

from .encoding import DecodeError, Reader


class Lnv1Error(ValueError):
    """A contract, answer or body that is not valid LNv1; one line saying why."""


# -- checks of JSON values


def obj(value: object, what: str, fields: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise Lnv1Error(f"{what} is an object")
    missing = [f for f in fields if f not in value]
    if missing:
        raise Lnv1Error(f"{what} lacks {', '.join(missing)}")
    return value


def hex_bytes(value: object, size: int, what: str) -> bytes:
    try:
        data = bytes.fromhex(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Lnv1Error(f"{what} is hex") from None
    if size and len(data) != size:
        raise Lnv1Error(f"{what} is {size} bytes")
    return data


def pubkey(value: object, what: str) -> bytes:
    data = hex_bytes(value, 33, what)
    try:
        if data[0] not in (2, 3):
            raise ValueError
        PublicKeyXOnly(data[1:])
    except ValueError:
        raise Lnv1Error(f"{what} is not a compressed secp256k1 key") from None
    return data


def uint(value: object, what: str, top: int = (1 << 64) - 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
        raise Lnv1Error(f"{what} is a whole number from 0 to {top}")
    return value


def byte_list(value: object, what: str) -> bytes:
    if not isinstance(value, list) or not all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value
    ):
        raise Lnv1Error(f"{what} is a list of bytes")
    return bytes(value)


def verify_bip340(pubkey33: bytes, message: bytes, signature: bytes) -> bool:
    try:
        return PublicKeyXOnly(pubkey33[1:]).verify(bytes(signature), message)
    except (ValueError, TypeError):
        return False


def decode(data: bytes, get: Any, what: str) -> Any:
    """One whole value from its encoding (Lnv1Error on any leftover or malformed byte)."""
    r = Reader(data, what)
    try:
        value = get(r)
        r.done()
    except DecodeError as exc:
        raise Lnv1Error(str(exc)) from None
    return value
