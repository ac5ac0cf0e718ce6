"""What the actor reports about its payments to Prometheus: running totals per direction of the
payments its flows describe (`gwcore.payments.payment_row`, as the payment log shows them).

Totals are kept incrementally: a payment in a final state never changes again, so the actor
adds each one once (those finished past a watermark) and only recounts the few still pending. A
restarted actor rebuilds the totals from its database on the first scrape, so the counters
survive restarts as Prometheus counters should (they only grow).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from typing import Any

from gwcore.constants import PAYMENT_DIRECTIONS, PAYMENT_LATENCY_BUCKETS_S

# watermark -> (payments final since it, by `finished`; payments still pending)
Sources = Callable[[float], tuple[list[dict], list[dict]]]


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
    """Running totals per direction of the payments `sources` reports (the module docstring)."""

    def __init__(self, federation_id: str, sources: Sources) -> None:
        self.federation_id, self.sources = federation_id, sources
        self.totals = _empty()
        self.watermark = 0.0
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
            final, pending = self.sources(self.watermark)
            for p in final:
                self._add(p)
                self.watermark = max(self.watermark, p["finished"])
            out = {
                d: {**t, "latency_buckets": list(t["latency_buckets"])}
                for d, t in self.totals.items()
            }
        for d in out.values():
            d["pending"] = 0
        for p in pending:
            out[p["direction"]]["pending"] += 1
        return {"directions": out, "latency_bounds_s": list(PAYMENT_LATENCY_BUCKETS_S)}
