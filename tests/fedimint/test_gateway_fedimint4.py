"""The whole gateway serving a real 4-guardian federation (threshold 3) through crashes and
outages: its actor killed (as kill -9) after the federation accepted a reissue but before the
actor recorded it, then one guardian down (e-cash in and out, an LNv2 receive, a peg-in, a
withdrawal), then two.
Each e-cash is credited exactly once, to
the msat; with two guardians down a receive waits and completes when one returns. Last, the
gateway's data folder is lost while one guardian is still down and a user's LNv2 send through
us is in flight (paid by our node, its contract not claimed: the federation was away):
`connect-fed --recover` from the seed gives back the balance to the msat from the three that
answer, and claims that contract, found in their signed session history."""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx
import pytest

from fmclient.mintv2 import parse_ecash
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import World, ensure_lightning, supervisor_rpc, tree  # noqa: F401

from .conftest import User
from .crash_onchain import received_sat
from .recovery_steps import federation_info, lose_data_folder, paid_while_away, recover
from .test_gateway_fedimint import Gateway, _until

pytestmark = pytest.mark.timeout(900)
# the actor dies once, as kill -9 would, right after the federation accepted a reissue
TREE_ENV = {"GATEWAY_ACTOR_CRASH_AT": "ecash-sent"}
IN_FLIGHT_MSAT = 1_200_000  # a send our node paid, its contract not claimed at the loss


def _receive(gw: Gateway, user: User, msat: int) -> tuple[dict, int]:
    text = str(user("module", "mintv2", "send", str(msat)))
    return gw.public("/receive_ecash", {"notes": text}), parse_ecash(text).amount_msat


def _claimed(tree_: dict, fed: str) -> int | None:
    """What the claim of the contract in flight credited, once done."""
    path = tree_["data_dir"] / "actors" / fed[:16] / "fedimint.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT amount_msat FROM operations WHERE kind = 'lnv2_claim' AND state = 'done'"
        ).fetchone()
    finally:
        db.close()
    return None if row is None else int(row[0])


