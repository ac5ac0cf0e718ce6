"""LNv2 receives through the whole gateway (the real process tree under supervisord) for a real
fedimintd federation and a real fedimint-cli user: `module lnv2 receive` with and without
`--gateway`, paid by alice over the regtest world's Lightning network through our node's hold
invoice; amounts exact on every side; LUD-21 verify; a contract that does not decrypt to its
preimage refunded to us and its HTLC cancelled; bad contracts refused with their reason. Swaps
between served federations; one invoice paid by several users (in one federation and in two)
paid once, the others refunded; leave refused while a receive is in flight."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import threading
import time

import httpx
import pytest
from coincurve import PrivateKey

from fmclient import tpe
from fmclient.config import parse_client_config
from fmclient.lnv2 import Commitment, IncomingContract, Lnv2Config, PaymentImage
from gwcore.constants import DUPLICATE_PAYMENT_REASON
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import World, ensure_lightning, tree  # noqa: F401 - tree: the fixture

from .conftest import User
from .test_gateway_fedimint import Gateway, _until

pytestmark = pytest.mark.timeout(900)


def _lightning_msat(gw: Gateway) -> int:
    return int(gw.post("/lightning", {})["balances"]["lightning_balance_msat"])


def test_a_real_user_receives_through_the_gateway(
    tree: dict,  # noqa: F811
    federation1: Federation,
    user: User,
) -> None:
    gw = Gateway(tree)
    fed = federation1.federation_id
    gw.post("/connect-fed", {"invite_code": federation1.invite_code})
    info = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)
    url = info["lnv2_gateway_url"]
    routing = gw.public("/routing_info", fed)
    assert routing["receive_enabled"]
    # our 1 % fee is above what LNv2 clients accept for receives: 0.5 % is announced
    assert routing["receive_fee"] == {"base": 0, "parts_per_million": 5_000}
    # set_fees is effective at once for LNv2 too, then back to the default
    fees = {"federation_id": fed, "base_msat": 1_000, "proportional_millionths": 2_000}
    gw.post("/set_fees", fees)
    changed = gw.public("/routing_info", fed)
    assert changed["send_fee_default"] == {"base": 1_000, "parts_per_million": 2_000}
    assert changed["receive_fee"] == {"base": 1_000, "parts_per_million": 2_000}
    gw.post("/set_fees", {**fees, "base_msat": 0, "proportional_millionths": 10_000})
    assert gw.public("/routing_info", fed) == routing
    gw.public("/receive_ecash", {"notes": str(user("module", "mintv2", "send", "400000"))})
    world = World(tree["regtest"])
    ensure_lightning(world)

    def receive(amount: int, *gateway: str) -> tuple[str, str]:
        invoice, op = user("module", "lnv2", "receive", str(amount), *gateway)  # type: ignore[misc]
        return str(invoice), str(op)

    for i, gateway in enumerate((("--gateway", url), ())):
        if not gateway:
            federation1.add_gateway(url)  # every guardian lists us: the client finds us
        user("dev", "wait-complete")
        before_user = user("info")["total_amount_msat"]  # type: ignore[index]
        before_gw, before_ln = gw.balance(fed), _lightning_msat(gw)
        invoice, op = receive(100_000 + i, *gateway)
        paid = world.post("/v1/nodes/alice/pay", {"bolt11": invoice, "timeout_s": 60})
        assert paid["status"] == "succeeded", paid
        assert user("module", "lnv2", "await-receive", op) == "Claimed"
        contract_msat = 100_000 + i - (100_000 + i) * 5_000 // 1_000_000
        # our node got exactly the invoice; our e-cash paid the contract, the federation's
        # 1 sat on the contract output and its note fees
        assert _lightning_msat(gw) - before_ln == 100_000 + i
        spent = before_gw - gw.balance(fed)
        assert contract_msat + 1_000 <= spent <= contract_msat + 1_000 + 100 * 40 + 512, spent
        user("dev", "wait-complete")
        gained = user("info")["total_amount_msat"] - before_user  # type: ignore[index,operator]
        assert contract_msat - 1_000 - 100 * 30 - 512 <= gained <= contract_msat - 1_000, gained
        ph = paid["payment_hash"]
        verified = httpx.get(f"{gw.url}/verify/{ph}", timeout=30).json()
        assert verified["status"] == "OK" and verified["settled"]
        assert hashlib.sha256(bytes.fromhex(verified["preimage"])).hexdigest() == ph
        assert httpx.get(f"{gw.url}/v1/verify/{ph}", timeout=30).json() == verified

    # a contract whose ciphertext is sound but does not open to its payment hash: we fund it,
    # learn that from the guardians' shares, take our money back and cancel alice's HTLC
    config = parse_client_config(federation1.client_config)
    lnv2 = Lnv2Config.from_bytes(config.modules[config.module_id("lnv2")].body)
    gw_key = bytes.fromhex(routing["module_public_key"])
    before_gw, before_ln = gw.balance(fed), _lightning_msat(gw)
    amount = 50_000
    commitment = Commitment(
        PaymentImage("Hash", hashlib.sha256(os.urandom(32)).digest()),
        amount - amount * 5_000 // 1_000_000,
        int(time.time()) + 3600,
        gw_key,  # claim key: anyone's; a user's would be its own
        gw_key,
        PrivateKey().public_key.format(),
    )
    ct = tpe.encrypt_preimage(lnv2.tpe_agg_pk, os.urandom(32), os.urandom(32), commitment.hash)
    contract = IncomingContract(commitment, ct)
    body = {
        "federation_id": fed,
        "contract": contract.json(),
        "amount": amount,
        "description": {"Direct": "wrong preimage"},
        "expiry_secs": 600,
    }
    invoice = gw.public("/create_bolt11_invoice", body)
    assert gw.public("/v1/create_bolt11_invoice", body) == invoice  # the same, again
    paid = world.post("/v1/nodes/alice/pay", {"bolt11": invoice, "timeout_s": 60})
    assert paid["status"] == "failed" and paid["failure"] == "incorrect_or_unknown_payment_details"
    assert _lightning_msat(gw) == before_ln
    lost = _until("the refund", 60, lambda: max(0, before_gw - gw.balance(fed)) or None)
    assert 2_000 <= lost <= 2_000 + 100 * 60 + 1024, lost  # the federation's fees only
    ph = commitment.payment_image.value.hex()
    refused = httpx.get(f"{gw.url}/verify/{ph}", timeout=30).json()
    assert refused == {"status": "ERROR", "reason": "Payment has been refunded"}
    log = gw.post("/payment_log", {"federation_id": fed})["payments"]
    ins = {p["payment_hash"]: p for p in log if p["direction"] == "incoming"}
    assert ins[ph]["status"] == "failed" and ins[ph]["fee_earned_msat"] == 0
    settled = [p for p in ins.values() if p["status"] == "settled"]
    assert len(settled) == 2 and {p["fee_earned_msat"] for p in settled} == {500}
    metrics = gw.http.get("/metrics").text  # Prometheus: the receives counted once each
    line = next(
        m
        for m in metrics.splitlines()
        if m.startswith("gateway_payments_total{")
        and fed in m
        and 'direction="incoming"' in m
        and 'status="settled"' in m
    )
    assert float(line.split()[-1]) == 2

    # bad contracts: refused with the reason, nothing kept
    before_gw = gw.balance(fed)
    fresh = dataclasses.replace(commitment, payment_image=PaymentImage("Hash", os.urandom(32)))
    body["contract"] = IncomingContract(
        fresh, tpe.encrypt_preimage(lnv2.tpe_agg_pk, os.urandom(32), os.urandom(32), fresh.hash)
    ).json()
    for change, why in [
        ({"amount": amount + 1}, "does not pay our receive fee"),
        ({"expiry_secs": 86_401}, "maximum of one day"),
        ({"federation_id": "ef" * 32}, "does not exist"),
        ({"description": {"Direct": 5}}, "description"),
        ({"contract": {"commitment": {}}}, "contract"),
    ]:
        assert why in gw.public("/create_bolt11_invoice", {**body, **change}, 400)["error"]
    other = Commitment(
        PaymentImage("Hash", os.urandom(32)),
        commitment.amount_msat,
        commitment.expiration,
        gw_key,
        PrivateKey().public_key.format(),  # another gateway's contract
        commitment.ephemeral_pk,
    )
    foreign = IncomingContract(
        other, tpe.encrypt_preimage(lnv2.tpe_agg_pk, b"s" * 32, b"p" * 32, other.hash)
    )
    assert (
        "another gateway"
        in gw.public("/create_bolt11_invoice", {**body, "contract": foreign.json()}, 400)["error"]
    )
    # ours, but the ciphertext was made for another commitment: the pairing check fails
    tampered = IncomingContract(dataclasses.replace(other, refund_pk=gw_key), foreign.ciphertext)
    assert (
        "invalid"
        in gw.public("/create_bolt11_invoice", {**body, "contract": tampered.json()}, 400)["error"]
    )
    assert gw.balance(fed) == before_gw


def test_a_swap_between_two_real_federations_without_lightning(
    tree: dict,  # noqa: F811
    federation1: Federation,
    federation1_other: Federation,
    user: User,
    user_other: User,
) -> None:
    """A user of one federation pays the invoice a user of another one got from us: both served
    here, so no Lightning payment is made; the receiver's contract is funded with our e-cash
    there and its preimage claims the payer's contract here. The same within one federation.
    (Both have 1 guardian: LNv2 on 4 guardians is tests/fedimint/test_gateway_fedimint4.py's.)"""
    gw = Gateway(tree)
    fed1, fed2 = federation1.federation_id, federation1_other.federation_id
    for f in (federation1, federation1_other):
        gw.post("/connect-fed", {"invite_code": f.invite_code})
    url = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed1)[
        "lnv2_gateway_url"
    ]
    gw.public("/receive_ecash", {"notes": str(user_other("module", "mintv2", "send", "300000"))})
    gw.public("/receive_ecash", {"notes": str(user("module", "mintv2", "send", "300000"))})
    world = World(tree["regtest"])
    ensure_lightning(world)
    _swap(gw, url, user, user_other, fed1, fed2)
    _swap(gw, url, user, user, fed1, fed1)


