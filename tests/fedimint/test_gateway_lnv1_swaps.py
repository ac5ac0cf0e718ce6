"""The whole gateway serving a real federation with the v1 modules and the default (v2) one
side by side, with real fedimint-cli 0.13.0 users: the v1 federation's users paying and
receiving with `module lnv2` through us beside LNv1; swaps between the two federations (LNv1
payer -> LNv2 payee and LNv2 payer -> LNv1 payee) and within the v1 federation, none of them
over Lightning (our node's balance unchanged), amounts exact on our v1 side."""

from __future__ import annotations

import pytest

from fmclient.config import parse_client_config
from fmclient.lnv2 import Lnv2Config
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import tree  # noqa: F401 - the fixture

from .conftest import User, user  # noqa: F401 - user: the v2 federation's funded user
from .lnv1_world import (  # noqa: F401 - tree_env, v1, v1_user: the module's fixtures
    V1World,
    balance_of,
    credit_for,
    fund_user,
    lightning_msat,
    paid_for,
    spent_by,
    tree_env,
    v1,
    v1_gateway_id,
    v1_user,
)
from .test_gateway_fedimint import Gateway, _until

pytestmark = pytest.mark.timeout(900)
NOTE_FEES = 100 * 40 + 512  # a bound on a fedimint-cli user's note fees in one payment
RECEIVE_PPM, SEND_PPM = 5_000, 10_000  # our LNv2 receive fee as announced, our send fee


def _lnv2_fee(fed: Federation, amount_msat: int) -> int:
    """The federation's LNv2 module fee on a contract input or output."""
    config = parse_client_config(fed.client_config)
    return Lnv2Config.from_bytes(config.modules[config.module_id("lnv2")].body).fee_msat(
        amount_msat
    )


def _lnv2_url(gw: Gateway, fed: str) -> str:
    info = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)
    return str(info["lnv2_gateway_url"])


@pytest.fixture(scope="module")
def v2(v1: V1World, federation1: Federation, user: User) -> str:  # noqa: F811
    """The default (v2) federation served beside the v1 one, with our e-cash there (notes of
    its user's); its LNv2 URL."""
    v1.gw.post("/connect-fed", {"invite_code": federation1.invite_code})
    v1.gw.public("/receive_ecash", {"notes": str(user("module", "mintv2", "send", "30000000"))})
    return _lnv2_url(v1.gw, federation1.federation_id)


@pytest.fixture(scope="module")
def lnv2_v1(v1: V1World) -> str:  # noqa: F811
    """Our LNv2 URL in the v1 federation, added by every guardian."""
    url = _lnv2_url(v1.gw, v1.federation_id)
    v1.fed.add_gateway(url)
    return url


@pytest.fixture(scope="module")
def carol(v1: V1World, tmp_path_factory: pytest.TempPathFactory) -> User:  # noqa: F811
    """A second user of the v1 federation (with 20,000 sat of our notes)."""
    u = User(tmp_path_factory.mktemp("carol-v1"))
    u("join", v1.fed.invite_code)
    fund_user(v1.gw, v1.federation_id, u, 20_000_000)
    return u


def test_lnv2_receive_and_send_on_the_v1_federation(
    v1: V1World,  # noqa: F811
    v1_user: User,  # noqa: F811
    lnv2_v1: str,
) -> None:
    """LNv2 beside LNv1 on one federation: a v1 federation's user receives with `module lnv2`
    (alice pays over Lightning; our mint v1 e-cash funds the contract) and pays bob."""
    gw, fed, u, world = v1.gw, v1.federation_id, v1_user, v1.world
    before_user, before_gw, before_ln = balance_of(u), gw.balance(fed), lightning_msat(gw)
    invoice, op = u("module", "lnv2", "receive", "100000", "--gateway", lnv2_v1)  # type: ignore[misc]
    paid = world.post("/v1/nodes/alice/pay", {"bolt11": str(invoice), "timeout_s": 60})
    assert paid["status"] == "succeeded", paid
    assert u("module", "lnv2", "await-receive", str(op)) == "Claimed"
    contract = 100_000 - 100_000 * RECEIVE_PPM // 1_000_000
    assert lightning_msat(gw) - before_ln == 100_000
    spent = spent_by(v1.tree, fed, f"lnv2-fund-{paid['payment_hash'][:32]}")
    out = contract + _lnv2_fee(v1.fed, contract)  # the contract and its output's fee
    assert before_gw - gw.balance(fed) == paid_for(v1.fed, spent, out)
    gained = balance_of(u) - before_user
    claim_fee = _lnv2_fee(v1.fed, contract)
    assert contract - claim_fee - NOTE_FEES <= gained <= contract - claim_fee, gained

    bob = world.post("/v1/nodes/bob/invoices", {"amount_msat": 800_000})
    before_gw, before_ln = gw.balance(fed), lightning_msat(gw)
    send = str(u("module", "lnv2", "send", bob["bolt11"], "--gateway", lnv2_v1))
    assert u("module", "lnv2", "await-send", send) == {"Success": bob["preimage"]}
    assert before_ln - lightning_msat(gw) == 800_000
    contract = 800_000 + 800_000 * SEND_PPM // 1_000_000
    want = credit_for(v1.fed, contract - _lnv2_fee(v1.fed, contract))
    _until("the contract claimed", 60, lambda: gw.balance(fed) - before_gw >= want)
    assert gw.balance(fed) - before_gw == want


