"""The whole gateway (the real process tree under supervisord) serving a real fedimintd
federation with the v1 modules (ln, lnv2, meta, mint, wallet), with real fedimint-cli 0.13.0
users: connected by invite, pegging in and out through wallet v1 (its chain source: the real
bitcoind), v1 e-cash both ways, LNv1 payments out (`ln-pay`) and in (`ln-invoice`) through our
node, exact amounts on every side. Beside it the default (v2) federation, both served: the v1
federation's users paying and receiving with `module lnv2` through us beside LNv1; swaps between
the two federations (LNv1 payer -> LNv2 payee and LNv2 payer -> LNv1 payee) and within the v1
federation, none of them over Lightning (our node's balance unchanged), amounts exact on our v1
side. One tree, one v1 federation and its users for the whole module."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from coincurve import PrivateKey

from fmclient import derive, mintv1
from fmclient.config import parse_client_config
from fmclient.derive import DerivableSecret, FederationSecrets
from fmclient.lnv2 import Lnv2Config
from fmclient.walletv1 import WalletV1Config
from gwcore.values import amount_text
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import tree  # noqa: F401 - the fixture

from .conftest import User
from .lnv1_world import (  # noqa: F401 - tree_env, v1, v1_user: the module's fixtures
    GIVEN_WORDS,
    PEG_IN_FEE_MSAT,
    PEG_IN_SAT,
    V1World,
    balance_of,
    credit_for,
    funded_user,
    held_notes,
    lightning_msat,
    paid_for,
    spent_by,
    splits_paid,
    tree_env,
    user_credit,
    v1,
    v1_gateway_id,
    v1_user,
)
from .test_gateway_fedimint import Gateway, _until, refuses_bad_withdrawals, withdrawn

pytestmark = pytest.mark.timeout(900)
NOTE_FEES = 100 * 40 + 512  # a bound on a fedimint-cli user's note fees in one payment


def _mint(v1: V1World) -> mintv1.MintConfig:  # noqa: F811
    config = parse_client_config(v1.fed.client_config)
    return mintv1.MintConfig.from_bytes(config.modules[config.module_id("mint")].body)


def test_connect_and_peg_in_through_wallet_v1(v1: V1World) -> None:  # noqa: F811
    gw, fed = v1.gw, v1.federation_id
    assert v1.connected["federation_id"] == fed and v1.connected["state"] == "running"
    info = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)
    assert info["modules"] == ["ln", "lnv2", "meta", "mint", "wallet"], info
    dep = v1.deposit  # claimed by this /deposit or, a moment before, by the actor's own scan
    assert v1.balance_before_peg_in == 0
    # the deposit's value less the federation's peg-in fee, as notes that pay their own fees
    assert dep["credited_msat"] == credit_for(v1.fed, PEG_IN_SAT * 1000 - PEG_IN_FEE_MSAT)
    assert dep["balance_msat"] == dep["credited_msat"]
    again = gw.post("/deposit", {"federation_id": fed})  # once: asked again, nothing more
    assert again["already_credited"] and again["credited_msat"] == dep["credited_msat"]
    assert gw.balance(fed) == dep["credited_msat"]


def test_every_key_and_note_comes_from_the_given_words(v1: V1World) -> None:  # noqa: F811
    """The gateway was given gatewayd-style words (GIVEN_WORDS): its LNv1 gateway id, its LNv2
    module key, its first peg-in address and every note it holds are the ones fedimint's
    client modules derive from those words and the federation id (computed here from the
    words alone, as any gateway given them would), and the real federation took them."""
    gw, fid = v1.gw, v1.federation_id
    assert gw.post("/seed", {})["words"] == GIVEN_WORDS
    assert httpx.post(gw.url + "/seed", json={}).status_code == 401
    assert (v1.tree["data_dir"] / "gateway-seed").read_text() == GIVEN_WORDS + "\n"
    config = parse_client_config(v1.fed.client_config)
    secrets = FederationSecrets.from_root(derive.bip39_root_secret(GIVEN_WORDS), fid)

    def module(kind: str) -> DerivableSecret:
        return secrets.module(config.module_id(kind))

    def pub(secret: bytes) -> str:
        return PrivateKey(secret).public_key.format(compressed=True).hex()

    assert v1_gateway_id(gw, fid) == pub(derive.lnv1_redeem_secret(module("ln")))
    routing = gw.public("/routing_info", fid)
    assert routing["module_public_key"] == pub(derive.lnv2_gateway_secret(module("lnv2")))
    wallet = WalletV1Config.from_bytes(config.modules[config.module_id("wallet")].body)
    tweak_key = PrivateKey(derive.wallet_v1_tweak_secret(module("wallet"), 0)).public_key
    assert v1.deposit["address"] == wallet.peg_in_address(tweak_key.format(compressed=True))
    # every note held: its nonce is the spend key of module/0/index/amount, indexes per amount
    # counted up from 0 and advanced past every one used
    db = sqlite3.connect(v1.tree["data_dir"] / "actors" / fid[:16] / "fedimint.sqlite")
    derived: dict[str, tuple[int, int]] = {}
    for (outputs,) in db.execute("SELECT outputs FROM operations WHERE outputs IS NOT NULL"):
        for o in json.loads(outputs):
            amount, index = 1 << o["d"], o["note_index"]
            spend, _ = derive.mint_v1_note_keys(
                derive.mint_v1_note_secret(module("mint"), amount, index)
            )
            assert o["secret"] == spend.hex()
            derived[pub(spend)] = (amount, index)
    held = [n for (n,) in db.execute("SELECT nonce FROM notes WHERE state = 'unspent'")]
    assert held and all(n in derived for n in held)
    used: dict[int, list[int]] = {}
    for amount, index in derived.values():
        used.setdefault(amount, []).append(index)
    nexts = dict(db.execute("SELECT name, next FROM key_indexes"))
    for amount, indexes in used.items():
        assert sorted(indexes) == list(range(len(indexes)))  # no index twice, none skipped
        assert nexts[f"mint_v1_note:{amount}"] == len(indexes)


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
    row = next(p for p in log if p.get("payment_hash") == bob["payment_hash"])
    assert (row["direction"], row["status"], row["amount_msat"]) == ("outgoing", "settled", 10**6)
    assert row["fee_earned_msat"] == 10_000


def test_peg_out_through_wallet_v1(v1: V1World) -> None:  # noqa: F811
    """A withdrawal: bad ones change nothing; the preview's total is what the balance loses
    (besides the mint's note fees, exactly by the rule), and the address gets the amount."""
    gw, fed, bitcoind = v1.gw, v1.federation_id, v1.bitcoind
    refuses_bad_withdrawals(gw, fed, bitcoind, 200)
    balance = gw.balance(fed)
    to = bitcoind.new_address("bech32m")
    body = {"federation_id": fed, "amount": 30_000, "address": to}
    quote = gw.post("/withdraw", {**body, "preview": True})
    total = (30_000 + quote["fee_sat"]) * 1000 + quote["federation_fee_msat"]
    assert quote["preview"] and quote["total_msat"] == total and quote["fee_sat"] > 0
    assert gw.balance(fed) == balance
    sent = gw.post("/withdraw", {**body, "idempotency_key": "v1-wd-0001"})
    assert sent["amount_sat"] == 30_000 and sent["fee_sat"] == quote["fee_sat"]
    spent = spent_by(v1.tree, fed, sent["operation_id"])
    assert balance - gw.balance(fed) == paid_for(v1.fed, spent, total)
    again = gw.post("/withdraw", {**body, "idempotency_key": "v1-wd-0001"})
    assert again["operation_id"] == sent["operation_id"]
    assert balance - gw.balance(fed) == paid_for(v1.fed, spent, total)  # paid once
    withdrawn(gw, fed, bitcoind, to, 30_000)


def test_v1_ecash_both_ways(v1: V1World, tmp_path_factory: pytest.TempPathFactory) -> None:  # noqa: F811
    """Our notes (`/spend_ecash`) reissued by a fresh fedimint-cli user, whose balance is
    exactly the change fedimint-cli makes of them; the user's `module mint spend` notes
    credited to us once, exactly what our new notes hold of them."""
    gw, fed = v1.gw, v1.federation_id
    carol = User(tmp_path_factory.mktemp("carol-v1"))
    carol("join", v1.fed.invite_code)
    before = gw.balance(fed)
    splits = splits_paid(v1.tree, fed)
    spent = gw.post("/spend_ecash", {"federation_id": fed, "amount_msat": 300_000})
    assert spent["amount_msat"] == 300_032  # rounded up to our smallest note, 512 msat
    oob = mintv1.parse_oob_notes(spent["notes"])
    assert oob.amount_msat == 300_032 and oob.federation_prefix == fed[:8]
    assert gw.balance(fed) == before - 300_032 - (splits_paid(v1.tree, fed) - splits)
    assert carol("module", "mint", "reissue", spent["notes"]) == 300_032
    layout = mintv1.represent_amount(300_032 - 100 * len(oob.notes), {}, _mint(v1), 2)
    assert balance_of(carol) == sum(t * n for t, n in layout.items())

    theirs = str(carol("module", "mint", "spend", "150000")["notes"])  # type: ignore[index]
    given = mintv1.parse_oob_notes(theirs)
    assert given.amount_msat == 150_000
    held = gw.balance(fed)
    got = gw.public("/receive_ecash", {"notes": theirs})
    assert got["federation_id"] == fed
    assert got["amount_msat"] == credit_for(v1.fed, 150_000 - 100 * len(given.notes))
    assert gw.balance(fed) == held + got["amount_msat"]
    assert gw.public("/receive_ecash", {"notes": theirs}) == got  # once
    assert gw.balance(fed) == held + got["amount_msat"]


def test_ln_pay_unroutable_is_cancelled_and_refunded(v1: V1World, v1_user: User) -> None:  # noqa: F811
    """An invoice nobody can route to (`module ln pay`, no gateway named: the client picks
    the one registered, after asking its `GET /id`): our node fails, we cancel the contract,
    the user refunds at once; we keep nothing and pay nothing."""
    gw, fed, user, world = v1.gw, v1.federation_id, v1_user, v1.world
    if world.http.get("/v1/nodes/carol").status_code != 200:
        world.post("/v1/nodes", {"name": "carol"})  # no channels
    carol = world.post("/v1/nodes/carol/invoices", {"amount_msat": 500_000})
    before_user, before_gw, before_ln = balance_of(user), gw.balance(fed), lightning_msat(gw)
    out = user("module", "ln", "pay", carol["bolt11"])  # the client picks us: the only one
    assert isinstance(out, dict) and "Failure" in out, out
    assert "refunded" in out["Failure"]["error_message"], out
    lost = before_user - balance_of(user)
    assert 0 < lost <= 2 * NOTE_FEES, lost  # the federation's note fees, never the contract
    assert gw.balance(fed) == before_gw and lightning_msat(gw) == before_ln
    log = gw.post("/payment_log", {"federation_id": fed})["payments"]
    row = next(p for p in log if p.get("payment_hash") == carol["payment_hash"])
    assert (row["direction"], row["status"], row["fee_earned_msat"]) == ("outgoing", "failed", 0)


def test_ln_invoice_paid_over_lightning(v1: V1World, v1_user: User) -> None:  # noqa: F811
    """`ln-invoice` through us, paid by alice over the regtest world: our node receives
    exactly the invoice (the last hop's fee is 0), our e-cash funds the offer's contract of
    exactly the invoice, the user claims it (`await-invoice`)."""
    gw, fed, user, world = v1.gw, v1.federation_id, v1_user, v1.world
    gateway_id = v1_gateway_id(gw, fed)
    before_user, before_gw, before_ln = balance_of(user), gw.balance(fed), lightning_msat(gw)
    held = held_notes(user)
    amount = 700_000
    made = user(
        "ln-invoice", "--amount", str(amount), "--description", "v1 in", "--gateway-id", gateway_id
    )
    assert isinstance(made, dict)
    paid = world.post("/v1/nodes/alice/pay", {"bolt11": made["invoice"], "timeout_s": 60})
    assert paid["status"] == "succeeded", paid
    summary = user("await-invoice", made["operation_id"])
    assert isinstance(summary, dict) and "total_amount_msat" in summary, summary
    assert lightning_msat(gw) - before_ln == amount
    spent = spent_by(v1.tree, fed, f"lnv1-fund-{paid['payment_hash'][:32]}")
    assert before_gw - gw.balance(fed) == paid_for(v1.fed, spent, amount)
    # the user claims exactly the invoice (no input fee), as fedimint-cli's new notes
    assert balance_of(user) - before_user == user_credit(v1.fed, amount, held)
    log = gw.post("/payment_log", {"federation_id": fed})["payments"]
    row = next(p for p in log if p.get("payment_hash") == paid["payment_hash"])
    assert (row["direction"], row["status"], row["amount_msat"]) == ("incoming", "settled", amount)


def test_gateway_cli_and_dashboard_show_the_v1_federation(v1: V1World) -> None:  # noqa: F811
    """`gateway-cli info`/`balance` and the federation's dashboard page: its modules, its
    LNv1 registration, its balance."""
    gw, fed = v1.gw, v1.federation_id
    env = {**os.environ, "GATEWAY_RPCPASSWORD": v1.tree["password"]}
    env["GATEWAY_ADDRESS"] = gw.url

    def cli(*args: str) -> dict:
        out = subprocess.run(
            [str(Path(sys.executable).parent / "gateway-cli"), *args],
            capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    info = next(f for f in cli("info")["federations"] if f["federation_id"] == fed)
    assert info["modules"] == ["ln", "lnv2", "meta", "mint", "wallet"]
    assert info["registration"]["gateway_id"] == v1_gateway_id(gw, fed)
    assert cli("balance", "--federation-id", fed)["balance_msat"] == gw.balance(fed)
    ui = httpx.Client(base_url=gw.url, timeout=60)
    page = ui.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    ui.post("/ui/login", data={"login_token": token, "password": v1.tree["password"]})
    page = ui.get(f"/ui/federations/{fed}")
    assert page.status_code == 200 and "Fedimint" in page.text
    shown = re.search(r'<p id="modules">(.*?)</p>', page.text)
    assert shown and re.findall(r"<code[^>]*>(\w+)</code>", shown.group(1)) == info["modules"]
    assert "registered until" in page.text and amount_text(gw.balance(fed)) in page.text


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


def _lnv2_pays_ln_invoice(payer: User, payee: User, url: str, gateway_id: str, msat: int) -> dict:
    """`payee`'s `ln-invoice` through us, paid by `payer` with `module lnv2 send` through us
    (`url`), claimed by `payee`: the `ln-invoice` answer."""
    made = payee("ln-invoice", "--amount", str(msat), "--gateway-id", gateway_id)
    assert isinstance(made, dict)
    send = str(payer("module", "lnv2", "send", made["invoice"], "--gateway", url))
    outcome = payer("module", "lnv2", "await-send", send)
    assert isinstance(outcome, dict) and "Success" in outcome, outcome
    payee("await-invoice", made["operation_id"])
    return made


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
    return funded_user(v1, tmp_path_factory.mktemp("carol-v1"), 20_000_000)


def test_lnv2_receive_and_send_on_the_v1_federation(
    v1: V1World,  # noqa: F811
    v1_user: User,  # noqa: F811
    lnv2_v1: str,
) -> None:
    """LNv2 beside LNv1 on one federation: a v1 federation's user receives with `module lnv2`
    (alice pays over Lightning; our mint v1 e-cash funds the contract) and pays bob."""
    gw, fed, u, world = v1.gw, v1.federation_id, v1_user, v1.world
    before_user, before_gw, before_ln = balance_of(u), gw.balance(fed), lightning_msat(gw)
    held = held_notes(u)
    invoice, op = u("module", "lnv2", "receive", "100000", "--gateway", lnv2_v1)  # type: ignore[misc]
    paid = world.post("/v1/nodes/alice/pay", {"bolt11": str(invoice), "timeout_s": 60})
    assert paid["status"] == "succeeded", paid
    assert u("module", "lnv2", "await-receive", str(op)) == "Claimed"
    contract = 100_000 - 100_000 * RECEIVE_PPM // 1_000_000
    assert lightning_msat(gw) - before_ln == 100_000
    spent = spent_by(v1.tree, fed, f"lnv2-fund-{paid['payment_hash'][:32]}")
    out = contract + _lnv2_fee(v1.fed, contract)  # the contract and its output's fee
    assert before_gw - gw.balance(fed) == paid_for(v1.fed, spent, out)
    claim_fee = _lnv2_fee(v1.fed, contract)  # the user's claim: the contract less its fee
    assert balance_of(u) - before_user == user_credit(v1.fed, contract - claim_fee, held)

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
    user: User,
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
    before_payee, held = balance_of(v1_user), held_notes(v1_user)
    made = _lnv2_pays_ln_invoice(user, v1_user, v2, gateway_id, 120_000)
    ph = made["operation_id"]  # LNv1's receive operation id is the payment hash
    spent = spent_by(v1.tree, fed1, f"lnv1-fund-{ph[:32]}")
    assert b1 - gw.balance(fed1) == paid_for(v1.fed, spent, 120_000)
    assert balance_of(v1_user) - before_payee == user_credit(v1.fed, 120_000, held)
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
    before_gw, before_carol, held = gw.balance(fed), balance_of(carol), held_notes(carol)
    made = carol("ln-invoice", "--amount", "90000", "--gateway-id", gateway_id)
    assert isinstance(made, dict)
    out = v1_user("ln-pay", made["invoice"], "--gateway-id", gateway_id)
    assert isinstance(out, dict) and "Success" in out, out
    carol("await-invoice", made["operation_id"])
    assert balance_of(carol) - before_carol == user_credit(v1.fed, 90_000, held)
    assert gw.balance(fed) == before_gw

    # LNv1 payer -> LNv2 payee: we fund carol's LNv2 contract and claim the user's LNv1 one
    before_gw, before_carol, held = gw.balance(fed), balance_of(carol), held_notes(carol)
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
    fee_in = _lnv2_fee(v1.fed, contract_in)
    assert balance_of(carol) - before_carol == user_credit(v1.fed, contract_in - fee_in, held)

    # LNv2 payer -> LNv1 payee: we fund the user's LNv1 contract and claim carol's LNv2 one
    before_gw = gw.balance(fed)
    made = _lnv2_pays_ln_invoice(carol, v1_user, lnv2_v1, gateway_id, 70_000)
    fund = spent_by(v1.tree, fed, f"lnv1-fund-{made['operation_id'][:32]}")
    contract_out = 70_000 + 70_000 * SEND_PPM // 1_000_000
    claimed = credit_for(v1.fed, contract_out - _lnv2_fee(v1.fed, contract_out))
    want = claimed - paid_for(v1.fed, fund, 70_000)
    _until("the LNv2 contract claimed", 60, lambda: gw.balance(fed) - before_gw >= want)
    assert gw.balance(fed) - before_gw == want
    # the log: carol's LNv2 send a swap earning our send fee; the LNv1 receive earns nothing
    log = gw.post("/payment_log", {"federation_id": fed})["payments"]
    rows = {p["direction"]: p for p in log if p.get("payment_hash") == made["operation_id"]}
    assert rows["swap"]["fee_earned_msat"] == 700 and rows["incoming"]["fee_earned_msat"] == 0
    assert lightning_msat(gw) == before_ln


def test_a_fee_change_reaches_ln_pay_at_once(v1: V1World, v1_user: User) -> None:  # noqa: F811
    """`/set_fees` re-registers at once: fedimint-cli lists the new fees and its next contract
    pays them; then back to the default."""
    gw, fed, user = v1.gw, v1.federation_id, v1_user
    fees = {"federation_id": fed, "base_msat": 1_000, "proportional_millionths": 2_000}
    gw.post("/set_fees", fees)
    try:

        def listed() -> bool:
            (ours,) = user("list-gateways")  # type: ignore[misc]
            return bool(
                ours["info"]["fees"] == {"base_msat": 1_000, "proportional_millionths": 2_000}
            )

        _until("the new fees listed", 30, listed)
        bob = v1.world.post("/v1/nodes/bob/invoices", {"amount_msat": 500_000})
        before_gw = gw.balance(fed)
        out = user("ln-pay", bob["bolt11"], "--gateway-id", v1_gateway_id(gw, fed))
        assert out == {"Success": {"preimage": bob["preimage"]}}, out
        assert gw.balance(fed) - before_gw == credit_for(v1.fed, 500_000 + 1_000 + 1_000)
        log = gw.post("/payment_log", {"federation_id": fed})["payments"]
        row = next(p for p in log if p.get("payment_hash") == bob["payment_hash"])
        assert row["fee_earned_msat"] == 2_000
    finally:
        gw.post("/set_fees", {**fees, "base_msat": 0, "proportional_millionths": 10_000})
    _until("the default fees listed again", 30, lambda: not listed())