def _swap(gw: Gateway, url: str, payer: User, payee: User, fed_pay: str, fed_get: str) -> None:
    for u in {id(payer): payer, id(payee): payee}.values():
        u("dev", "wait-complete")
    before = {f: gw.balance(f) for f in {fed_pay, fed_get}}
    before_ln = _lightning_msat(gw)
    before_payee = payee("info")["total_amount_msat"]  # type: ignore[index]
    invoice, op = payee("module", "lnv2", "receive", "150000", "--gateway", url)  # type: ignore[misc]
    send = str(payer("module", "lnv2", "send", str(invoice), "--gateway", url))
    outcome = payer("module", "lnv2", "await-send", send)
    assert isinstance(outcome, dict) and "Success" in outcome, outcome
    assert payee("module", "lnv2", "await-receive", str(op)) == "Claimed"
    assert _lightning_msat(gw) == before_ln  # nothing went over Lightning
    contract_in = 150_000 - 150_000 * 5_000 // 1_000_000  # the receiver's contract
    contract_out = 150_000 + 150_000 * 10_000 // 1_000_000  # the payer's contract
    fund_fees, claim_fees = (1_000, 100 * 40 + 512), (1_000, 100 * 30 + 512)
    payee("dev", "wait-complete")
    gained = payee("info")["total_amount_msat"] - before_payee  # type: ignore[index,operator]
    if fed_pay != fed_get:
        assert contract_in - sum(claim_fees) <= gained <= contract_in - 1_000, gained
        spent = before[fed_get] - gw.balance(fed_get)
        assert contract_in + 1_000 <= spent <= contract_in + sum(fund_fees), spent
        low, high = contract_out - sum(claim_fees), contract_out - 1_000
    else:  # one federation: we fund the one contract and claim the other
        low = contract_out - sum(claim_fees) - contract_in - sum(fund_fees)
        high = contract_out - 1_000 - contract_in - 1_000
    got = _until("the claim", 60, lambda: gw.balance(fed_pay) - before[fed_pay] >= low)
    assert got and low <= gw.balance(fed_pay) - before[fed_pay] <= high
    log = gw.post("/payment_log", {"federation_id": fed_pay})["payments"]
    assert log[0]["direction"] == "swap" and log[0]["status"] == "settled"
    assert log[0]["amount_msat"] == 150_000 and log[0]["fee_earned_msat"] == 1_500


