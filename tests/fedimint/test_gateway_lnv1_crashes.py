"""LNv1 and wallet v1 through crashes, on the real process tree with a real fedimintd federation
with the v1 modules and a real fedimint-cli user: the actor killed (as kill -9, at its crash
points) after storing an incoming contract's funding, after the funding is accepted and after
learning its preimage (`module ln invoice`), and after storing an outgoing contract and after
paying its invoice before claiming it (`module ln pay`); the router and the extension killed
with kill -9 while an LNv1 receive's HTLC and an LNv1 send's payment are in flight; the actor
killed when the federation has accepted a peg-out and again once it is recorded (`/withdraw`).
Each payment ends once (settled, or refunded), never both, never paid twice; balances (our
e-cash, our node, the user, bob, the chain) move by exactly one payment."""

from __future__ import annotations

import hashlib
import os
import signal
import time

import pytest
from bolt11 import decode as bolt11_decode

from tests.e2e.conftest import supervisor_rpc, tree  # noqa: F401 - tree: the fixture

from .conftest import User
from .lnv1_world import (  # noqa: F401 - tree_env, v1, v1_user: the module's fixtures
    V1World,
    balance_of,
    credit_for,
    lightning_msat,
    paid_for,
    spent_by,
    tree_env,
    v1,
    v1_gateway_id,
    v1_user,
)
from .test_gateway_fedimint import _until
from .test_gateway_lnv1 import NOTE_FEES
from .test_gateway_lnv2_crashes import (
    PROCESSES,
    _bob_settles_after_kill_9,
    _in_thread,
    _kill_and_wait,
    _pid,
)

pytestmark = pytest.mark.timeout(900)
RECEIVE_POINTS = ("lnv1-receive-funding", "lnv1-receive-funded", "lnv1-receive-decrypted")
SEND_POINTS = ("lnv1-send-recorded", "lnv1-send-paid")
PEGOUT_POINTS = ("ecash-pegout-sent", "ecash-pegout-submitted")
# the actors of this tree die once at each of these points (services/actor/crash.crash_point):
# the tests run in file order, the first two and the last consume them (each checks it did)
TREE_ENV = {"GATEWAY_ACTOR_CRASH_AT": ",".join(RECEIVE_POINTS + SEND_POINTS + PEGOUT_POINTS)}
SEND_FEE_PPM = 10_000  # our LNv1 fee (the default: no base, 1 %)


class Books:
    """Our e-cash and Lightning, and the user's e-cash, before a payment."""

    def __init__(self, v1: V1World, user: User) -> None:  # noqa: F811
        self.v1, self.user, self.fed = v1, user, v1.federation_id
        self.ecash, self.ln = v1.gw.balance(self.fed), lightning_msat(v1.gw)
        self.user_msat = balance_of(user)

    def _one_log_row(self, payment_hash: str, direction: str, amount: int) -> None:
        log = self.v1.gw.post("/payment_log", {"federation_id": self.fed})["payments"]
        rows = [p for p in log if p.get("payment_hash") == payment_hash]
        assert [(r["direction"], r["status"], r["amount_msat"]) for r in rows] == [
            (direction, "settled", amount)
        ], rows

    def received(self, payment_hash: str, amount: int) -> None:
        """Exactly one receive of `amount`: the HTLC settled once (no fee: the client's route
        hint asks none for its last hop), the incoming contract funded once from our e-cash
        (its notes, by the mint's rule) and claimed by the user."""
        assert lightning_msat(self.v1.gw) - self.ln == amount
        spent = spent_by(self.v1.tree, self.fed, f"lnv1-fund-{payment_hash[:32]}")
        paid = paid_for(self.v1.fed, spent, amount)
        assert self.ecash - self.v1.gw.balance(self.fed) == paid
        got = balance_of(self.user) - self.user_msat
        assert amount - NOTE_FEES <= got < amount, got  # the claim's new notes pay their fees
        self._one_log_row(payment_hash, "incoming", amount)

    def sent(self, payment_hash: str, amount: int) -> None:
        """Exactly one send of `amount`: paid once over Lightning (a direct channel: no routing
        fee), the contract (the invoice and our fee) claimed once, funded once by the user."""
        contract = amount + amount * SEND_FEE_PPM // 1_000_000
        assert self.ln - lightning_msat(self.v1.gw) == amount
        credit = credit_for(self.v1.fed, contract)
        _until("the claim", 60, lambda: self.v1.gw.balance(self.fed) - self.ecash >= credit)
        assert self.v1.gw.balance(self.fed) - self.ecash == credit
        lost = self.user_msat - balance_of(self.user)
        assert contract + 100 <= lost <= contract + NOTE_FEES, lost
        self._one_log_row(payment_hash, "outgoing", amount)