def test_swaps_between_the_v1_and_the_v2_federation(
    v1: V1World,  # noqa: F811
    v1_user: User,  # noqa: F811
    federation1: Federation,
    user: User,  # noqa: F811
    v2: str,
) -> None:
    """A v1 user pays (`ln-pay`, LNv1) the LNv2 invoice of a user of the v2 federation, and
    that user pays (`module lnv2 send`) the v1 user's `ln-invoice`: each funded with our
    e-cash in the payee's federation and claimed with the preimage in the payer's; nothing
    over Lightning."""
    gw, fed1, fed2 = v1.gw, v1.federation_id, federation1.federation_id
    gateway_id = v1_gateway_id(gw, fed1)
    before_ln = lightning_msat(gw)

    # LNv1 payer (v1) -> LNv2 payee (v2)
    b1, b2 = gw.balance(fed1), gw.balance(fed2)
    before_payee = balance_of(user)
    invoice, op = user("module", "lnv2", "receive", "150000", "--gateway", v2)  # type: ignore[misc]
    out = v1_user("ln-pay", str(invoice), "--gateway-id", gateway_id)
    assert isinstance(out, dict) and "Success" in out, out
    assert user("module", "lnv2", "await-receive", str(op)) == "Claimed"
    contract_v1 = 150_000 + 150_000 * SEND_PPM // 1_000_000  # the LNv1 contract: invoice + fee
    assert gw.balance(fed1) - b1 == credit_for(v1.fed, contract_v1)
    contract_v2 = 150_000 - 150_000 * RECEIVE_PPM // 1_000_000
    fee_v2 = _lnv2_fee(federation1, contract_v2)
    spent_v2 = b2 - gw.balance(fed2)
    assert contract_v2 + fee_v2 <= spent_v2 <= contract_v2 + fee_v2 + NOTE_FEES, spent_v2
    gained = balance_of(user) - before_payee
    assert contract_v2 - fee_v2 - NOTE_FEES <= gained <= contract_v2 - fee_v2, gained
    row = gw.post("/payment_log", {"federation_id": fed1})["payments"][0]
    assert (row["direction"], row["status"], row["amount_msat"]) == ("swap", "settled", 150_000)
    assert lightning_msat(gw) == before_ln

    # LNv2 payer (v2) -> LNv1 payee (v1)
    b1, b2 = gw.balance(fed1), gw.balance(fed2)
    before_payee = balance_of(v1_user)
    made = v1_user("ln-invoice", "--amount", "120000", "--gateway-id", gateway_id)
    assert isinstance(made, dict)
    send = str(user("module", "lnv2", "send", made["invoice"], "--gateway", v2))
    outcome = user("module", "lnv2", "await-send", send)
    assert isinstance(outcome, dict) and "Success" in outcome, outcome
    v1_user("await-invoice", made["operation_id"])
    ph = made["operation_id"]  # LNv1's receive operation id is the payment hash
    spent = spent_by(v1.tree, fed1, f"lnv1-fund-{ph[:32]}")
    assert b1 - gw.balance(fed1) == paid_for(v1.fed, spent, 120_000)
    gained = balance_of(v1_user) - before_payee
    assert 120_000 - NOTE_FEES <= gained < 120_000, gained
    contract_out = 120_000 + 120_000 * SEND_PPM // 1_000_000
    low = contract_out - _lnv2_fee(federation1, contract_out) - NOTE_FEES
    _until("the v2 contract claimed", 60, lambda: gw.balance(fed2) - b2 >= low)
    assert gw.balance(fed2) - b2 <= contract_out - _lnv2_fee(federation1, contract_out)
    assert lightning_msat(gw) == before_ln


