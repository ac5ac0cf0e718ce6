"""The actor's payment totals (what /metrics shows) against its real SQLite store."""

from __future__ import annotations

from pathlib import Path

from services.actor.stats import PaymentStats, classify
from services.actor.store import ActorStore

FED = "ab" * 32


def test_totals_count_each_finished_payment_once_and_survive_restarts(tmp_path: Path) -> None:
    store = ActorStore(tmp_path / "actor.sqlite")
    stats = PaymentStats(store, FED)
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
    # an outgoing payment: paying (pending) -> claimed (settled, fee 1_000 - 200 Lightning fee)
    store.put("outgoing", "c1", "paying", invoice_msat=100_000, amount_msat=101_000)
    store.put("incoming", "1/0", "received", payment_hash="00" * 32, outgoing_amount_msat=5_000)
    snap = stats.snapshot()["directions"]
    assert snap["outgoing"]["pending"] == 1 and snap["incoming"]["pending"] == 1
    store.put("outgoing", "c1", "claimed", ln_fee_msat=200)
    store.put("incoming", "1/0", "failed", reason="no offer")
    store.put("outgoing", "c2", "cancelled", invoice_msat=7, amount_msat=9)
    store.put("outgoing", "c3", "claimed", invoice_msat=50, amount_msat=60, swap_scid=2)
    for _ in range(3):  # asking again adds nothing
        snap = stats.snapshot()["directions"]
    out = snap["outgoing"]
    assert (out["settled"], out["failed"], out["pending"]) == (1, 1, 0)
    assert out["volume_msat"] == 100_000 and out["fees_earned_msat"] == 800
    assert sum(out["latency_buckets"]) == 1 and out["latency_buckets"][0] == 1  # under 50 ms
    assert snap["incoming"]["failed"] == 1 and snap["incoming"]["pending"] == 0
    assert snap["swap"]["settled"] == 1 and snap["swap"]["fees_earned_msat"] == 10
    # a restarted actor rebuilds the same totals from its database
    again = PaymentStats(ActorStore(tmp_path / "actor.sqlite"), FED).snapshot()["directions"]
    assert again == snap


def test_classify_reports_only_what_the_gateway_kept() -> None:
    row = {
        "table": "incoming",
        "id": "3/4",
        "state": "settled",
        "created": 10.0,
        "updated": 10.5,
        "offer_amount_msat": 1_000,
        "incoming_amount_msat": 1_010,
        "incoming_chan_id": 3,
        "payment_hash": "11" * 32,
    }
    p = classify(row, FED)
    assert (p["direction"], p["status"], p["fee_earned_msat"], p["latency_s"]) == (
        "incoming",
        "settled",
        10,
        0.5,
    )
    swap_in = classify({**row, "incoming_chan_id": None}, FED)  # a swap's receiving side
    assert swap_in["fee_earned_msat"] == 0
    assert classify({**row, "state": "funding"}, FED)["status"] == "pending"


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
