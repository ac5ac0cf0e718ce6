"""Payments in the simulated network: routing, fees and CLTV, every failure path, holds,
interception, restarts, and conservation of money."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devworld.regtest.app import World
from devworld.regtest.errors import LnError
from devworld.regtest.htlcs import CODES, HtlcFailure
from devworld.regtest.lightning import Policy
from devworld.regtest.routing import Hop
from tests.fuzzing import examples

from .conftest import capacity_msat, channel, make_world, node, total_msat
from .helpers import federation_invoice as make_federation_invoice


def line(w: World, names: list[str], policy: Policy | None = None, cap: int = 1_000_000) -> None:
    for n in names:
        node(w, n)
    for a, b in itertools.pairwise(names):
        channel(w, a, b, cap, pa=policy or Policy(), pb=policy or Policy())


def htlc_rows(w: World, payment_hash: str) -> list[dict]:
    return [
        dict(r)
        for r in w.db.all("SELECT * FROM htlcs WHERE payment_hash = ? ORDER BY id", payment_hash)
    ]


async def test_multi_hop_fee_and_cltv_accounting(world: World) -> None:
    pol = Policy(base_msat=1000, ppm=2000, cltv_delta=40)
    line(world, ["alice", "bob", "carol", "dave"], pol)
    inv = world.net.create_invoice("dave", 10_000_000, min_final_cltv=18)
    height = world.chain.height()
    before = {n: world.net.node_balance_msat(n) for n in ("alice", "bob", "carol", "dave")}
    res = await world.payments.pay("alice", inv["bolt11"])
    assert res["status"] == "succeeded" and res["preimage"] == inv["preimage"]
    # carol forwards 10_000_000 to dave and charges 1000 + 20_000; bob charges on 10_021_000
    to_dave, to_carol = 10_000_000, 10_000_000 + 1000 + 20_000
    to_bob = to_carol + 1000 + to_carol * 2000 // 1_000_000
    assert res["fee_msat"] == to_bob - 10_000_000
    rows = htlc_rows(world, inv["payment_hash"])
    assert [r["amount_msat"] for r in rows] == [to_bob, to_carol, to_dave]
    assert [r["expiry"] for r in rows] == [height + 18 + 80, height + 18 + 40, height + 18]
    assert all(r["state"] == "settled" for r in rows)
    after = {n: world.net.node_balance_msat(n) for n in before}
    assert after["alice"] - before["alice"] == -to_bob
    assert after["bob"] - before["bob"] == to_bob - to_carol
    assert after["carol"] - before["carol"] == to_carol - to_dave
    assert after["dave"] - before["dave"] == to_dave
    assert world.net.invoice("dave", inv["payment_hash"])["state"] == "settled"


async def test_paying_twice_returns_the_first_result(world: World) -> None:
    line(world, ["alice", "bob"])
    inv = world.net.create_invoice("bob", 5000)
    first, second = await asyncio.gather(
        world.payments.pay("alice", inv["bolt11"]), world.payments.pay("alice", inv["bolt11"])
    )
    third = await world.payments.pay("alice", inv["bolt11"])
    assert first["status"] == "succeeded" and first == second == third
    assert len(htlc_rows(world, inv["payment_hash"])) == 1  # paid once
    node(world, "zed")
    channel(world, "zed", "bob")
    other = await world.payments.pay("zed", inv["bolt11"])  # someone else paying a paid invoice
    assert (
        other["status"] == "failed" and other["failure"] == "incorrect_or_unknown_payment_details"
    )


async def test_recipient_failures(world: World) -> None:
    line(world, ["alice", "bob"])
    canceled = world.net.create_invoice("bob", 5000)
    world.payments.cancel_invoice("bob", canceled["payment_hash"])
    res = await world.payments.pay("alice", canceled["bolt11"])
    assert (res["status"], res["failure"], res["failure_node"]) == (
        "failed",
        "incorrect_or_unknown_payment_details",
        "bob",
    )
    expired = world.net.create_invoice("bob", 5000, expiry_s=1)
    await asyncio.sleep(1.1)
    with pytest.raises(LnError, match="expired"):
        await world.payments.pay("alice", expired["bolt11"])
    with pytest.raises(LnError):
        await world.payments.pay("alice", "lnbcrt1garbage")
    with pytest.raises(LnError, match="own invoice"):
        await world.payments.pay("bob", world.net.create_invoice("bob", 1)["bolt11"])
    assert total_msat(world) == capacity_msat(world)


async def test_liquidity_failure_is_temporary_channel_failure(world: World) -> None:
    for n in ("alice", "bob", "carol"):
        node(world, n)
    channel(world, "alice", "bob", 2_000_000)
    channel(world, "bob", "carol", 1_000_000)
    # bob -> carol has the capacity but bob spent his side: path finding cannot know, bob refuses
    inv_big = world.net.create_invoice("carol", 500_000_000)
    ok = await world.payments.pay("alice", inv_big["bolt11"])
    assert ok["status"] == "succeeded"
    inv = world.net.create_invoice("carol", 600_000_000)
    res = await world.payments.pay("alice", inv["bolt11"])
    assert (res["failure"], res["failure_node"]) == ("temporary_channel_failure", "bob")
    assert total_msat(world) == capacity_msat(world)


async def test_route_hints_that_lie_get_fee_and_cltv_failures(world: World) -> None:
    line(world, ["alice", "bob", "carol"], Policy(base_msat=5000, ppm=100, cltv_delta=80))
    # carol is private: her invoice's hint describes bob -> carol, but with a fee/cltv too low
    bob, scid = world.net.nodes["bob"], next(c.scid for c in world.net.channels_of("carol"))
    for hint, failure in (
        ({"base_msat": 0, "ppm": 0, "cltv_delta": 80}, "fee_insufficient"),
        ({"base_msat": 5000, "ppm": 100, "cltv_delta": 10}, "incorrect_cltv_expiry"),
    ):
        inv = world.net.create_invoice(
            "carol", 100_000, route_hints=[[{"pubkey": bob.pubkey, "scid": scid, **hint}]]
        )
        res = await world.payments.pay(
            "alice", inv["bolt11"]
        )  # the hint's cheaper view is tried first
        assert (res["failure"], res["failure_node"]) == (failure, "bob")
    assert total_msat(world) == capacity_msat(world)


async def test_forwarding_checks_on_crafted_routes(world: World) -> None:
    line(world, ["alice", "bob", "carol"], Policy(htlc_min_msat=1000))
    a, b, c = (world.net.nodes[n] for n in ("alice", "bob", "carol"))
    ab, bc = (ch.scid for ch in world.net.channels.values())
    h = world.chain.height()
    inv = world.net.create_invoice("carol", 2000)

    async def attempt(route: list[Hop]) -> str:
        from bolt11 import decode

        with pytest.raises(HtlcFailure) as info:
            await world.payments._attempt(a, route, decode(inv["bolt11"]), 2000, 1)
        return info.value.name

    ok = dict(src=b.pubkey, scid=bc, dst=c.pubkey)
    assert (
        await attempt(
            [Hop(a.pubkey, ab, b.pubkey, 3001, h + 100), Hop(**ok, amount_msat=500, expiry=h + 50)]
        )
        == "amount_below_minimum"
    )
    assert (
        await attempt(
            [Hop(a.pubkey, ab, b.pubkey, 3001, h + 100), Hop(**ok, amount_msat=2000, expiry=h + 2)]
        )
        == "expiry_too_soon"
    )
    assert (
        await attempt(
            [
                Hop(a.pubkey, ab, b.pubkey, 3001, h + 5000),
                Hop(**ok, amount_msat=2000, expiry=h + 4000),
            ]
        )
        == "expiry_too_far"
    )
    assert (
        await attempt(
            [Hop(a.pubkey, ab, b.pubkey, 3001, h + 100), Hop(b.pubkey, 999, c.pubkey, 2000, h + 50)]
        )
        == "unknown_next_peer"
    )
    world.net.set_policy("bob", bc, enabled=False)
    assert (
        await attempt(
            [Hop(a.pubkey, ab, b.pubkey, 3001, h + 100), Hop(**ok, amount_msat=2000, expiry=h + 50)]
        )
        == "channel_disabled"
    )
    world.net.set_policy("bob", bc, enabled=True)
    assert (
        await attempt(
            [Hop(a.pubkey, ab, b.pubkey, 3001, h + 100), Hop(**ok, amount_msat=1999, expiry=h + 50)]
        )
        == "incorrect_or_unknown_payment_details"
    )
    assert total_msat(world) == capacity_msat(world)
    assert not world.db.all("SELECT * FROM htlcs WHERE state = 'pending'")


async def test_hold_invoice_settle_cancel_and_expiry(world: World) -> None:
    line(world, ["alice", "bob"])
    pre = os.urandom(32)
    h = hashlib.sha256(pre).hexdigest()
    inv = world.net.create_invoice("bob", 7000, payment_hash=h)
    events = world.payments.watch_invoices("bob")
    pay = asyncio.create_task(world.payments.pay("alice", inv["bolt11"]))
    assert (await asyncio.wait_for(events.get(), 2))["state"] == "accepted"
    with pytest.raises(LnError, match="does not hash"):
        world.payments.settle_hold("bob", h, "00" * 32)
    world.payments.settle_hold("bob", h, pre.hex())
    res = await asyncio.wait_for(pay, 2)
    assert res["status"] == "succeeded" and res["preimage"] == pre.hex()
    assert (await asyncio.wait_for(events.get(), 2))["state"] == "settled"

    h2 = hashlib.sha256(os.urandom(32)).hexdigest()
    inv2 = world.net.create_invoice("bob", 7000, payment_hash=h2)
    pay2 = asyncio.create_task(world.payments.pay("alice", inv2["bolt11"]))
    await asyncio.sleep(0.05)
    world.payments.cancel_invoice("bob", h2)
    assert (await pay2)["failure"] == "incorrect_or_unknown_payment_details"

    h3 = hashlib.sha256(os.urandom(32)).hexdigest()
    inv3 = world.net.create_invoice("bob", 7000, payment_hash=h3)
    pay3 = asyncio.create_task(world.payments.pay("alice", inv3["bolt11"]))
    await asyncio.sleep(0.05)
    assert world.net.invoice("bob", h3)["state"] == "accepted"
    world.chain.mine(20, world.chain.new_address("miner"))  # near the HTLC's expiry: canceled
    assert (await asyncio.wait_for(pay3, 2))["status"] == "failed"
    assert world.net.invoice("bob", h3)["state"] == "canceled"
    assert total_msat(world) == capacity_msat(world)


def federation_invoice(w: World, gateway: str, amount: int, preimage: bytes, scid: int = 1) -> dict:
    return {"bolt11": make_federation_invoice(w.net.nodes[gateway].pubkey, amount, preimage, scid)}


async def test_interception_settle_fail_forward_and_timeout(world: World) -> None:
    line(world, ["alice", "gw"])
    queue = world.payments.subscribe_htlcs("gw")
    results = {}
    for action in ("settle", "fail", "forward"):
        pre = os.urandom(32)
        inv = federation_invoice(world, "gw", 50_000, pre)
        pay = asyncio.create_task(world.payments.pay("alice", inv["bolt11"]))
        held = await asyncio.wait_for(queue.get(), 2)
        assert held["short_channel_id"] == 1 and held["outgoing_amount_msat"] == 50_000
        assert (
            held["incoming_amount_msat"] == 50_000
            and held["payment_hash"] == hashlib.sha256(pre).hexdigest()
        )
        if action == "settle":
            with pytest.raises(LnError, match="does not hash"):
                world.payments.resolve_htlc("gw", held["id"], "settle", preimage="11" * 32)
        world.payments.resolve_htlc(
            "gw",
            held["id"],
            action,
            preimage=pre.hex(),
            failure_code=CODES["incorrect_or_unknown_payment_details"],
        )
        results[action] = await asyncio.wait_for(pay, 2)
        with pytest.raises(LnError):  # exactly once
            world.payments.resolve_htlc("gw", held["id"], "fail")
    assert results["settle"]["status"] == "succeeded" and results["settle"]["fee_msat"] == 0
    assert results["fail"]["failure"] == "incorrect_or_unknown_payment_details"
    assert results["forward"]["failure"] == "unknown_next_peer"
    # nobody answers: failed back as the incoming HTLC nears its expiry
    pay = asyncio.create_task(
        world.payments.pay("alice", federation_invoice(world, "gw", 1000, os.urandom(32))["bolt11"])
    )
    held = await asyncio.wait_for(queue.get(), 2)
    world.chain.mine(
        held["incoming_expiry"] - world.chain.height() - 2, world.chain.new_address("miner")
    )
    assert (await asyncio.wait_for(pay, 2))["failure"] == "temporary_node_failure"
    world.payments.unsubscribe_htlcs("gw", queue)
    # without an interceptor, unknown scids fail at once
    res = await world.payments.pay(
        "alice", federation_invoice(world, "gw", 1000, os.urandom(32))["bolt11"]
    )
    assert (res["failure"], res["failure_node"]) == ("unknown_next_peer", "gw")
    assert total_msat(world) == capacity_msat(world)


async def test_many_concurrent_interceptions_and_held_until_subscribed(world: World) -> None:
    line(world, ["alice", "gw"])
    world.net.set_hold_unknown_scids("gw", True)
    pres = [os.urandom(32) for _ in range(30)]
    pays = [asyncio.create_task(world.payments.pay("alice", federation_invoice(world, "gw", 10_000 + i, p)["bolt11"]))
            for i, p in enumerate(pres)]  # fmt: skip
    await asyncio.sleep(0.1)
    assert len(world.payments.held["gw"]) == 30  # held with nobody subscribed
    queue = world.payments.subscribe_htlcs("gw")
    by_hash = {hashlib.sha256(p).hexdigest(): p for p in pres}
    helds = [await asyncio.wait_for(queue.get(), 2) for _ in range(30)]
    for held in reversed(helds):
        world.payments.resolve_htlc(
            "gw", held["id"], "settle", preimage=by_hash[held["payment_hash"]].hex()
        )
    results = await asyncio.gather(*pays)
    assert all(r["status"] == "succeeded" for r in results)
    assert world.net.channels_of("gw")[0].balance_of("gw") == sum(10_000 + i for i in range(30))
    with pytest.raises(LnError, match="already"):
        world.payments.subscribe_htlcs("gw")


async def test_restart_keeps_balances_and_refunds_htlcs_in_flight(tmp_path) -> None:  # type: ignore[no-untyped-def]
    w = make_world(tmp_path / "w")
    line(w, ["alice", "bob", "gw"])
    inv = w.net.create_invoice("bob", 123_000)
    assert (await w.payments.pay("alice", inv["bolt11"]))["status"] == "succeeded"
    w.net.set_hold_unknown_scids("gw", True)
    pending = asyncio.create_task(
        w.payments.pay("alice", federation_invoice(w, "gw", 5000, os.urandom(32))["bolt11"])
    )
    await asyncio.sleep(0.05)
    assert w.db.all("SELECT * FROM htlcs WHERE state = 'pending'")
    balances = {n: w.net.node_balance_msat(n) for n in ("alice", "bob", "gw")}
    height = w.chain.height()
    w.db.close()  # the process "dies": nothing it does from here reaches the database
    running = list(w.payments._running.values())
    pending.cancel()
    for task in running:
        task.cancel()
    await asyncio.gather(pending, *running, return_exceptions=True)
    w2 = make_world(tmp_path / "w")
    assert w2.chain.height() == height
    assert not w2.db.all("SELECT * FROM htlcs WHERE state = 'pending'")
    after = {n: w2.net.node_balance_msat(n) for n in balances}
    assert after["alice"] == balances["alice"] + 5000 + 1000  # refunded: amount + bob's fee
    assert total_msat(w2) == capacity_msat(w2)
    assert w2.net.invoice("bob", inv["payment_hash"])["state"] == "settled"
    assert w2.net.nodes["alice"].pubkey == w.net.nodes["alice"].pubkey
    w2.db.close()


@pytest.mark.fuzz
@settings(
    max_examples=examples(2),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**32 - 1))
def test_money_is_conserved_over_a_thousand_random_payments(tmp_path_factory, seed: int) -> None:  # type: ignore[no-untyped-def]
    async def run() -> None:
        rnd = random.Random(seed)
        w = make_world(tmp_path_factory.mktemp("conserve"))
        names = [f"n{i}" for i in range(6)]
        for n in names:
            node(w, n, fund_sat=20_000_000)
        for i, a in enumerate(names):  # a ring plus random chords, random policies
            for b in {names[(i + 1) % 6], rnd.choice(names)} - {a}:
                pol = Policy(rnd.randint(0, 2000), rnd.randint(0, 5000), rnd.randint(10, 80))
                channel(
                    w,
                    a,
                    b,
                    rnd.randint(200_000, 2_000_000),
                    push_msat=rnd.randint(0, 100_000_000),
                    pa=pol,
                )
        cap = capacity_msat(w)
        start = {n: w.net.node_balance_msat(n) for n in names}
        outcomes = {"succeeded": 0, "failed": 0}
        for _ in range(1000):
            payer, payee = rnd.sample(names, 2)
            inv = w.net.create_invoice(payee, rnd.randint(1, 300_000_000))
            res = await w.payments.pay(payer, inv["bolt11"])
            outcomes[res["status"]] += 1
            assert total_msat(w) == cap
        assert sum(w.net.node_balance_msat(n) - start[n] for n in names) == 0
        assert all(c.bal_a_msat >= 0 and c.bal_b_msat >= 0 for c in w.net.channels.values())
        assert outcomes["succeeded"] > 100 and outcomes["failed"] > 0
        w.db.close()

    asyncio.run(run())
