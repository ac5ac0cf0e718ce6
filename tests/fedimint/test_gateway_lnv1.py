"""The whole gateway (the real process tree under supervisord) serving a real fedimintd
federation with the v1 modules (ln, lnv2, meta, mint, wallet), with real fedimint-cli 0.13.0
users: connected by invite, pegging in and out through wallet v1 (its chain source: the real
bitcoind), v1 e-cash both ways, LNv1 payments out (`ln-pay`) and in (`ln-invoice`) through our
node, exact amounts on every side."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import tree  # noqa: F401 - the fixture

from .conftest import User
from .lnv1_world import (  # noqa: F401 - tree_env, v1, v1_user: the module's fixtures
    PEG_IN_FEE_MSAT,
    PEG_IN_SAT,
    V1World,
    balance_of,
    credit_for,
    lightning_msat,
    tree_env,
    v1,
    v1_gateway_id,
    v1_user,
)

pytestmark = pytest.mark.timeout(900)
NOTE_FEES = 100 * 40 + 512  # a bound on a fedimint-cli user's note fees in one payment


def test_connect_and_peg_in_through_wallet_v1(v1: V1World) -> None:  # noqa: F811
    gw, fed = v1.gw, v1.federation_id
    assert v1.connected["federation_id"] == fed and v1.connected["state"] == "running"
    info = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)
    assert info["modules"] == ["ln", "lnv2", "meta", "mint", "wallet"], info
    dep = v1.deposit
    assert v1.balance_before_peg_in == 0 and not dep["already_credited"]
    # the deposit's value less the federation's peg-in fee, as notes that pay their own fees
    assert dep["credited_msat"] == credit_for(v1.fed, PEG_IN_SAT * 1000 - PEG_IN_FEE_MSAT)
    assert dep["balance_msat"] == dep["credited_msat"]


def test_ln_pay_through_the_gateway(v1: V1World, v1_user: User) -> None:  # noqa: F811
    """A fedimint-cli user pays bob's invoice through us (top-level `ln-pay`): bob is paid
    once, the user gets the preimage; the contract is the invoice plus our 1 % fee, our node
    pays exactly the invoice (a direct channel), we claim the contract."""
    gw, fed, user = v1.gw, v1.federation_id, v1_user
    gateway_id = v1_gateway_id(gw, fed)
    listed = user("list-gateways")
    assert isinstance(listed, list) and [g["info"]["gateway_id"] for g in listed] == [gateway_id]
    bob = v1.world.post("/v1/nodes/bob/invoices", {"amount_msat": 1_000_000})
    before_user, before_gw, before_ln = balance_of(user), gw.balance(fed), lightning_msat(gw)
    out = user("ln-pay", bob["bolt11"], "--gateway-id", gateway_id)
    assert out == {"Success": {"preimage": bob["preimage"]}}, out
    assert v1.world.get(f"/v1/nodes/bob/invoices/{bob['payment_hash']}")["state"] == "settled"
    contract = 1_000_000 + 10_000
    assert before_ln - lightning_msat(gw) == 1_000_000
    assert gw.balance(fed) - before_gw == credit_for(v1.fed, contract)
    lost = before_user - balance_of(user)
    assert contract + 100 <= lost <= contract + NOTE_FEES, lost
    log = gw.post("/payment_log", {"federation_id": fed})["payments"]
    row = next(p for p in log if p["payment_hash"] == bob["payment_hash"])
    assert (row["direction"], row["status"], row["amount_msat"]) == ("outgoing", "settled", 10**6)
    assert row["fee_earned_msat"] == 10_000
