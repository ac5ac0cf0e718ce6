"""LNv2 through crashes, on the real process tree with a real fedimintd federation and a real
fedimint-cli user: the actor killed (as kill -9) after funding a receive's contract, after
learning its preimage, and after paying a send's invoice; the router, the extension and the
API front killed with kill -9 while a receive's HTLC and a send's payment are in flight. Each payment ends
settled (or refunded), never both, never paid twice; balances move by exactly one payment."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time

import httpx
import pytest

from gwcore.constants import PATH_HEALTH_LIVE
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import World, ensure_lightning, supervisor_rpc, tree  # noqa: F401

from .conftest import User
from .test_gateway_fedimint import Gateway, _until
from .test_gateway_lnv2 import _lightning_msat

pytestmark = pytest.mark.timeout(900)
# the actors of this tree die once at each of these points (services/actor/crash.crash_point)
TREE_ENV = {"GATEWAY_ACTOR_CRASH_AT": "lnv2-receive-funding,lnv2-receive-decrypted,lnv2-send-paid"}
RECEIVE_FEE_PPM, SEND_FEE_PPM = 5_000, 10_000


def _pid(rpc, program: str) -> int:  # type: ignore[no-untyped-def]
    return int(rpc.supervisor.getProcessInfo(program)["pid"])


# every process kind of the gateway that is not the federation's actor: the router, the
# extension, and the API front (gunicorn) the payer's client is waiting on
PROCESSES = ["gateway-router", "gateway-lnrpc-extension", "gateway-api"]


def _kill_and_wait(rpc, programs: list[str], api_url: str) -> None:  # type: ignore[no-untyped-def]
    """kill -9 each program; supervisord starts it again (the API front at `api_url`: until it
    answers)."""
    old = {p: _pid(rpc, p) for p in programs}
    for pid in old.values():
        os.kill(pid, signal.SIGKILL)
    for p, pid in old.items():
        _until(f"{p} restarted", 60, lambda p=p, pid=pid: _pid(rpc, p) not in (0, pid))
    if "gateway-api" in programs:
        _until("the API front answering", 60, lambda: _answers(api_url + PATH_HEALTH_LIVE))


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:  # not listening yet, or a worker still starting
        return False


def _keep(into: dict, work) -> None:  # type: ignore[no-untyped-def]
    """Run `work` in a thread: its answer (a dict) into `into`, or the error that ended it."""
    try:
        into.update(work())
    except BaseException as exc:
        into["error"] = repr(exc)


def _in_thread(into: dict, work) -> threading.Thread:  # type: ignore[no-untyped-def]
    """`work` started in a thread (`_keep`): its answer, or its error, lands in `into`."""
    thread = threading.Thread(target=_keep, args=(into, work))
    thread.start()
    return thread


def _bob_settles_after_kill_9(  # type: ignore[no-untyped-def]
    world: World, rpc, payment_hash: str, preimage: bytes, killed: list[str], api_url: str
) -> None:
    """Once bob holds the HTLC of `payment_hash`, the programs `killed` are killed (kill -9)
    and come back; then bob settles it."""
    _until(
        "bob holding the HTLC",
        60,
        lambda: world.get(f"/v1/nodes/bob/invoices/{payment_hash}")["state"] == "accepted",
    )
    _kill_and_wait(rpc, killed, api_url)
    world.post(f"/v1/nodes/bob/invoices/{payment_hash}/settle", {"preimage": preimage.hex()})


class Books:
    """The gateway's e-cash and Lightning, and the user's e-cash, before a payment."""

    def __init__(self, gw: Gateway, fed: str, user: User) -> None:
        user("dev", "wait-complete")
        self.gw, self.fed, self.user = gw, fed, user
        self.ecash, self.ln = gw.balance(fed), _lightning_msat(gw)
        self.user_msat = int(user("info")["total_amount_msat"])  # type: ignore[index]

    def received(self, amount: int) -> None:
        """Exactly one receive of `amount` happened (a contract funded once, an HTLC settled)."""
        contract = amount - amount * RECEIVE_FEE_PPM // 1_000_000
        assert _lightning_msat(self.gw) - self.ln == amount, (self.ln, _lightning_msat(self.gw))
        spent = self.ecash - self.gw.balance(self.fed)
        assert contract + 1_000 <= spent <= contract + 1_000 + 100 * 40 + 512, spent
        self.user("dev", "wait-complete")
        got = int(self.user("info")["total_amount_msat"]) - self.user_msat  # type: ignore[index]
        assert contract - 1_000 - 100 * 30 - 512 <= got <= contract - 1_000, got

    def sent(self, amount: int) -> None:
        """Exactly one send of `amount`: paid once over Lightning, the contract claimed once."""
        contract = amount + amount * SEND_FEE_PPM // 1_000_000
        paid = self.ln - _lightning_msat(self.gw)
        assert amount <= paid <= amount + 10_000, paid  # the invoice and the route's fee, once
        low, high = contract - 1_000 - 100 * 30 - 512, contract - 1_000
        _until("the claim", 60, lambda: self.gw.balance(self.fed) - self.ecash >= low)
        claimed = self.gw.balance(self.fed) - self.ecash
        assert low <= claimed <= high, (low, claimed, high)


def test_lnv2_payments_survive_kill_9(
    tree: dict,  # noqa: F811
    federation1: Federation,
    user: User,
) -> None:
    gw = Gateway(tree)
    fed = federation1.federation_id
    entry = gw.post("/connect-fed", {"invite_code": federation1.invite_code})
    url = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)[
        "lnv2_gateway_url"
    ]
    gw.public("/receive_ecash", {"notes": str(user("module", "mintv2", "send", "600000"))})
    world = World(tree["regtest"])
    ensure_lightning(world)
    rpc = supervisor_rpc(tree)

    # 1. a receive: the actor dies after storing the funding, and again after learning the
    # preimage; the router asks again each time and the HTLC is settled once
    books = Books(gw, fed, user)
    invoice, op = user("module", "lnv2", "receive", "100000", "--gateway", url)  # type: ignore[misc]
    actor = _pid(rpc, entry["program"])
    paid = world.post("/v1/nodes/alice/pay", {"bolt11": str(invoice), "timeout_s": 120})
    assert paid["status"] == "succeeded", paid
    for point in ("lnv2-receive-funding", "lnv2-receive-decrypted"):
        assert (tree["data_dir"] / f"crashed-at-{point}").exists(), point
    assert _pid(rpc, entry["program"]) != actor  # it did die and come back
    assert user("module", "lnv2", "await-receive", str(op)) == "Claimed"
    books.received(100_000)

    # 2. a send: the actor dies after paying bob, before answering and claiming; the payer's
    # client asks again and gets the preimage, bob is paid once, the contract claimed once
    books = Books(gw, fed, user)
    bob = world.post("/v1/nodes/bob/invoices", {"amount_msat": 120_000})
    send = str(user("module", "lnv2", "send", bob["bolt11"], "--gateway", url))
    assert user("module", "lnv2", "await-send", send) == {"Success": bob["preimage"]}
    assert (tree["data_dir"] / "crashed-at-lnv2-send-paid").exists()
    assert world.get(f"/v1/nodes/bob/invoices/{bob['payment_hash']}")["state"] == "settled"
    books.sent(120_000)

    # 3. a receive whose HTLC waits while the router and the extension are killed: the actor is
    # stopped (SIGSTOP) so the HTLC is surely in flight when they (and the API front) die
    books = Books(gw, fed, user)
    invoice, op = user("module", "lnv2", "receive", "90000", "--gateway", url)  # type: ignore[misc]
    actor = _pid(rpc, entry["program"])
    os.kill(actor, signal.SIGSTOP)
    result: dict = {}
    payer = _in_thread(
        result,
        lambda: world.post("/v1/nodes/alice/pay", {"bolt11": str(invoice), "timeout_s": 180}),
    )
    try:
        ph = _until(
            "the HTLC held by our node",
            30,
            lambda: next(
                (
                    i["payment_hash"]
                    for i in world.get("/v1/nodes/gateway/invoices")
                    if i["bolt11"] == invoice and i["state"] == "accepted"
                ),
                None,
            ),
        )
        time.sleep(1)  # the router has asked the (stopped) actor
        _kill_and_wait(rpc, PROCESSES, tree["api_url"])
    finally:
        os.kill(actor, signal.SIGCONT)
    payer.join(180)
    assert result.get("status") == "succeeded", result
    assert user("module", "lnv2", "await-receive", str(op)) == "Claimed"
    assert world.get(f"/v1/nodes/gateway/invoices/{ph}")["state"] == "settled"
    books.received(90_000)

    # 4. a send whose Lightning payment is in flight (bob holds it) while the router and the
    # extension are killed; bob settles; the payment is found settled, answered and claimed
    books = Books(gw, fed, user)
    preimage = os.urandom(32)
    held = world.post(
        "/v1/nodes/bob/invoices",
        {"amount_msat": 80_000, "payment_hash": hashlib.sha256(preimage).hexdigest()},
    )
    send = str(user("module", "lnv2", "send", held["bolt11"], "--gateway", url))
    outcome: dict = {}
    waiter = _in_thread(  # the client's state machine runs while it awaits
        outcome, lambda: {"result": user("module", "lnv2", "await-send", send, timeout=300)}
    )
    _bob_settles_after_kill_9(
        world, rpc, held["payment_hash"], preimage, PROCESSES, tree["api_url"]
    )
    waiter.join(300)
    assert outcome.get("result") == {"Success": preimage.hex()}, outcome
    books.sent(80_000)
