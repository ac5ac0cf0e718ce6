"""What the LNv2 receives' rows (lnv2_receive.py, table `lnv2_receives`) tell others: the
payment log's rows (gwcore.payments.payment_row: direction incoming, the fee earned is the
invoice less the contract) and the payer's LUD-21 verify, as gatewayd's /verify answers it.
It only reads rows it is given; the states it names are lnv2_receive.ReceiveState's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from gwcore.errors import InvalidInput, NotFound
from gwcore.payments import payment_row

# the payment log's status of a receive in a state it never leaves; any other state: pending
RECEIVE_STATUS = {"decrypted": "settled", "refunded": "failed", "funding_refused": "failed"}


def payment_rows(rows: Iterable[Any], federation_id: str) -> list[dict]:
    """`lnv2_receives` rows of federation `federation_id` as payment-log rows."""
    out = []
    for r in rows:
        status = RECEIVE_STATUS.get(r["state"], "pending")
        contract = json.loads(r["contract"])["commitment"]["amount"]
        out.append(
            payment_row(
                r["payment_hash"],
                federation_id,
                "incoming",
                status,
                r["amount_msat"],
                r["created"],
                r["updated"],
                fee_earned_msat=r["amount_msat"] - contract,
                payment_hash=r["payment_hash"],
                error=r["error"],
            )
        )
    return out


def verify_answer(row: dict | None) -> dict:
    """LUD-21 verify of the receive in `row` (None: no receive of that payment hash)."""
    if row is None:
        raise NotFound("Unknown payment hash")
    if row["state"] == "decrypted":
        return {"status": "OK", "settled": True, "preimage": row["preimage"]}
    if row["state"] in ("refunded", "funding_refused"):
        raise InvalidInput(f"Payment has been {row['state'].split('_')[-1]}")
    return {"status": "OK", "settled": False, "preimage": None}
