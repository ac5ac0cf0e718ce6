"""What the actor reports about its payments: one row of its store seen as a payment
(`classify`, shared by the payment log and the metrics) and running totals for Prometheus.

Totals are kept incrementally: a payment in a final state never changes again, so the actor
adds each one once (rows whose `updated` is past a watermark) and only recounts the few still
pending. A restarted actor rebuilds the totals from its database on the first scrape, so the
counters survive restarts as Prometheus counters should (they only grow).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from typing import Any

from gwcore.constants import PAYMENT_DIRECTIONS, PAYMENT_LATENCY_BUCKETS_S

from .flows import IN_FINAL, OUT_FINAL
from .store import ActorStore

OUT_STATUS = {"claimed": "settled", "cancelled": "failed", "refused": "failed"}
IN_STATUS = {"settled": "settled", "failed": "failed"}


def classify(row: dict, federation_id: str) -> dict:
    """A store row -> a payment: {id, federation_id, direction (outgoing | incoming | swap),
    status (settled | failed | pending), amount_msat, fee_earned_msat, payment_hash, created,
    finished, latency_s, error (why it failed)}. Fees count only what the gateway kept (after Lightning fees)."""
    if row["table"] == "outgoing":
        direction = "swap" if row.get("swap_scid") else "outgoing"
        status = OUT_STATUS.get(row["state"], "pending")
        amount = row.get("invoice_msat", 0)
        fee = (
            row.get("amount_msat", 0) - amount - row.get("ln_fee_msat", 0)
            if status == "settled"
            else 0
        )
    else:
        direction = "incoming"
        status = IN_STATUS.get(row["state"], "pending")
        amount = row.get("offer_amount_msat", row.get("outgoing_amount_msat", 0))
        fee = (
            row.get("incoming_amount_msat", 0) - amount
            if status == "settled" and row.get("incoming_chan_id")
            else 0
        )
    done = status != "pending"
    return {
        "id": row["id"],
        "federation_id": federation_id,
        "direction": direction,
        "status": status,
        "amount_msat": amount,
        "fee_earned_msat": max(0, fee),
        "payment_hash": row.get("payment_hash"),
        "created": row["created"],
        "finished": row["updated"] if done else None,
        "latency_s": round(row["updated"] - row["created"], 3) if done else None,
        "error": (row.get("error") or row.get("reason")) if status == "failed" else None,
    }


def _empty() -> dict[str, dict[str, Any]]:
    return {
        d: {
            "settled": 0,
            "failed": 0,
            "volume_msat": 0,
            "fees_earned_msat": 0,
            "latency_buckets": [0] * (len(PAYMENT_LATENCY_BUCKETS_S) + 1),  # last: +Inf
            "latency_sum_s": 0.0,
        }
        for d in PAYMENT_DIRECTIONS
    }


class PaymentStats:
    """Running totals per direction of the payments in `store` (see the module docstring)."""

    def __init__(
        self,
        store: ActorStore,
        federation_id: str,
        more: Callable[[float], tuple[list[dict], list[dict]]] | None = None,
    ) -> None:
        """`more(watermark)`: payments kept elsewhere (LNv2's): those final since the
        watermark (by `finished`) and those still pending, as classified payments."""
        self.store, self.federation_id, self.more = store, federation_id, more
        self.totals = _empty()
        self.watermark = self.more_watermark = 0.0
        self.lock = threading.Lock()

    def _add(self, p: dict) -> None:
        t = self.totals[p["direction"]]
        t[p["status"]] += 1
        if p["status"] == "settled":
            t["volume_msat"] += p["amount_msat"]
            t["fees_earned_msat"] += p["fee_earned_msat"]
            t["latency_buckets"][bisect.bisect_left(PAYMENT_LATENCY_BUCKETS_S, p["latency_s"])] += 1
            t["latency_sum_s"] += p["latency_s"]

    def snapshot(self) -> dict:
        """{directions: {d: {settled, failed, pending, volume_msat, fees_earned_msat,
        latency_buckets (per bucket, not cumulative; the last is +Inf), latency_sum_s}},
        latency_bounds_s}."""
        with self.lock:  # snapshots run in worker threads: one at a time
            finished, self.watermark = self.store.finished_since(
                self.watermark, {"outgoing": OUT_FINAL, "incoming": IN_FINAL}
            )
            for row in finished:
                self._add(classify(row, self.federation_id))
            pending: list[dict] = []
            if self.more is not None:
                final, pending = self.more(self.more_watermark)
                for p in final:
                    self._add(p)
                    self.more_watermark = max(self.more_watermark, p["finished"])
            out = {
                d: {**t, "latency_buckets": list(t["latency_buckets"])}
                for d, t in self.totals.items()
            }
        for d in out.values():
            d["pending"] = 0
        for p in pending:
            out[p["direction"]]["pending"] += 1
        for table, final in (("outgoing", OUT_FINAL), ("incoming", IN_FINAL)):
            for key, row in self.store.unfinished(table, final):
                p = classify({"table": table, "id": key, "created": 0, "updated": 0, **row}, "")
                out[p["direction"]]["pending"] += 1
        return {"directions": out, "latency_bounds_s": list(PAYMENT_LATENCY_BUCKETS_S)}
