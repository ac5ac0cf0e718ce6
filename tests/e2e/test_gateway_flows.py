"""The whole tree under supervisord: regtest world, two dev federations, the Lightning extension
(sim), the router; federations connected at run time (each actor its own supervisor program);
an incoming payment (alice -> a federation user) and an outgoing one (a federation user -> bob)
through the gateway's real API front (gunicorn); swaps, internal payments, failures, leave
(refused while a payment is in flight), the admin API, gateway-cli and the dashboard; and a
stranger on the machine gets nothing from the extension the gateway calls over its unix socket
(tests/e2e/test_extension_mtls.py runs a tree whose extension is on TCP with mutual TLS).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt
import httpx
import pytest

from devworld.fedlib.client import FederationClient
from devworld.fedlib.tx import encode_invite
from gwcore.constants import (
    DUPLICATE_PAYMENT_REASON,
    GATEWAY_SERVICE,
    METHOD_ACTOR_ADDRESS,
    METHOD_ACTOR_DEPOSIT,
    METHOD_ACTOR_INFO,
    METHOD_ACTOR_SET_FEES,
    METHOD_CONNECT_FED,
    METHOD_CONNECT_STATUS,
    METHOD_LIST_FEDS,
    PROGRAM_LNRPC,
)
from gwcore.errors import GatewayError
from services.cli.client import ApiError, GatewayApi
from services.router.registry import virtual_scid
from tests.strangers import assert_strangers_get_nothing

from .conftest import (
    World,
    bus,
    ensure_lightning,
    ensure_liquidity,
    pay_via_api,
    supervisor_rpc,
    wait_until,
)


def test_connect_federations_and_pay_in_and_out(tree: dict, tmp_path: Path) -> None:
    world = World(tree["regtest"])
    ensure_lightning(world)

    alpha, beta = tree["feds"]["alpha"], tree["feds"]["beta"]
    a = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": alpha["invite_code"]})
    assert (
        a["federation_id"] == alpha["federation_id"]
        and a["scid"] == virtual_scid(alpha["federation_id"])
        and a["state"] == "running"
    )
    b = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": beta["invite_code"]})
    assert b["scid"] == virtual_scid(beta["federation_id"])
    assert (
        bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": alpha["invite_code"]})[
            "scid"
        ]
        == a["scid"]
    )  # twice: the same
    listed = bus(tree, GATEWAY_SERVICE, METHOD_LIST_FEDS, {})
    assert [f["scid"] for f in listed["federations"]] == [a["scid"], b["scid"]]
    # the interceptor the virtual channels need is attached a moment after the connect
    wait_until(
        lambda: bus(tree, GATEWAY_SERVICE, METHOD_LIST_FEDS, {})["extension_connected"],
        10,
        "the extension connected, intercepting",
    )
    # the router and the actors reach the extension on its socket; nobody else reaches it
    assert tree["env"]["GATEWAY_LNRPC_TLS_DIR"] == ""
    pid = int(supervisor_rpc(tree).supervisor.getProcessInfo(PROGRAM_LNRPC)["pid"])
    assert_strangers_get_nothing(pid, tree["run_dir"])
    # the router keeps each connect's progress (the dashboard follows it): done, or why not
    status = {"federation_id": alpha["federation_id"]}
    assert bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_STATUS, status)["step"] == "running"
    nowhere = encode_invite("ef" * 32, "http://127.0.0.1:9")
    with pytest.raises(GatewayError):
        bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": nowhere}, timeout=30)
    failed = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_STATUS, {"federation_id": "ef" * 32})
    assert failed["step"] == "failed" and "unreachable" in failed["error"]

    # each actor is its own supervisor program
    rpc = supervisor_rpc(tree)

    def both_running() -> bool:
        names = {p["name"]: p["statename"] for p in rpc.supervisor.getAllProcessInfo()}
        return names.get(a["program"]) == "RUNNING" and names.get(b["program"]) == "RUNNING"

    wait_until(both_running, 10, "both actors RUNNING under supervisord")

    # registered with the federation: our node, our scid, our fees
    gw_node = world.get("/v1/nodes/gateway")
    (reg,) = httpx.get(alpha["api_url"] + "/v1/ln/gateways").json()
    assert (
        reg["scid"] == virtual_scid(alpha["federation_id"])
        and reg["node_pubkey"] == gw_node["pubkey"]
        and reg["fees"]["proportional_millionths"] == 10_000
    )

    # the gateway's liquidity in alpha: a peg-in through its actor
    dep = bus(tree, alpha["federation_id"], METHOD_ACTOR_ADDRESS, {})
    world.send(dep["address"], "0.01")
    assert (
        bus(
            tree,
            alpha["federation_id"],
            METHOD_ACTOR_DEPOSIT,
            {"operation_id": dep["operation_id"]},
        )["credited_msat"]
        == 1_000_000_000
    )

    # incoming: alice (on Lightning) pays a federation user's invoice
    user = FederationClient.join(tmp_path / "user" / "wallet.sqlite", alpha["invite_code"])
    op, invoice = user.ln_receive(50_000, "coffee")
    paid = world.post("/v1/nodes/alice/pay", {"bolt11": invoice})
    assert paid["status"] == "succeeded", paid
    assert user.await_ln_receive(op, timeout=30) == 50_000
    gw_balance = bus(tree, alpha["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]
    assert gw_balance == 1_000_000_000 - 50_000

    # outgoing: the user pays bob's invoice through the gateway
    bob_inv = world.post("/v1/nodes/bob/invoices", {"amount_msat": 20_000})
    before = user.balance()
    result = user.ln_pay(bob_inv["bolt11"])
    assert result["preimage"] == bob_inv["preimage"], result
    fee = 0 + 20_000 * 10_000 // 1_000_000
    assert user.balance() == before - 20_000 - fee
    assert world.get("/v1/nodes/bob")["lightning_balance_msat"] == 20_000
    assert (
        bus(tree, alpha["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]
        == gw_balance + 20_000 + fee
    )
    # asking again for the same contract never pays twice: the stored preimage comes back
    again = pay_via_api(
        tree, {"federation_id": alpha["federation_id"], "contract_id": result["contract_id"]}
    )
    assert again == (200, bob_inv["preimage"])
    log = bus(tree, alpha["federation_id"], "actor.payment_log", {"limit": 10})["payments"]
    out = next(
        p
        for p in log
        if p["direction"] == "outgoing" and p["payment_hash"] == bob_inv["payment_hash"]
    )
    assert (
        out["status"] == "settled"
        and out["amount_msat"] == 20_000
        and out["fee_earned_msat"] == fee
    )
    assert any(
        p["direction"] == "incoming" and p["status"] == "settled" and p["amount_msat"] == 50_000
        for p in log
    )
    assert world.get("/v1/nodes/bob")["lightning_balance_msat"] == 20_000
    # the user pays bob's invoice again (a new contract, as a second payer of a shared invoice
    # would): our node would answer the stored preimage without paying anything, so the gateway
    # refuses the contract and cancels it; the user is refunded in full, bob paid once
    fed_id = alpha["federation_id"]
    gw_before, before = bus(tree, fed_id, METHOD_ACTOR_INFO, {})["balance_msat"], user.balance()
    second = user.ln_pay(bob_inv["bolt11"])
    assert second["preimage"] is None and "502" in second["error"], second
    assert second["refunded_msat"] == 20_000 + fee and user.balance() == before
    assert world.get("/v1/nodes/bob")["lightning_balance_msat"] == 20_000
    assert bus(tree, fed_id, METHOD_ACTOR_INFO, {})["balance_msat"] == gw_before
    log = bus(tree, fed_id, "actor.payment_log", {"limit": 10})["payments"]
    refused = next(p for p in log if p["id"] == second["contract_id"])
    assert refused["status"] == "failed" and refused["error"] == DUPLICATE_PAYMENT_REASON
    # and /metrics counts them per federation and direction, from the actor's database
    for direction, volume in (("outgoing", 20_000), ("incoming", 50_000)):
        labels = {"federation_id": fed_id, "direction": direction}
        assert _metric(tree, "gateway_payments_total", status="settled", **labels) == 1
        assert _metric(tree, "gateway_payment_volume_msat_total", **labels) == volume
        assert _metric(tree, "gateway_payment_latency_seconds_count", **labels) == 1
    labels = {"federation_id": fed_id, "direction": "outgoing"}
    assert _metric(tree, "gateway_payments_total", status="failed", **labels) == 1
    assert (
        _metric(
            tree,
            "gateway_fees_earned_msat_total",
            federation_id=fed_id,
            direction="outgoing",
        )
        == fee
    )


def test_swap_between_federations_fees_and_withdraw(tree: dict, tmp_path: Path) -> None:
    import os as _os

    """A user of alpha pays a user of beta: no Lightning payment, the gateway swaps e-cash."""
    world = World(tree["regtest"])
    ensure_lightning(world)
    alpha, beta = tree["feds"]["alpha"], tree["feds"]["beta"]
    for f in (alpha, beta):
        bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": f["invite_code"]})
    dep = bus(tree, beta["federation_id"], METHOD_ACTOR_ADDRESS, {})
    world.send(dep["address"], "0.01")
    bus(tree, beta["federation_id"], METHOD_ACTOR_DEPOSIT, {"operation_id": dep["operation_id"]})
    # fees are per federation and effective at once (re-registered)
    bus(
        tree,
        alpha["federation_id"],
        METHOD_ACTOR_SET_FEES,
        {"base_msat": 1000, "proportional_millionths": 2000},
    )
    wait_until(
        lambda: (
            httpx.get(alpha["api_url"] + "/v1/ln/gateways").json()[0]["fees"]["base_msat"] == 1000
        ),
        10,
        "re-registration",
    )

    payer = FederationClient.join(tmp_path / "payer" / "wallet.sqlite", alpha["invite_code"])
    op, address = payer.deposit_address()
    world.send(address, "0.001")
    payer.await_deposit(op, timeout=20)
    payee = FederationClient.join(tmp_path / "payee" / "wallet.sqlite", beta["invite_code"])
    rop, invoice = payee.ln_receive(30_000, "swap")
    bob_before = world.get("/v1/nodes/bob")["lightning_balance_msat"]
    beta_gw_before = bus(tree, beta["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]
    before = payer.balance()
    result = payer.ln_pay(invoice)
    assert result["preimage"], result
    assert payee.await_ln_receive(rop, timeout=30) == 30_000
    fee = 1000 + 30_000 * 2000 // 1_000_000
    assert result["fee_msat"] == fee and payer.balance() == before - 30_000 - fee
    assert (
        bus(tree, beta["federation_id"], METHOD_ACTOR_INFO, {})["balance_msat"]
        == beta_gw_before - 30_000
    )
    assert (
        world.get("/v1/nodes/bob")["lightning_balance_msat"] == bob_before
    )  # nothing crossed Lightning

    # the operator withdraws from beta
    address = httpx.post(
        tree["regtest"]["rpc_url"] + "/wallet/miner",
        json={"method": "getnewaddress", "params": []},
        auth=(tree["regtest"]["rpc_user"], tree["regtest"]["rpc_password"]),
    ).json()["result"]
    # through the HTTP API with the client library gateway-cli and the dashboard's tests use
    api = GatewayApi(tree["api_url"], tree["password"])
    quote = api.withdraw(beta["federation_id"], 100_000, address, preview=True)
    held = api.balance(beta["federation_id"])["balance_msat"]
    assert quote["preview"] and quote["total_sat"] == 100_000 + quote["fee_sat"]
    assert quote["balance_msat"] == held  # a preview sends nothing
    key = _os.urandom(12).hex()
    out = api.withdraw(beta["federation_id"], 100_000, address, idempotency_key=key)
    assert out["txid"] and out["fee_sat"] == quote["fee_sat"] > 0
    again = api.withdraw(beta["federation_id"], 100_000, address, idempotency_key=key)
    assert again == out  # the same request again: the first answer, nothing sent twice
    assert (
        api.balance(beta["federation_id"])["balance_msat"]
        == held - (100_000 + out["fee_sat"]) * 1000
    )

    # backup of the gateway's e-cash in beta, and a restore that finds everything already ours
    backup = api.backup(beta["federation_id"])
    assert backup["amount_msat"] == api.balance(beta["federation_id"])["balance_msat"]
    assert api.restore(beta["federation_id"])["restored_msat"] == 0


def test_internal_payment_missing_offer_expired_contract_and_leave(
    tree: dict, tmp_path: Path
) -> None:
    import os as _os

    from coincurve import PrivateKey

    from devworld.fedlib import crypto
    from tests.regtest.helpers import federation_invoice

    world = World(tree["regtest"])
    ensure_lightning(world)
    alpha = tree["feds"]["alpha"]
    bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": alpha["invite_code"]})
    ensure_liquidity(tree, world, alpha["federation_id"])
    a = FederationClient.join(tmp_path / "a" / "wallet.sqlite", alpha["invite_code"])
    op, address = a.deposit_address()
    world.send(address, "0.001")
    a.await_deposit(op, timeout=20)
    b = FederationClient.join(tmp_path / "b" / "wallet.sqlite", alpha["invite_code"])

    # a pays b, both in alpha: the gateway swaps within the federation
    rop, invoice = b.ln_receive(12_000, "internal")
    result = a.ln_pay(invoice)
    assert result["preimage"], result
    assert b.await_ln_receive(rop, timeout=30) == 12_000

    # an HTLC for our scid whose payment hash has no offer: failed back
    gw = world.get("/v1/nodes/gateway")
    stray = world.post(
        "/v1/nodes/alice/pay",
        {
            "bolt11": federation_invoice(
                gw["pubkey"], 5_000, _os.urandom(32), scid=virtual_scid(alpha["federation_id"])
            )
        },
    )
    assert (
        stray["status"] == "failed" and stray["failure"] == "incorrect_or_unknown_payment_details"
    )

    # a contract whose timelock is too close is refused (and the user can refund after it)
    reg = httpx.get(alpha["api_url"] + "/v1/ln/gateways").json()[0]
    bob_inv = world.post("/v1/nodes/bob/invoices", {"amount_msat": 1_000})
    bob_balance = world.get("/v1/nodes/bob")["lightning_balance_msat"]
    user_key = PrivateKey()
    wop = a._new_op("test", {})
    with a.lock:
        notes = a._select(wop, 20_000)
    inputs, signers = a._note_inputs(notes)
    out = {
        "kind": "outgoing_contract",
        "amount": 20_000,
        "payment_hash": bob_inv["payment_hash"],
        "gateway_key": reg["gateway_key"],
        "user_key": crypto.xonly(user_key),
        "timelock": a.api.block_height() + 5,
        "invoice": bob_inv["bolt11"],
    }
    change = a._change_outputs(sum(n["amount"] for n in notes) - 20_000, len(inputs), 1)
    cid = a._run(wop, inputs, signers, [out], change)[0]["contract_id"]
    status, reply = pay_via_api(tree, {"federation_id": alpha["federation_id"], "contract_id": cid})
    assert status == 400 and reply == {
        "error": "invalid input",
        "code": "invalid_input",
    }  # public: redacted
    assert (
        world.get("/v1/nodes/bob")["lightning_balance_msat"] == bob_balance
    )  # nothing was paid for it

    # leave is refused while a payment is in flight: a user pays a hold invoice of bob's
    api = GatewayApi(tree["api_url"], tree["password"])
    hold_preimage = _os.urandom(32)
    hold_hash = hashlib.sha256(hold_preimage).hexdigest()
    hold = world.post("/v1/nodes/bob/invoices", {"amount_msat": 15_000, "payment_hash": hold_hash})
    with ThreadPoolExecutor(1) as pool:
        paying = pool.submit(a.ln_pay, hold["bolt11"])

        def in_flight() -> int:
            feds = {f["federation_id"]: f for f in api.info()["federations"]}
            return feds[alpha["federation_id"]].get("in_flight", 0)

        wait_until(lambda: in_flight() >= 1, 30, "the payment in flight")
        with pytest.raises(ApiError) as refused:
            api.leave_fed(alpha["federation_id"])
        assert refused.value.status == 409 and refused.value.code == "payments_in_flight"
        assert "1 outgoing payment" in refused.value.message, refused.value.message
        world.post(f"/v1/nodes/bob/invoices/{hold_hash}/settle", {"preimage": hold_preimage.hex()})
        assert paying.result(60)["preimage"] == hold_preimage.hex()
    wait_until(lambda: in_flight() == 0, 30, "the payment finished")

    # leave: done when idle; the scid is never reused
    left = api.leave_fed(alpha["federation_id"])
    assert left["left"] == alpha["federation_id"]
    feds = bus(tree, GATEWAY_SERVICE, METHOD_LIST_FEDS, {})["federations"]
    assert alpha["federation_id"] not in [f["federation_id"] for f in feds]
    again = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": alpha["invite_code"]})
    assert again["scid"] == virtual_scid(alpha["federation_id"])  # same federation, same scid
    assert again["state"] == "running"


def test_connecting_a_third_federation_interrupts_nobody(tree: dict, tmp_path: Path) -> None:
    import subprocess
    import sys
    import threading

    world = World(tree["regtest"])
    ensure_lightning(world)
    alpha, beta = tree["feds"]["alpha"], tree["feds"]["beta"]
    entries = [
        bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": f["invite_code"]})
        for f in (alpha, beta)
    ]
    ensure_liquidity(tree, world, alpha["federation_id"])
    rpc = supervisor_rpc(tree)
    pids = {e["program"]: rpc.supervisor.getProcessInfo(e["program"])["pid"] for e in entries}
    host = tree["regtest"]["rpc_url"].removeprefix("http://")
    chain = f"http://{tree['regtest']['rpc_user']}:{tree['regtest']['rpc_password']}@{host}"
    gamma_dir = tree["data_dir"] / "federations" / "gamma"
    gamma = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "guardiand"),
            "--data-dir",
            str(gamma_dir),
            "--name",
            "gamma",
            "--chain-rpc",
            chain,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        info = wait_until(
            lambda: json.loads((gamma_dir / "federation.json").read_text()), 30, "gamma"
        )
        wait_until(
            lambda: httpx.get(info["api_url"] + "/health", timeout=2).status_code == 200,
            30,
            "gamma API",
        )
        user = FederationClient.join(tmp_path / "u" / "wallet.sqlite", alpha["invite_code"])
        results: list[str] = []
        stop = threading.Event()

        def pay_loop() -> None:  # payments into alpha while gamma is connected
            while not stop.is_set():
                _, invoice = user.ln_receive(1_000 + len(results), "flow")
                results.append(world.post("/v1/nodes/alice/pay", {"bolt11": invoice})["status"])

        t = threading.Thread(target=pay_loop)
        t.start()
        time.sleep(0.5)
        g = bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": info["invite_code"]})
        time.sleep(0.5)
        stop.set()
        t.join(60)
        assert g["state"] == "running" and g["scid"] == virtual_scid(g["federation_id"])
        assert results and all(r == "succeeded" for r in results), results
        assert {
            p: rpc.supervisor.getProcessInfo(p)["pid"] for p in pids
        } == pids  # nobody restarted
    finally:
        os.killpg(gamma.pid, signal.SIGTERM)
        gamma.wait(30)


def test_admin_api_through_gunicorn(tree: dict) -> None:
    world = World(tree["regtest"])
    alpha = tree["feds"]["alpha"]
    api, auth = tree["api_url"], {"Authorization": f"Bearer {tree['password']}"}
    assert httpx.post(api + "/info").status_code == 401
    r = httpx.post(
        api + "/connect-fed", json={"invite_code": alpha["invite_code"]}, headers=auth, timeout=120
    )
    assert (
        r.status_code == 200
        and r.json()["scid"] == virtual_scid(alpha["federation_id"])
        and r.headers["X-Request-Id"]
    )

    def states() -> dict:
        info = httpx.post(api + "/info", headers=auth, timeout=30).json()
        return {p["name"]: p["state"] for p in info["programs"]}

    # supervisord says RUNNING once a program has lived `startsecs`, which may be just after now
    wait_until(
        lambda: states()["gateway-router"] == states()["gateway-api"] == "RUNNING",
        10,
        "router and api RUNNING in /info",
    )
    info = httpx.post(api + "/info", headers=auth, timeout=30).json()
    gw_node = world.get("/v1/nodes/gateway")
    assert info["node"]["pub_key"] == gw_node["pubkey"] and info["node"]["synced"]
    ln = httpx.post(api + "/lightning", headers=auth, timeout=30).json()
    assert ln["balances"]["onchain_balance_sat"] == gw_node["onchain_balance_sat"]
    assert ln["balances"]["lightning_balance_msat"] == gw_node["lightning_balance_msat"]
    assert {c["short_channel_id"] for c in ln["balances"]["channels"]} == {
        c["scid_int"] for c in gw_node["channels"]
    }
    assert any(f["federation_id"] == alpha["federation_id"] for f in info["federations"])
    assert httpx.post(api + "/balances", headers=auth, timeout=30).json()["total_msat"] >= 0
    fees = httpx.post(
        api + "/set_fees",
        json={
            "federation_id": alpha["federation_id"],
            "base_msat": 0,
            "proportional_millionths": 10_000,
        },
        headers=auth,
        timeout=30,
    )
    assert fees.status_code == 200
    assert (
        httpx.post(
            api + "/balance", json={"federation_id": "00" * 32}, headers=auth, timeout=30
        ).status_code
        == 404
    )
    assert (
        httpx.post(
            api + "/connect-fed", json={"invite_code": "fed1broken"}, headers=auth, timeout=30
        ).status_code
        == 400
    )
    # deposits named by txid, and by raw transaction (the 2023 form)
    fed = {"federation_id": alpha["federation_id"]}

    def post(path: str, body: dict) -> httpx.Response:
        return httpx.post(api + path, json=body, headers=auth, timeout=90)

    address = post("/address", fed).json()["address"]
    txid = world.send(address, "0.0005", mine=False)
    pending = post("/deposit", {**fed, "txid": txid, "timeout_s": 0})
    # in the mempool: seen (as bitcoind's listunspent shows it), not yet claimable
    assert pending.status_code == 409 and pending.json()["code"] == "deposit_pending", pending.text
    world.post("/v1/mine", {"blocks": 1})
    by_txid = post("/deposit", {**fed, "txid": txid}).json()
    assert by_txid["credited_msat"] == 50_000_000 and not by_txid["already_credited"]
    again = post("/deposit", {**fed, "txid": txid}).json()
    assert again["already_credited"] and again["balance_msat"] == by_txid["balance_msat"]
    address = post("/address", fed).json()["address"]
    txid = world.send(address, "0.0007")
    raw = world.raw_transaction(txid)
    by_raw = post("/deposit", {**fed, "transaction": raw, "txout_proof": "00"}).json()
    assert by_raw["txid"] == txid and by_raw["credited_msat"] == 70_000_000
    other = post("/deposit", {**fed, "transaction": world.raw_transaction(by_txid["txid"])[:-2]})
    assert other.status_code == 400
    health = httpx.get(api + "/health", timeout=10)
    assert health.json()["router"] is True and health.json()["extension"] is True
    # /metrics: the front's counters summed over gunicorn's workers, payments from the actors
    health_before = _metric(tree, "gateway_http_requests_total", route="/health")
    for _ in range(12):
        httpx.get(api + "/health", timeout=10)
    for _ in range(4):  # whichever worker answers, it reports all workers' requests
        assert _metric(tree, "gateway_http_requests_total", route="/health") >= health_before + 12
    balance = post("/balance", fed).json()["balance_msat"]
    assert (
        _metric(tree, "gateway_ecash_balance_msat", federation_id=fed["federation_id"]) == balance
    )
    assert _metric(tree, "gateway_federation_up", federation_id=fed["federation_id"]) == 1


def _metric(tree: dict, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(
        tree["api_url"] + "/metrics",
        timeout=10,
        headers={"Authorization": f"Bearer {tree['password']}"},
    ).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    )


def test_gateway_cli(tree: dict) -> None:
    import subprocess
    import sys

    cli = str(Path(sys.executable).parent / "gateway-cli")
    alpha = tree["feds"]["alpha"]
    env = {
        **os.environ,
        "GATEWAY_RPCPASSWORD": tree["password"],
        "GATEWAY_ADDRESS": tree["api_url"],
    }

    def run(*args: str, **kw: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [cli, *args],
            capture_output=True,
            text=True,
            timeout=150,
            env={**env, **kw},
            stdin=subprocess.DEVNULL,
        )

    ok = run("connect-fed", alpha["invite_code"])
    assert ok.returncode == 0 and json.loads(ok.stdout)["scid"] == virtual_scid(
        alpha["federation_id"]
    )
    assert json.loads(run("version-hash").stdout)["version_hash"]
    assert json.loads(run("lightning").stdout)["node"]["alias"]
    assert alpha["federation_id"] in json.loads(run("balances").stdout)["balances_msat"]
    assert (
        json.loads(run("balance", "--federation-id", alpha["federation_id"]).stdout)["balance_msat"]
        >= 0
    )
    assert json.loads(run("set-fees", "--base-msat", "0", "--ppm", "10000").stdout)
    # a deposit through the CLI: unconfirmed -> exit 6 (ask again later), then credited
    world, fed_opt = World(tree["regtest"]), ("--federation-id", alpha["federation_id"])
    address = json.loads(run("address", *fed_opt).stdout)["address"]
    txid = world.send(address, "0.0003", mine=False)
    early = run("deposit", *fed_opt, "--transaction", world.raw_transaction(txid), "--timeout", "0")
    assert early.returncode == 6 and early.stderr.startswith("error: deposit_pending"), early.stderr
    world.post("/v1/mine", {"blocks": 1})
    done = run("deposit", *fed_opt, "--txid", txid)
    assert done.returncode == 0 and json.loads(done.stdout)["credited_msat"] == 30_000_000
    # e-cash out and back in (the development federation's notes): once, however often asked
    spend = run("spend-ecash", *fed_opt, "--amount-msat", "10000", "--idempotency-key", "cli-0001")
    assert spend.returncode == 0, spend.stderr
    notes = json.loads(spend.stdout)["notes"]
    again = run("spend-ecash", *fed_opt, "--amount-msat", "10000", "--idempotency-key", "cli-0001")
    assert json.loads(again.stdout)["notes"] == notes  # the same notes, spent once
    before = json.loads(run("balance", *fed_opt).stdout)["balance_msat"]
    got = run("receive-ecash", notes)
    assert got.returncode == 0, got.stderr
    credited = json.loads(got.stdout)["amount_msat"]
    assert 0 < credited <= 10_000
    assert json.loads(run("balance", *fed_opt).stdout)["balance_msat"] == before + credited
    assert json.loads(run("receive-ecash", notes).stdout)["amount_msat"] == credited
    assert json.loads(run("balance", *fed_opt).stdout)["balance_msat"] == before + credited
    bad = run("receive-ecash", "fednotes-broken")
    assert bad.returncode != 0 and "invalid notes" in bad.stderr, bad.stderr
    missing = run("balance", "--federation-id", "00" * 32)
    assert missing.returncode == 5 and missing.stderr.startswith("error: not_found")
    wrong = run("info", GATEWAY_RPCPASSWORD="nope")
    assert wrong.returncode == 4 and "unauthorized" in wrong.stderr
    assert run("info", GATEWAY_ADDRESS="http://127.0.0.1:9").returncode == 3
    bad = run(
        "withdraw", "--federation-id", alpha["federation_id"], "--amount", "lots", "--address", "x"
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    settled_in = json.loads(run("payment-log", "--kind", "incoming", "--status", "settled").stdout)
    assert all(
        p["direction"] == "incoming" and p["status"] == "settled" for p in settled_in["payments"]
    )
    log = json.loads(run("payment-log", "--limit", "100").stdout)["payments"]
    assert all(
        p["direction"] in ("incoming", "outgoing", "swap", "withdrawal")
        and p["status"] in ("settled", "failed", "pending")
        for p in log
    )
    summary = json.loads(run("payment-summary").stdout)
    assert (
        set(summary["directions"]) == {"incoming", "outgoing", "swap", "withdrawal"}
        and summary["fees_earned_msat"] >= 0
    )
    table = run("--table", "balances")
    assert (
        table.returncode == 0
        and "total_msat" in table.stdout
        and " sat" in table.stdout  # amounts for people: sat with the msat remainder
        and not table.stdout.lstrip().startswith("{")
    )
    assert (
        "payment-summary" in run("help").stdout
        and "--federation-id" in run("help", "balance").stdout
    )
    h = run("create-password-hash", "pw")
    assert h.returncode == 0 and json.loads(h.stdout)["password_hash"].startswith("$2")
    assert "visible to other users" in h.stderr  # a password as an argument is warned about
    piped = subprocess.run(
        [cli, "create-password-hash"], input="from a pipe\n", capture_output=True, text=True
    )
    assert piped.returncode == 0 and bcrypt.checkpw(
        b"from a pipe", json.loads(piped.stdout)["password_hash"].encode()
    )
    flag = run("--rpcpassword", tree["password"], "config", GATEWAY_RPCPASSWORD="")
    assert flag.returncode == 0 and "visible to other users" in flag.stderr
    assert json.loads(flag.stdout)["worker_timeout_s"] > json.loads(flag.stdout)["pay_timeout_s"]
    # paging the log back with --before
    if len(log) >= 2:
        older = json.loads(run("payment-log", "--before", str(log[0]["created"])).stdout)
        assert [p["id"] for p in older["payments"]][:1] == [log[1]["id"]]
    # the operator's money through the CLI: withdraw (quote, then once), backup, restore, keys
    miner = httpx.post(
        world.rpc_url + "/wallet/miner",
        json={"method": "getnewaddress", "params": []},
        auth=world.rpc_auth,
    ).json()["result"]
    quote = json.loads(
        run("withdraw", *fed_opt, "--amount", "10000", "--address", miner, "--preview").stdout
    )
    assert quote["preview"] and quote["amount_sat"] == 10_000
    key = ("--idempotency-key", "cli-withdraw-" + os.urandom(4).hex())
    sent = json.loads(
        run("withdraw", *fed_opt, "--amount", "10000", "--address", miner, *key).stdout
    )
    again = json.loads(
        run("withdraw", *fed_opt, "--amount", "10000", "--address", miner, *key).stdout
    )
    assert sent["txid"] and sent["status"] == "sent" and again == sent  # once
    shown = json.loads(run("payment-log", "--kind", "withdrawal").stdout)["payments"]
    assert {"id": sent["operation_id"], "status": "settled", "txid": sent["txid"]}.items() <= next(
        p for p in shown if p["id"] == sent["operation_id"]
    ).items()
    backup = json.loads(run("backup", *fed_opt).stdout)
    assert backup["amount_msat"] > 0
    assert json.loads(run("restore", *fed_opt).stdout)["restored_msat"] == 0  # all still ours
    keys = json.loads(run("recovery-keys").stdout)["federations"]
    assert alpha["federation_id"] in {k["federation_id"] for k in keys}
    assert all(len(k["recovery_key"]) == 64 for k in keys)
    left = run("leave-fed", *fed_opt)
    assert left.returncode == 0 and json.loads(left.stdout)["left"] == alpha["federation_id"]
    assert run("balance", *fed_opt).returncode == 5  # not served any more
    assert run("connect-fed", alpha["invite_code"]).returncode == 0  # and back, same scid


def test_dashboard_through_gunicorn(tree: dict) -> None:
    alpha = tree["feds"]["alpha"]
    auth = {"Authorization": f"Bearer {tree['password']}"}
    httpx.post(
        tree["api_url"] + "/connect-fed",
        json={"invite_code": alpha["invite_code"]},
        headers=auth,
        timeout=120,
    )
    with httpx.Client(base_url=tree["api_url"], timeout=30) as ui:
        assert ui.get("/ui/").status_code == 303
        token = re.search(r'name="login_token" value="(\w+)"', ui.get("/ui/login").text)[1]
        r = ui.post("/ui/login", data={"password": tree["password"], "login_token": token})
        assert r.status_code == 303 and "mintgate_session" in ui.cookies
        csrf = re.search(r'name="csrf" value="(\w+)"', ui.get("/ui/").text)[1]
        copied = dict(ui.cookies)
        page = ui.get("/ui/")
        assert (
            page.status_code == 200 and "alpha" in page.text and alpha["federation_id"] in page.text
        )
        # process health from supervisor: the gateway's programs, not the world's beside them
        assert "gateway-router" in page.text and "regtestd" not in page.text
        assert ui.get(f"/ui/federations/{alpha['federation_id']}").status_code == 200
        assert ui.get("/ui/payments").status_code == 200
        assert ui.get("/ui/static/vendor/pico-2.1.1.min.css").status_code == 200
        # logging out on one worker ends the session on every worker (a copied cookie is dead)
        assert ui.post("/ui/logout", data={"csrf": csrf}).status_code == 303
        for _ in range(4):  # gunicorn spreads these over its workers
            assert httpx.get(tree["api_url"] + "/ui/", cookies=copied).status_code == 303
