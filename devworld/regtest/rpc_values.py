"""Values on bitcoind's JSON-RPC wire: BTC amounts (at most 8 decimals) and integer
parameters, checked the way bitcoind checks them."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from . import bitcoin as btc
from .errors import RPC_TYPE_ERROR, RpcError


def btc_to_sat(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str, float)):
        raise RpcError(RPC_TYPE_ERROR, "Amount is not a number or string")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise RpcError(RPC_TYPE_ERROR, "Invalid amount") from None
    sats = d * btc.COIN
    if sats != sats.to_integral_value():
        raise RpcError(RPC_TYPE_ERROR, "Invalid amount")
    if sats < 0 or sats > 21_000_000 * btc.COIN:
        raise RpcError(RPC_TYPE_ERROR, "Amount out of range")
    return int(sats)


def sat_to_btc(sats: int) -> float:
    return float(Decimal(sats) / btc.COIN)


def rpc_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise RpcError(RPC_TYPE_ERROR, f"{name} must be an integer")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise RpcError(RPC_TYPE_ERROR, f"{name} must be an integer") from None
    if d != d.to_integral_value():
        raise RpcError(RPC_TYPE_ERROR, f"{name} must be an integer")
    return int(d)
