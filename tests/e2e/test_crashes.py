"""Crashes in the middle of payments: the actor killed after paying over Lightning but before
claiming, the router killed and the extension restarted while HTLCs wait. Each payment still
ends settled, nothing is paid twice, and balances reconcile to the msat."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx

from devworld.fedlib.client import FederationClient
from gwcore.constants import (
    GATEWAY_SERVICE,
    METHOD_ACTOR_ADDRESS,
    METHOD_ACTOR_DEPOSIT,
    METHOD_ACTOR_INFO,
    METHOD_CONNECT_FED,
)

from .conftest import World, bus, ensure_liquidity, supervisor_rpc, wait_until

TREE_ENV = {"GATEWAY_ACTOR_CRASH_AT": "paid"}  # the actors of this tree die once after paying


def _setup(tree: dict, tmp_path: Path) -> tuple[World, dict, FederationClient, dict]:
    world = World(tree["regtest"])
    for n in ("alice", "bob"):
        world.post("/v1/nodes", {"name": n})
    world.post("/v1/nodes/alice/fund", {"amount_sat": 5_000_000})
    world.post("/v1/nodes/gateway/fund", {"amount_sat": 5_000_000})
    world.post("/v1/channels", {"from": "alice", "to": "gateway", "capacity_sat": 2_000_000})
    world.post("/v1/channels", {"from": "gateway", "to": "bob", "capacity_sat": 2_000_000})
    alpha = tree["feds"]["alpha"]
    entry = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": alpha["invite_code"]})
    dep = bus(tree, alpha["federation_id"], METHOD_ACTOR_ADDRESS, {})
    world.send(dep["address"], "0.01")
    bus(tree, alpha["federation_id"], METHOD_ACTOR_DEPOSIT, {"operation_id": dep["operation_id"]})
    user = FederationClient.join(tmp_path / "user" / "wallet.sqlite", alpha["invite_code"])
    op, address = user.deposit_address()
    world.send(address, "0.001")
    user.await_deposit(op, timeout=20)
    return world, alpha, user, entry


def test_crashes_lose_nothing_and_pay_nothing_twice(tree: dict, tmp_path: Path) -> None:
    world, alpha, user, entry = _setup(tree, tmp_path)
    rpc = supervisor_rpc(tree)
    actor_pid = rpc.supervisor.getProcessInfo(entry["program"])["pid"]
    gw_before = bus(tree, alpha["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]

    # 1. the actor dies after paying bob over Lightning, before claiming the user's contract
    inv = world.post("/v1/nodes/bob/invoices", {"amount_msat": 40_000})
    before = user.balance()
    result = user.ln_pay(inv["bolt11"])
    assert result["preimage"] == inv["preimage"], result
    assert (
        rpc.supervisor.getProcessInfo(entry["program"])["pid"] != actor_pid
    )  # it did die and come back
    assert (tree["data_dir"] / "crashed-at-paid").exists()
    fee = 40_000 * 10_000 // 1_000_000
    assert user.balance() == before - 40_000 - fee
    assert world.get("/v1/nodes/bob")["lightning_balance_msat"] == 40_000  # paid once
    wait_until(
        lambda: (
            bus(tree, alpha["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]
            == gw_before + 40_000 + fee
        ),
        30,
        "the restarted actor's claim",
    )

    # 2. the router is killed; an HTLC for the federation arrives while it is down
    router_pid = rpc.supervisor.getProcessInfo("gateway-router")["pid"]
    os.kill(router_pid, signal.SIGKILL)
    op, invoice = user.ln_receive(25_000, "while the router is down")
    paid: dict = {}
    t = threading.Thread(
        target=lambda: paid.update(world.post("/v1/nodes/alice/pay", {"bolt11": invoice}))
    )
    t.start()
    t.join(60)
    assert paid.get("status") == "succeeded", paid
    assert user.await_ln_receive(op, timeout=30) == 25_000

    # 3. the extension restarts mid-stream; another HTLC waits for it
    ext_pid = rpc.supervisor.getProcessInfo("gateway-lnrpc-extension")["pid"]
    os.kill(ext_pid, signal.SIGKILL)
    op2, invoice2 = user.ln_receive(15_000, "while the extension restarts")
    paid2 = world.post("/v1/nodes/alice/pay", {"bolt11": invoice2})
    assert paid2["status"] == "succeeded", paid2
    assert user.await_ln_receive(op2, timeout=30) == 15_000

    # reconciliation: the federation's books and the gateway's
    audit = httpx.get(alpha["api_url"] + "/v1/audit").json()
    assert audit["pegin_msat"] - audit["pegout_msat"] - audit["fees_msat"] == (
        audit["notes_outstanding_msat"] + audit["outgoing_open_msat"] + audit["incoming_open_msat"]
    )
    assert audit["outgoing_open_msat"] == 0 and audit["incoming_open_msat"] == 0
    gw_after = bus(tree, alpha["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]
    assert gw_after == gw_before + 40_000 + fee - 25_000 - 15_000


def test_lost_actor_data_recovered_with_the_recovery_key(tree: dict) -> None:
    """The worst case for an operator: an actor's database is gone. The e-cash it backed up
    comes back into the new actor with the recovery key the operator kept."""
    import shutil

    alpha = tree["feds"]["alpha"]
    api, auth = tree["api_url"], {"Authorization": f"Bearer {tree['password']}"}

    def post(path: str, body: dict | None = None) -> dict:
        r = httpx.post(api + path, json=body or {}, headers=auth, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()

    fed = {"federation_id": alpha["federation_id"]}
    entry = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": alpha["invite_code"]})
    ensure_liquidity(tree, World(tree["regtest"]), alpha["federation_id"])
    balance = post("/balance", fed)["balance_msat"]
    assert balance > 0
    assert post("/backup", fed)["amount_msat"] == balance
    (keys,) = [
        k
        for k in post("/recovery_keys")["federations"]
        if k["federation_id"] == fed["federation_id"]
    ]
    assert len(keys["recovery_key"]) == 64
    from coincurve import PrivateKey

    from devworld.fedlib import crypto

    signing = bus(tree, alpha["federation_id"], METHOD_ACTOR_INFO, {})["gateway_key"]
    assert crypto.xonly(PrivateKey(bytes.fromhex(keys["recovery_key"]))) != signing  # not it

    rpc = supervisor_rpc(tree)
    rpc.supervisor.stopProcess(entry["program"])
    shutil.rmtree(tree["data_dir"] / "actors" / alpha["federation_id"][:16])  # the disk is lost
    rpc.supervisor.startProcess(entry["program"])
    wait_until(
        lambda: bus(tree, alpha["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"] == 0,
        30,
        "the new, empty actor",
    )
    bad = httpx.post(api + "/restore", json={**fed, "recovery_key": "zz"}, headers=auth)
    assert bad.status_code == 400
    restored = post("/restore", {**fed, "recovery_key": keys["recovery_key"]})
    assert restored["restored_msat"] == balance and restored["balance_msat"] == balance
    again = post("/restore", {**fed, "recovery_key": keys["recovery_key"]})
    assert again["restored_msat"] == 0 and again["balance_msat"] == balance  # never twice
