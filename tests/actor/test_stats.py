"""The actor's payment totals (what /metrics shows) over the payments its flows report."""

from __future__ import annotations

import pytest

from gwcore.payments import payment_row
from services.actor.stats import PaymentStats

FED = "ab" * 32


class Payments:
    """A stand-in for the actor's flows: payments by id, each with the time it last moved."""

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}
        self.now = 1000.0

    def put(self, id: str, direction: str, status: str, amount: int, fee: int = 0) -> None:
        self.now += 0.01
        created = self.rows[id]["created"] if id in self.rows else self.now
        self.rows[id] = payment_row(
            id, FED, direction, status, amount, created, self.now, fee_earned_msat=fee
        )

    def sources(self, watermark: float) -> tuple[list[dict], list[dict]]:
        rows = self.rows.values()
        final = [p for p in rows if p["finished"] is not None and p["finished"] > watermark]
        return final, [p for p in rows if p["status"] == "pending"]


def test_totals_count_each_finished_payment_once_and_survive_restarts() -> None:
    payments = Payments()
    stats = PaymentStats(FED, payments.sources)
    empty = stats.snapshot()["directions"]
    assert empty["outgoing"] == {
        "settled": 0,
        "failed": 0,
        "pending": 0,
        "volume_msat": 0,
        "fees_earned_msat": 0,
        "latency_buckets": [0] * 11,
        "latency_sum_s": 0.0,
    }
    payments.put("c1", "outgoing", "pending", 100_000)
    payments.put("h1", "incoming", "pending", 5_000)
    snap = stats.snapshot()["directions"]
    assert snap["outgoing"]["pending"] == 1 and snap["incoming"]["pending"] == 1
    payments.put("c1", "outgoing", "settled", 100_000, fee=800)
    payments.put("h1", "incoming", "failed", 5_000)
    payments.put("c2", "outgoing", "failed", 7, fee=2)  # a failed payment earns nothing
    payments.put("c3", "swap", "settled", 50, fee=10)
    payments.put("w1", "withdrawal", "settled", 30_000_000)
    for _ in range(3):  # asking again adds nothing
        snap = stats.snapshot()["directions"]
    out = snap["outgoing"]
    assert (out["settled"], out["failed"], out["pending"]) == (1, 1, 0)
    assert out["volume_msat"] == 100_000 and out["fees_earned_msat"] == 800
    assert sum(out["latency_buckets"]) == 1 and out["latency_buckets"][0] == 1  # under 50 ms
    assert snap["incoming"]["failed"] == 1 and snap["incoming"]["pending"] == 0
    assert snap["swap"]["settled"] == 1 and snap["swap"]["fees_earned_msat"] == 10
    assert snap["withdrawal"]["volume_msat"] == 30_000_000
    # a restarted actor rebuilds the same totals from its database
    assert PaymentStats(FED, payments.sources).snapshot()["directions"] == snap


def test_a_payment_row_reports_only_what_the_gateway_kept() -> None:
    p = payment_row("h", FED, "incoming", "settled", 1_000, 10.0, 10.5, fee_earned_msat=10)
    assert (p["direction"], p["status"], p["fee_earned_msat"], p["latency_s"]) == (
        "incoming",
        "settled",
        10,
        0.5,
    )
    failed = payment_row("h", FED, "incoming", "failed", 1_000, 10.0, 11.0, fee_earned_msat=10)
    assert failed["fee_earned_msat"] == 0 and failed["finished"] == 11.0
    pending = payment_row("h", FED, "incoming", "pending", 1_000, 10.0, 12.0, error="x")
    assert pending["finished"] is None and pending["latency_s"] is None and pending["error"] is None
    with pytest.raises(ValueError):
        payment_row("h", FED, "sideways", "settled", 1, 0.0, 0.0)


def test_summaries_merge_across_federations(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from gwcore import summary

    def pay(i: int, direction: str, status: str, latency: float) -> dict:
        return {
            "direction": direction,
            "status": status,
            "amount_msat": 1000,
            "fee_earned_msat": 10 if status == "settled" else 0,
            "created": 100.0 + i,
            "latency_s": latency if status == "settled" else None,
        }

    a = summary.partial([pay(i, "incoming", "settled", i / 10) for i in range(10)], 100, 3700, 600)
    b = summary.partial(
        [
            pay(0, "incoming", "settled", 5.0),
            pay(1, "outgoing", "failed", 0),
            pay(9999, "swap", "settled", 1),
        ],
        100,
        3700,
        600,
    )  # the last one is outside the window
    m = summary.merge([a, b], 100, 3700, 600)
    inc = m["directions"]["incoming"]
    assert (inc["count"], inc["settled"], inc["volume_msat"], inc["fees_earned_msat"]) == (
        11,
        11,
        11_000,
        110,
    )
    assert inc["latency_p50_s"] == 0.5 and inc["latency_p90_s"] == 0.9  # over the union
    assert m["directions"]["outgoing"]["failed"] == 1 and m["directions"]["swap"]["count"] == 0
    assert (
        len(m["series"]) == 6 and m["series"][0]["settled"] == 11 and m["fees_earned_msat"] == 110
    )
    monkeypatch.setattr(summary, "MAX_LATENCIES", 5)
    big = summary.partial([pay(i, "incoming", "settled", 1.0) for i in range(20)], 100, 3700, 600)
    assert big["latency_sampled"] and len(big["directions"]["incoming"]["latencies_s"]) == 5
    assert big["directions"]["incoming"]["settled"] == 20  # counts are never sampled


def test_sampled_federations_weigh_what_they_stand_for(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """100 fast payments in one federation (sampled down to 10), 20 slow ones in another: the
    median is fast, as it is over the 120 payments, not slow as over the 30 samples."""
    from gwcore import summary

    monkeypatch.setattr(summary, "MAX_LATENCIES", 10)

    def pay(latency: float) -> dict:
        return {
            "direction": "incoming",
            "status": "settled",
            "amount_msat": 1,
            "fee_earned_msat": 0,
            "created": 150.0,
            "latency_s": latency,
        }

    fast = summary.partial([pay(0.1) for _ in range(100)], 100, 200, 60)
    slow = summary.partial([pay(5.0) for _ in range(20)], 100, 200, 60)
    assert fast["directions"]["incoming"]["latency_weight"] == 10.0
    m = summary.merge([fast, slow], 100, 200, 60)["directions"]["incoming"]
    assert m["latency_p50_s"] == 0.1 and m["latency_p90_s"] == 5.0 and m["settled"] == 120