def test_swaps_within_the_v1_federation(
    v1: V1World,  # noqa: F811
    v1_user: User,  # noqa: F811
    carol: User,
    lnv2_v1: str,
) -> None:
    """Within the v1 federation: an LNv1 invoice paid with LNv1 never reaches us (the client
    pays its own federation's contract); an LNv2 invoice paid with LNv1 (and an LNv1 invoice
    paid with LNv2) swaps through us: our e-cash funds one contract and claims the other."""
    gw, fed = v1.gw, v1.federation_id
    gateway_id = v1_gateway_id(gw, fed)
    before_ln = lightning_msat(gw)

    # LNv1 -> LNv1: internal to the federation, not through us
    before_gw, before_carol = gw.balance(fed), balance_of(carol)
    made = carol("ln-invoice", "--amount", "90000", "--gateway-id", gateway_id)
    assert isinstance(made, dict)
    out = v1_user("ln-pay", made["invoice"], "--gateway-id", gateway_id)
    assert isinstance(out, dict) and "Success" in out, out
    carol("await-invoice", made["operation_id"])
    gained = balance_of(carol) - before_carol
    assert 90_000 - NOTE_FEES <= gained < 90_000, gained
    assert gw.balance(fed) == before_gw

    # LNv1 payer -> LNv2 payee: we fund carol's LNv2 contract and claim the user's LNv1 one
    before_gw, before_carol = gw.balance(fed), balance_of(carol)
    invoice, op = carol("module", "lnv2", "receive", "110000", "--gateway", lnv2_v1)  # type: ignore[misc]
    out = v1_user("ln-pay", str(invoice), "--gateway-id", gateway_id)
    assert isinstance(out, dict) and "Success" in out, out
    assert carol("module", "lnv2", "await-receive", str(op)) == "Claimed"
    contract_in = 110_000 - 110_000 * RECEIVE_PPM // 1_000_000
    contract_v1 = 110_000 + 110_000 * SEND_PPM // 1_000_000
    row = gw.post("/payment_log", {"federation_id": fed})["payments"][0]
    assert (row["direction"], row["status"], row["amount_msat"]) == ("swap", "settled", 110_000)
    fund = spent_by(v1.tree, fed, f"lnv2-fund-{row['payment_hash'][:32]}")
    paid = paid_for(v1.fed, fund, contract_in + _lnv2_fee(v1.fed, contract_in))
    assert gw.balance(fed) - before_gw == credit_for(v1.fed, contract_v1) - paid
    gained = balance_of(carol) - before_carol
    fee_in = _lnv2_fee(v1.fed, contract_in)
    assert contract_in - fee_in - NOTE_FEES <= gained <= contract_in - fee_in, gained

    # LNv2 payer -> LNv1 payee: we fund the user's LNv1 contract and claim carol's LNv2 one
    before_gw = gw.balance(fed)
    made = v1_user("ln-invoice", "--amount", "70000", "--gateway-id", gateway_id)
    assert isinstance(made, dict)
    send = str(carol("module", "lnv2", "send", made["invoice"], "--gateway", lnv2_v1))
    outcome = carol("module", "lnv2", "await-send", send)
    assert isinstance(outcome, dict) and "Success" in outcome, outcome
    v1_user("await-invoice", made["operation_id"])
    fund = spent_by(v1.tree, fed, f"lnv1-fund-{made['operation_id'][:32]}")
    contract_out = 70_000 + 70_000 * SEND_PPM // 1_000_000
    claimed = credit_for(v1.fed, contract_out - _lnv2_fee(v1.fed, contract_out))
    want = claimed - paid_for(v1.fed, fund, 70_000)
    _until("the LNv2 contract claimed", 60, lambda: gw.balance(fed) - before_gw >= want)
    assert gw.balance(fed) - before_gw == want
    # the log: carol's LNv2 send a swap earning our send fee; the LNv1 receive earns nothing
    log = gw.post("/payment_log", {"federation_id": fed})["payments"]
    rows = {p["direction"]: p for p in log if p["payment_hash"] == made["operation_id"]}
    assert rows["swap"]["fee_earned_msat"] == 700 and rows["incoming"]["fee_earned_msat"] == 0
    assert lightning_msat(gw) == before_ln
