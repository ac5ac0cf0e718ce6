"""One payment as everything that reports payments reads it: the payment log (each actor's rows,
merged by the router), the summary (`gwcore.summary`) and the metrics (the actor's
`PaymentStats`). Every flow that moves money (LNv1 and LNv2 sends and receives, swaps,
withdrawals) describes its payments with `payment_row`, and nothing else builds them.

A row: {id, federation_id, direction (PAYMENT_DIRECTIONS), status (PAYMENT_STATUSES), amount_msat,
fee_earned_msat (what the gateway kept, after Lightning fees), payment_hash, created, finished
(None while pending), latency_s (finished - created), error (why it failed; None otherwise)},
plus what its kind adds (a withdrawal: address, txid, onchain_fee_sat, refunded_msat).
"""

from __future__ import annotations

from typing import Any

from .constants import PAYMENT_DIRECTIONS, PAYMENT_STATUSES


def payment_row(
    id: str,
    federation_id: str,
    direction: str,
    status: str,
    amount_msat: int,
    created: float,
    updated: float,
    *,
    fee_earned_msat: int = 0,
    payment_hash: str | None = None,
    error: str | None = None,
    **extra: Any,
) -> dict:
    """The row of one payment; `updated`: when its state last moved (its end, once final)."""
    if direction not in PAYMENT_DIRECTIONS or status not in PAYMENT_STATUSES:
        raise ValueError(f"a payment is {PAYMENT_DIRECTIONS} and {PAYMENT_STATUSES}")
    done = status != "pending"
    return {
        "id": id,
        "federation_id": federation_id,
        "direction": direction,
        "status": status,
        "amount_msat": amount_msat,
        "fee_earned_msat": max(0, fee_earned_msat) if status == "settled" else 0,
        "payment_hash": payment_hash,
        "created": created,
        "finished": updated if done else None,
        "latency_s": round(updated - created, 3) if done else None,
        "error": error if status == "failed" else None,
        **extra,
    }