def _outgoing(gw: Gateway, fed: str, payment_hash: str) -> list[dict]:
    log = gw.post("/payment_log", {"federation_id": fed})["payments"]
    return [p for p in log if p["direction"] == "outgoing" and p["payment_hash"] == payment_hash]


def _summary(gw: Gateway, fed: str) -> dict:
    return gw.post("/payment_summary", {"federation_id": fed})["directions"]["outgoing"]


def test_an_invoice_paid_by_two_users_is_paid_once(
    tree: dict,  # noqa: F811
    federation1: Federation,
    federation1_other: Federation,
    user: User,
    user_other: User,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """alice and carol, two fedimint-cli users of one federation, pay the same invoice of bob's
    through us, and so does a user of another federation we serve: alice's send succeeds; the
    others are refused with our forfeit signature and refunded at once (they lose fees at most);
    bob is paid once, and our e-cash and channel move by one payment."""
    gw = Gateway(tree)
    fed1, fed2 = federation1.federation_id, federation1_other.federation_id
    for f in (federation1, federation1_other):
        gw.post("/connect-fed", {"invite_code": f.invite_code})
    url = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed1)[
        "lnv2_gateway_url"
    ]
    world = World(tree["regtest"])
    ensure_lightning(world)
    alice = user
    carol = User(tmp_path_factory.mktemp("carol"))
    carol("join", federation1.invite_code)
    notes = str(alice("module", "mintv2", "send", "3000000"))
    assert carol("module", "mintv2", "receive", notes) == "Success"
    amount, contract = 1_000_000, 1_000_000 + 1_000_000 * 10_000 // 1_000_000
    bob = world.post("/v1/nodes/bob/invoices", {"amount_msat": amount})
    bob_before = world.get("/v1/nodes/bob")["lightning_balance_msat"]
    for u in (alice, carol, user_other):
        u("dev", "wait-complete")
    users = {"carol": carol, "user_other": user_other}
    before = {name: int(u("info")["total_amount_msat"]) for name, u in users.items()}  # type: ignore[index]
    gw_before = {f: gw.balance(f) for f in (fed1, fed2)}
    ln_before = _lightning_msat(gw)
    sums = {f: _summary(gw, f) for f in (fed1, fed2)}

    send = str(alice("module", "lnv2", "send", bob["bolt11"], "--gateway", url))
    assert alice("module", "lnv2", "await-send", send) == {"Success": bob["preimage"]}
    for name, u in users.items():  # the same invoice again, by others: refunded at once
        op = str(u("module", "lnv2", "send", bob["bolt11"], "--gateway", url))
        assert u("module", "lnv2", "await-send", op) == "Refunded", name
        u("dev", "wait-complete")
        lost = before[name] - int(u("info")["total_amount_msat"])  # type: ignore[index]
        assert 0 <= lost < 20_000, (name, lost)  # the federation's fees only, never the contract

    # bob paid once; our channel paid once; our e-cash: alice's contract claimed, nothing else
    assert world.get("/v1/nodes/bob")["lightning_balance_msat"] - bob_before == amount
    paid = ln_before - _lightning_msat(gw)
    assert amount <= paid <= amount + 10_000, paid
    low, high = contract - 1_000 - 100 * 30 - 512, contract - 1_000
    _until("the claim", 60, lambda: gw.balance(fed1) - gw_before[fed1] >= low)
    assert low <= gw.balance(fed1) - gw_before[fed1] <= high
    assert gw.balance(fed2) == gw_before[fed2]

    # the payment log and summary: alice's settled, the others failed with the reason
    ph = bob["payment_hash"]
    one = sorted((p["status"], p["error"]) for p in _outgoing(gw, fed1, ph))
    assert one == [("failed", DUPLICATE_PAYMENT_REASON), ("settled", None)], one
    other = [(p["status"], p["error"]) for p in _outgoing(gw, fed2, ph)]
    assert other == [("failed", DUPLICATE_PAYMENT_REASON)], other
    now = {f: _summary(gw, f) for f in (fed1, fed2)}
    assert now[fed1]["settled"] - sums[fed1]["settled"] == 1
    assert now[fed1]["failed"] - sums[fed1]["failed"] == 1
    assert now[fed2]["failed"] - sums[fed2]["failed"] == 1
    assert now[fed2]["settled"] == sums[fed2]["settled"]


