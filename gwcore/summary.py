"""The payment summary, computed where the payments are and merged where they are shown.

Each actor summarizes its own payments of a window (`partial`: counts, volume, fees, settled
volume per time bucket, and the settlement latencies, sampled down to MAX_LATENCIES); the API
front merges the federations' partials (`merge`) and takes the latency percentiles of the
union. So a summary moves a few kilobytes over the bus, however many payments the day held.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from .constants import PAYMENT_DIRECTIONS

MAX_LATENCIES = 10_000


def buckets(start: float, end: float, bucket_s: int) -> int:
    return max(1, -int(-(end - start) // bucket_s))


def partial(payments: Iterable[dict], start: float, end: float, bucket_s: int) -> dict:
    """Payments (as the payment log shows them) created in [start, end) -> a partial summary."""
    n = buckets(start, end, bucket_s)
    dirs = {
        d: {
            "count": 0,
            "settled": 0,
            "failed": 0,
            "pending": 0,
            "volume_msat": 0,
            "fees_earned_msat": 0,
            "latencies_s": [],
        }
        for d in PAYMENT_DIRECTIONS
    }
    series = [{"settled": 0, "volume_msat": 0, "fees_earned_msat": 0} for _ in range(n)]
    for p in payments:
        if not start <= p["created"] < end:
            continue
        d = dirs[p["direction"]]
        d["count"] += 1
        d[p["status"]] += 1
        if p["status"] == "settled":
            d["volume_msat"] += p["amount_msat"]
            d["fees_earned_msat"] += p["fee_earned_msat"]
            if p["latency_s"] is not None:
                d["latencies_s"].append(p["latency_s"])
            b = series[min(n - 1, int((p["created"] - start) // bucket_s))]
            b["settled"] += 1
            b["volume_msat"] += p["amount_msat"]
            b["fees_earned_msat"] += p["fee_earned_msat"]
    sampled = False
    for d in dirs.values():
        n_lat = len(d["latencies_s"])
        d["latency_weight"] = 1.0  # how many payments each latency listed stands for
        if n_lat > MAX_LATENCIES:  # a uniform sample keeps the percentiles
            d["latencies_s"] = random.sample(d["latencies_s"], MAX_LATENCIES)
            d["latency_weight"] = n_lat / MAX_LATENCIES
            sampled = True
    return {"directions": dirs, "series": series, "latency_sampled": sampled}


def merge(parts: list[dict], start: float, end: float, bucket_s: int) -> dict:
    """The federations' partials -> {start, end, bucket_s, directions: {d: {count, settled,
    failed, pending, volume_msat, fees_earned_msat, latency_p50_s, latency_p90_s}},
    fees_earned_msat, series: [{start, settled, volume_msat, fees_earned_msat}],
    latency_sampled}."""
    n = buckets(start, end, bucket_s)
    out: dict = {"start": start, "end": end, "bucket_s": bucket_s, "directions": {}}
    for direction in PAYMENT_DIRECTIONS:
        mine = [p["directions"][direction] for p in parts]
        weighted = sorted(  # a federation's sample counts for all the payments it stands for
            (x, d.get("latency_weight", 1.0)) for d in mine for x in d["latencies_s"]
        )
        out["directions"][direction] = {
            **{
                k: sum(d[k] for d in mine)
                for k in (
                    "count",
                    "settled",
                    "failed",
                    "pending",
                    "volume_msat",
                    "fees_earned_msat",
                )
            },
            "latency_p50_s": _quantile(weighted, 0.5),
            "latency_p90_s": _quantile(weighted, 0.9),
        }
    out["fees_earned_msat"] = sum(d["fees_earned_msat"] for d in out["directions"].values())
    out["series"] = [
        {
            "start": start + i * bucket_s,
            **{
                k: sum(p["series"][i][k] for p in parts)
                for k in ("settled", "volume_msat", "fees_earned_msat")
            },
        }
        for i in range(n)
    ]
    out["latency_sampled"] = any(p["latency_sampled"] for p in parts)
    return out


def _quantile(weighted: list[tuple[float, float]], q: float) -> float | None:
    """The smallest value whose cumulative weight passes `q` of the total (the plain
    `sorted[int(q * n)]` when every weight is 1); None when empty."""
    if not weighted:
        return None
    target, acc = q * sum(w for _, w in weighted), 0.0
    for value, w in weighted:
        acc += w
        if acc > target:
            return value
    return weighted[-1][0]
