"""The whole tree (supervisord.conf: regtest world for the federations' chain, two development
federations, router, API front) with its Lightning extension on a real lnd (btcd regtest,
`--requireinterceptor`) instead of the sim node: alice and bob are real lnd nodes too. Incoming
(alice pays a federation user's invoice: intercepted by lnd's HtlcInterceptor through our
virtual channel), outgoing (a user pays bob), a swap between the two federations (nothing
crosses Lightning), and an incoming payment whose HTLC lnd holds while the extension is killed
(kill -9): replayed to the restarted extension, settled once. Amounts exact.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devworld.fedlib.client import FederationClient
from gwcore.constants import GATEWAY_SERVICE, METHOD_ACTOR_INFO, METHOD_CONNECT_FED
from peers.harness.lnd import LndWorld

from .conftest import World, bus, ensure_liquidity, supervisor_rpc, wait_until

pytestmark = pytest.mark.timeout(600)
TREE_ENV: dict[str, str] = {}  # the extension's lnd, filled in before the tree starts
FEE_PPM = 10_000


@pytest.fixture(scope="module", autouse=True)
def lnd_tree_env(lnd_world: LndWorld) -> Iterator[None]:
    """The tree's extension on the session's real lnd (autouse: set before `tree` starts)."""
    gw = lnd_world.node("gateway")
    TREE_ENV.update(
        {
            "GATEWAY_LNRPC_BACKEND": "lnd",
            "GATEWAY_LNRPC_LND_HOST": gw.rpc_host,
            "GATEWAY_LNRPC_LND_TLS_CERT": str(gw.tls_cert),
            "GATEWAY_LNRPC_LND_MACAROON": str(gw.macaroon),
        }
    )
    try:
        yield
    finally:
        TREE_ENV.clear()


def _balance(tree: dict, fed: str) -> int:
    return int(bus(tree, fed, METHOD_ACTOR_INFO, {})["balance_msat"])


def _keep(into: dict, work) -> None:  # type: ignore[no-untyped-def]
    try:
        into.update(work())
    except BaseException as exc:
        into["error"] = repr(exc)


def test_dev_federations_on_a_real_lnd(tree: dict, lnd: LndWorld, tmp_path: Path) -> None:
    world = World(tree["regtest"])
    gw_node, alice, bob = (lnd.node(n) for n in ("gateway", "alice", "bob"))
    alpha, beta = tree["feds"]["alpha"], tree["feds"]["beta"]
    entries = {
        n: bus(tree, GATEWAY_SERVICE, METHOD_CONNECT_FED, {"invite_code": f["invite_code"]})
        for n, f in (("alpha", alpha), ("beta", beta))
    }
    for f in (alpha, beta):
        ensure_liquidity(tree, world, f["federation_id"])
    a_id, b_id = alpha["federation_id"], beta["federation_id"]

    # incoming: alice pays a user of alpha through our node's virtual channel
    user = FederationClient.join(tmp_path / "user" / "wallet.sqlite", alpha["invite_code"])
    before = _balance(tree, a_id)
    op, invoice = user.ln_receive(50_000, "coffee")
    paid = alice.cli("payinvoice", "--force", "--json", "--timeout=60s", invoice, timeout=90)
    assert paid["status"] == "SUCCEEDED", paid
    assert user.await_ln_receive(op, timeout=30) == 50_000
    assert _balance(tree, a_id) == before - 50_000

    # outgoing: the user pays bob's invoice through us
    bob_inv = bob.cli("addinvoice", "--amt_msat=20000")
    before, user_before = _balance(tree, a_id), user.balance()
    result = user.ln_pay(bob_inv["payment_request"])
    assert result["preimage"] == bob.cli("lookupinvoice", bob_inv["r_hash"])["r_preimage"]
    fee = 20_000 * FEE_PPM // 1_000_000
    assert user.balance() == user_before - 20_000 - fee
    assert bob.cli("lookupinvoice", bob_inv["r_hash"])["amt_paid_msat"] == "20000"
    assert _balance(tree, a_id) == before + 20_000 + fee

    # a swap: the alpha user pays a beta user; nothing crosses Lightning
    payee = FederationClient.join(tmp_path / "payee" / "wallet.sqlite", beta["invite_code"])
    rop, swap_invoice = payee.ln_receive(25_000, "swap")
    payments_before = len(gw_node.cli("listpayments")["payments"])
    b_before = _balance(tree, b_id)
    assert user.ln_pay(swap_invoice)["preimage"]
    assert payee.await_ln_receive(rop, timeout=30) == 25_000
    assert _balance(tree, b_id) == b_before - 25_000
    assert len(gw_node.cli("listpayments")["payments"]) == payments_before

    # incoming again, its HTLC held by lnd while the extension is killed (the actor stopped so
    # the HTLC cannot be settled first): lnd offers it again to the restarted extension
    rpc = supervisor_rpc(tree)
    actor = int(rpc.supervisor.getProcessInfo(entries["alpha"]["program"])["pid"])
    before = _balance(tree, a_id)
    op, invoice = user.ln_receive(40_000, "held")
    os.kill(actor, signal.SIGSTOP)
    outcome: dict = {}
    payer = threading.Thread(
        target=_keep,
        args=(
            outcome,
            lambda: alice.cli(
                "payinvoice", "--force", "--json", "--timeout=120s", invoice, timeout=180
            ),
        ),
    )
    payer.start()
    try:
        wait_until(
            lambda: any(c["pending_htlcs"] for c in gw_node.cli("listchannels")["channels"]),
            60,
            "the HTLC held by our lnd",
        )
        time.sleep(1)  # the router has asked the (stopped) actor
        old = int(rpc.supervisor.getProcessInfo("gateway-lnrpc-extension")["pid"])
        os.kill(old, signal.SIGKILL)
        wait_until(
            lambda: (
                int(rpc.supervisor.getProcessInfo("gateway-lnrpc-extension")["pid"]) not in (0, old)
            ),
            60,
            "the extension restarted",
        )
    finally:
        os.kill(actor, signal.SIGCONT)
    payer.join(180)
    assert outcome.get("status") == "SUCCEEDED", outcome
    assert user.await_ln_receive(op, timeout=30) == 40_000
    assert _balance(tree, a_id) == before - 40_000
    wait_until(
        lambda: not any(c["pending_htlcs"] for c in gw_node.cli("listchannels")["channels"]),
        30,
        "no HTLC left",
    )