def _marked(tree: dict, points: tuple[str, ...]) -> list[str]:  # noqa: F811
    """The crash points the actors died at so far."""
    return [p for p in points if (tree["data_dir"] / f"crashed-at-{p}").exists()]


def test_lnv1_receive_survives_the_actor_killed_three_times(
    tree: dict,  # noqa: F811
    v1: V1World,  # noqa: F811
    v1_user: User,  # noqa: F811
) -> None:
    """The actor dies after storing the funding, after the funding is accepted, and after
    learning the preimage; the router asks again each time and the HTLC is settled once."""
    rpc, gid = supervisor_rpc(tree), v1_gateway_id(v1.gw, v1.federation_id)
    books = Books(v1, v1_user)
    got = v1_user("module", "ln", "invoice", "100000", "--gateway-id", gid)
    assert isinstance(got, dict)
    program = v1.connected["program"]
    actor = _pid(rpc, program)
    paid = v1.world.post("/v1/nodes/alice/pay", {"bolt11": got["invoice"], "timeout_s": 240})
    assert paid["status"] == "succeeded", paid
    assert _marked(tree, RECEIVE_POINTS) == list(RECEIVE_POINTS)
    assert _pid(rpc, program) != actor  # it did die and come back
    assert v1_user("module", "ln", "await-invoice", got["operation_id"]) == {"status": "paid"}
    books.received(paid["payment_hash"], 100_000)


def test_lnv1_send_survives_the_actor_killed_twice(
    tree: dict,  # noqa: F811
    v1: V1World,  # noqa: F811
    v1_user: User,  # noqa: F811
) -> None:
    """The actor dies after storing the contract (nothing paid), and again after paying bob
    before claiming; the bus hands the call to it again each time it comes back (else the
    client asks again every 10 s): bob paid once, the preimage answered, the contract claimed
    once."""
    gid = v1_gateway_id(v1.gw, v1.federation_id)
    books = Books(v1, v1_user)
    bob = v1.world.post("/v1/nodes/bob/invoices", {"amount_msat": 120_000})
    out = v1_user("module", "ln", "pay", bob["bolt11"], "--gateway-id", gid)
    assert out == {"Success": {"preimage": bob["preimage"]}}, out
    assert _marked(tree, SEND_POINTS) == list(SEND_POINTS)
    assert v1.world.get(f"/v1/nodes/bob/invoices/{bob['payment_hash']}")["state"] == "settled"
    books.sent(bob["payment_hash"], 120_000)


def test_lnv1_receive_with_its_htlc_in_flight_survives_router_and_extension_kill_9(
    tree: dict,  # noqa: F811
    v1: V1World,  # noqa: F811
    v1_user: User,  # noqa: F811
) -> None:
    """The actor is stopped (SIGSTOP) so the HTLC is surely held by our node and asked about
    when the router and the extension die; they come back, the HTLC is settled once."""
    rpc, gid, world = supervisor_rpc(tree), v1_gateway_id(v1.gw, v1.federation_id), v1.world
    books = Books(v1, v1_user)
    got = v1_user("module", "ln", "invoice", "90000", "--gateway-id", gid)
    assert isinstance(got, dict)
    ph = bolt11_decode(got["invoice"]).payment_hash
    actor = _pid(rpc, v1.connected["program"])
    os.kill(actor, signal.SIGSTOP)
    result: dict = {}
    payer = _in_thread(
        result,
        lambda: world.post("/v1/nodes/alice/pay", {"bolt11": got["invoice"], "timeout_s": 180}),
    )
    try:
        _until(
            "the HTLC held by our node",
            30,
            lambda: any(h["payment_hash"] == ph for h in world.get("/v1/nodes/gateway/htlcs")),
        )
        time.sleep(1)  # a grace for the router to ask the (stopped) actor: nothing tells us
        _kill_and_wait(rpc, PROCESSES, tree["api_url"])  # and the API front
    finally:
        os.kill(actor, signal.SIGCONT)
    payer.join(180)
    assert result.get("status") == "succeeded", result
    assert result["payment_hash"] == ph
    assert v1_user("module", "ln", "await-invoice", got["operation_id"]) == {"status": "paid"}
    books.received(ph, 90_000)