def test_crash_and_guardian_outages_lose_and_duplicate_nothing(
    tree: dict,  # noqa: F811
    federation4: Federation,
    user4: User,
    bitcoind: Bitcoind,
) -> None:
    gw = Gateway(tree)
    fed = federation4.federation_id
    entry = gw.post("/connect-fed", {"invite_code": federation4.invite_code})
    rpc = supervisor_rpc(tree)
    pid = rpc.supervisor.getProcessInfo(entry["program"])["pid"]

    # 1. the actor dies between the federation's acceptance and its own record; the bus
    # retries the same request into the restarted actor, which finishes the one reissue
    text = str(user4("module", "mintv2", "send", "64000"))
    got = gw.public("/receive_ecash", {"notes": text})
    assert rpc.supervisor.getProcessInfo(entry["program"])["pid"] != pid  # it did die
    value = parse_ecash(text).amount_msat
    assert 0 < value - got["amount_msat"] < 100 * 40 + 512
    assert gw.balance(fed) == got["amount_msat"]
    assert gw.public("/receive_ecash", {"notes": text}) == got
    assert gw.balance(fed) == got["amount_msat"]
    balance = gw.balance(fed)

    # LNv2 out on 4 guardians, every one of them listing our gateway: the client finds us
    info = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)
    federation4.add_gateway(info["lnv2_gateway_url"])
    world = World(tree["regtest"])
    ensure_lightning(world)
    bob = world.post("/v1/nodes/bob/invoices", {"amount_msat": 1_500_000})
    op = str(user4("module", "lnv2", "send", bob["bolt11"]))
    assert user4("module", "lnv2", "await-send", op) == {"Success": bob["preimage"]}
    deadline = time.monotonic() + 60
    while gw.balance(fed) <= balance:  # the contract claimed
        assert time.monotonic() < deadline, "the contract was not claimed"
        time.sleep(0.3)
    balance = gw.balance(fed)

    g2, g3 = federation4.guardians[2], federation4.guardians[3]
    try:
        # 2. one guardian of four down: everything still served — e-cash in and out, a
        # peg-in, a withdrawal
        g3.kill()
        one_down, _ = _receive(gw, user4, 32_000)
        assert gw.balance(fed) == balance + one_down["amount_msat"]
        spent = gw.post("/spend_ecash", {"federation_id": fed, "amount_msat": 8192})
        assert user4("module", "mintv2", "receive", spent["notes"]) == "Success"
        # an LNv2 receive over Lightning: its contract decrypted from three guardians' shares
        user4("dev", "wait-complete")
        before = gw.balance(fed)
        invoice, op = user4("module", "lnv2", "receive", "100000")  # type: ignore[misc]
        paid = world.post("/v1/nodes/alice/pay", {"bolt11": str(invoice), "timeout_s": 120})
        assert paid["status"] == "succeeded", paid
        assert user4("module", "lnv2", "await-receive", str(op)) == "Claimed"
        assert 99_500 + 1_000 <= before - gw.balance(fed) <= 99_500 + 1_000 + 100 * 40 + 512
        address = gw.post("/address", {"federation_id": fed})["address"]
        bitcoind.send(address, 120_000)
        bitcoind.mine(21)
        before = gw.balance(fed)

        def claimed() -> dict | None:
            r = gw.http.post("/deposit", json={"federation_id": fed})
            if r.status_code == 409:
                bitcoind.mine(1)
                time.sleep(0.5)
                return None
            assert r.status_code == 200, r.text
            return r.json()

        deadline = time.monotonic() + 120
        dep = claimed()
        while dep is None:
            assert time.monotonic() < deadline, "the deposit was not claimed"
            dep = claimed()
        assert gw.balance(fed) == before + dep["credited_msat"]
        to = bitcoind.new_address("bech32")
        sent = gw.post("/withdraw", {"federation_id": fed, "amount": 20_000, "address": to})
        assert sent["amount_sat"] == 20_000
        deadline = time.monotonic() + 120
        while received_sat(bitcoind, to) != 20_000:
            assert time.monotonic() < deadline, "the withdrawal did not reach the chain"
            bitcoind.mine(1)
            time.sleep(0.5)
        balance = gw.balance(fed)

        # 3. two down: below the threshold the receive waits, and completes when one returns
        g2.kill()
        notes = str(user4("module", "mintv2", "send", "16000"))
        answer: dict = {}

        def give() -> None:
            r = httpx.post(gw.url + "/receive_ecash", json={"notes": notes}, timeout=150)
            answer.update(status=r.status_code, body=r.json())

        t = threading.Thread(target=give)
        t.start()
        time.sleep(4)
        assert t.is_alive() and gw.balance(fed) == balance  # waiting, nothing credited
        g2.start()
        t.join(140)
        assert answer.get("status") == 200, answer
        assert gw.balance(fed) == balance + answer["body"]["amount_msat"]

        # 4. the data folder lost (the seed file kept, as an operator's words are), g3 still
        # down, with a send in flight: the recovery reads three guardians, gives back every
        # msat, and claims the contract our node had paid
        _until("nothing in flight", 60, lambda: federation_info(gw, fed)["in_flight"] == 0)
        balance = gw.balance(fed)
        up, sent = federation4.guardians[:3], {}

        def send(bolt11: str) -> list[str]:
            sent["op"] = str(user4("module", "lnv2", "send", bolt11))
            return ["module", "lnv2", "await-send", sent["op"]]

        preimage = paid_while_away(world, user4, send, up, IN_FLIGHT_MSAT)
        lose_data_folder(tree, keep=("gateway-seed",))
        for g in up:  # three of four again
            g.start()
        assert federation_info(gw, fed) is None
        info = recover(gw, federation4.invite_code, fed)
        assert info["recovery"]["items_done"] == info["recovery"]["items_total"] > 0
        assert info["recovery"]["modules"]["session_history"]["done"]
        claim = _until("the contract in flight claimed", 120, lambda: _claimed(tree, fed))
        assert IN_FLIGHT_MSAT < claim <= IN_FLIGHT_MSAT * 101 // 100  # the invoice and our 1 %
        assert gw.balance(fed) == balance + claim
        assert user4("module", "lnv2", "await-send", sent["op"]) == {"Success": preimage}
    finally:
        for g in federation4.guardians:
            if g.proc is None or not g.proc.alive():
                g.start()