def test_leave_is_refused_while_an_lnv2_receive_is_in_flight(
    tree: dict,  # noqa: F811
    federation1: Federation,
    user: User,
) -> None:
    """alice pays a user's invoice while the federation's guardian is stopped (SIGSTOP): our
    HTLC is held and the incoming contract's funding waits (`funding`); leave is refused with
    a 409 naming the LNv2 receive; once the guardian runs again the receive finishes, and
    then leave succeeds."""
    gw = Gateway(tree)
    fed = federation1.federation_id
    gw.post("/connect-fed", {"invite_code": federation1.invite_code})
    url = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)[
        "lnv2_gateway_url"
    ]
    gw.public("/receive_ecash", {"notes": str(user("module", "mintv2", "send", "200000"))})
    world = World(tree["regtest"])
    ensure_lightning(world)

    def in_flight() -> dict:
        info = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)
        return dict(info["in_flight_kinds"])

    invoice, op = user("module", "lnv2", "receive", "60000", "--gateway", url)  # type: ignore[misc]
    (guardian,) = federation1.guardians
    assert guardian.proc is not None
    os.kill(guardian.proc.popen.pid, signal.SIGSTOP)
    result: dict = {}

    def pay() -> None:
        try:
            result.update(
                world.post("/v1/nodes/alice/pay", {"bolt11": str(invoice), "timeout_s": 100})
            )
        except BaseException as exc:
            result["error"] = repr(exc)

    payer = threading.Thread(target=pay)
    payer.start()
    try:
        _until("the receive in flight", 60, lambda: in_flight().get("lnv2_receive") == 1)
        refused = gw.post("/leave-fed", {"federation_id": fed}, 409)
        assert refused["code"] == "payments_in_flight" and "1 LNv2 receive" in refused["error"]
    finally:
        os.kill(guardian.proc.popen.pid, signal.SIGCONT)
    payer.join(150)
    assert result.get("status") == "succeeded", result
    assert user("module", "lnv2", "await-receive", str(op)) == "Claimed"
    _until("nothing in flight", 60, lambda: not any(in_flight().values()))
    assert gw.post("/leave-fed", {"federation_id": fed})["left"] == fed