def test_lnv1_send_in_flight_survives_router_and_extension_kill_9(
    tree: dict,  # noqa: F811
    v1: V1World,  # noqa: F811
    v1_user: User,  # noqa: F811
) -> None:
    """Bob holds the HTLC while the router and the extension are killed; bob settles; the
    payment is found settled (never paid again), answered to the client and claimed."""
    rpc, gid, world = supervisor_rpc(tree), v1_gateway_id(v1.gw, v1.federation_id), v1.world
    books = Books(v1, v1_user)
    preimage = os.urandom(32)
    ph = hashlib.sha256(preimage).hexdigest()
    held = world.post("/v1/nodes/bob/invoices", {"amount_msat": 80_000, "payment_hash": ph})
    outcome: dict = {}
    payer = _in_thread(  # `module ln pay` waits for the outcome
        outcome,
        lambda: {"out": v1_user("module", "ln", "pay", held["bolt11"], "--gateway-id", gid)},
    )
    killed = ["gateway-router", "gateway-lnrpc-extension"]
    _bob_settles_after_kill_9(world, rpc, ph, preimage, killed, tree["api_url"])
    payer.join(300)
    assert outcome.get("out") == {"Success": {"preimage": preimage.hex()}}, outcome
    books.sent(ph, 80_000)


def test_a_peg_out_survives_the_actor_killed_twice(tree: dict, v1: V1World) -> None:  # noqa: F811
    """`/withdraw` with an idempotency key: the actor dies when the federation has accepted
    the peg-out (not yet recorded), and again once it is recorded; the call is answered with
    the one peg-out, and so is the operator asking again with the same key; the address is
    paid once, the balance moves by one peg-out."""
    gw, fed, bitcoind = v1.gw, v1.federation_id, v1.bitcoind
    rpc = supervisor_rpc(tree)
    to = bitcoind.new_address()
    body = {"federation_id": fed, "amount": 25_000, "address": to}
    quote = gw.post("/withdraw", {**body, "preview": True})
    total = (25_000 + quote["fee_sat"]) * 1000 + quote["federation_fee_msat"]
    balance, actor = gw.balance(fed), _pid(rpc, v1.connected["program"])
    key = {"idempotency_key": "v1-crash-pegout-1"}
    # the bus hands the call to the actor again each time it comes back: answered once it is
    # finished, the peg-out the federation accepted (never quoted again: it would refuse)
    first = gw.post("/withdraw", {**body, **key})
    assert _marked(tree, PEGOUT_POINTS) == list(PEGOUT_POINTS)
    assert _pid(rpc, v1.connected["program"]) != actor
    assert first["amount_sat"] == 25_000 and first["fee_sat"] == quote["fee_sat"], first
    assert first["status"] == "sent" and first["txid"], first
    again = gw.post("/withdraw", {**body, **key})  # the operator asks again: the same one
    assert (again["operation_id"], again["txid"]) == (first["operation_id"], first["txid"])
    spent = spent_by(tree, fed, again["operation_id"])
    assert balance - gw.balance(fed) == paid_for(v1.fed, spent, total)  # one peg-out

    def on_chain() -> list:
        bitcoind.mine(1)
        return bitcoind.rpc("scantxoutset", "start", [f"addr({to})"])["unspents"]

    paid = _until("the peg-out on chain", 120, on_chain)
    assert [round(u["amount"] * 100_000_000) for u in paid] == [25_000], paid
    assert paid[0]["txid"] == first["txid"]
    bitcoind.mine(3)  # and never a second one
    assert len(on_chain()) == 1
    assert balance - gw.balance(fed) == paid_for(v1.fed, spent, total)
    log = gw.post("/payment_log", {"federation_id": fed})["payments"]
    rows = [p for p in log if p["direction"] == "withdrawal" and p.get("address") == to]
    assert [(r["status"], r["amount_msat"]) for r in rows] == [("settled", 25_000_000)], rows
