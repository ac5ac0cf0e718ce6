"""A lost data folder, recovered from the seed words alone (`connect-fed --recover`), on real
fedimintd 0.13 federations of one guardian: a v2 federation (mintv2) and a v1 one (mint v1,
wallet v1), served by one gateway tree.

The gateway earns and spends e-cash in both (notes from several operations, some spent by
users), leaves a v1 and a walletv2 peg-in unconfirmed, then its data folder is deleted (the whole tree stopped,
the gateway's files and the run folder's actor programs removed, the development world's kept)
and the tree started again with the same words file. `connect-fed --recover` of each gives back
the same balance to the msat, each mint's note indexes as they were, the v1 and walletv2 peg-in
addresses watched again (each unconfirmed deposit is claimed once it confirms), and a second `--recover`
is refused in one line.

And payments in flight at the loss are finished, in each federation: a user's send through us
to bob's hold invoice (LNv2 in the v2 federation, LNv1 `ln-pay` in the v1 one, at the same
time), the user gone offline, the federation away when bob settles (so we hold the preimage
and have not claimed the contract) and then the folder lost. The recovery finds the contract in
the federation's signed session history, our node's payment of its hash, and claims it: the
balance is the one before plus exactly what the claim credits. And a user's receive in each
(LNv2, LNv1 `ln-invoice`), funded by us, decrypted, our actor dead before it settled alice's
HTLC: found in the history, decrypted again, alice's HTLC settled, the user paid.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from fmclient.config import parse_client_config
from fmclient.lnv1 import Lnv1Config
from fmclient.lnv1_gateway import lnv1_fee_msat
from fmclient.wallet_keys import NOTE_INDEX
from peers.cache import fedimint_bin
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import (
    World,
    ensure_lightning,
    tree,  # noqa: F401 - the tree fixture
)

from .conftest import User
from .lnv1_world import (  # noqa: F401 - tree_env: the tree's chain source and seed
    PEG_IN_FEE_MSAT,
    credit_for,
    fund_user,
    peg_in,
    tree_env,
    v1_gateway_id,
)
from .recovery_steps import lose_gateway_disk
from .test_gateway_fedimint import Gateway, _until

pytestmark = pytest.mark.timeout(900)
BIN = Path(sys.executable).parent
PENDING_SAT = 300_000  # a v1 peg-in sent before the loss, confirmed after it
IN_FLIGHT_MSAT = 2_000_000  # a send paid over Lightning, its contract not yet claimed
RECEIVE_MSAT = 40_000  # an LNv2 receive funded by us (from our 80,384 msat), not settled
V1_RECEIVE_MSAT = 300_000  # an LNv1 receive funded by us, not settled
# where our actors die in the receives below (test hook); no other flow of this module passes
CRASH, V1_CRASH = "lnv2-receive-decrypted", "lnv1-receive-decrypted"
TREE_ENV = {"GATEWAY_ACTOR_CRASH_AT": f"{CRASH},{V1_CRASH}"}


def _wallet_file(tree_: dict, fed: str) -> Path:
    return tree_["data_dir"] / "actors" / fed[:16] / "fedimint.sqlite"


def _key_indexes(tree_: dict, fed: str) -> dict[str, int]:
    db = sqlite3.connect(f"file:{_wallet_file(tree_, fed)}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT name, next FROM key_indexes").fetchall())
    finally:
        db.close()


def _info(gw: Gateway, fed: str) -> dict:
    return next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)


def _cli(tree_: dict, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "GATEWAY_ADDRESS": tree_["api_url"],
        "GATEWAY_RPCPASSWORD": tree_["password"],
    }
    return subprocess.run(
        [str(BIN / "gateway-cli"), *args], capture_output=True, text=True, env=env, timeout=120
    )


def _earn_v2(gw: Gateway, fed: Federation, user: User) -> None:
    """Three receives from the user and a spend the user takes (its notes spent)."""
    gw.post("/connect-fed", {"invite_code": fed.invite_code})
    for msat in ("64000", "32000"):
        gw.public("/receive_ecash", {"notes": str(user("module", "mintv2", "send", msat))})
    spent = gw.post("/spend_ecash", {"federation_id": fed.federation_id, "amount_msat": 20_000})
    assert user("module", "mintv2", "receive", spent["notes"]) == "Success"
    gw.public("/receive_ecash", {"notes": str(user("module", "mintv2", "send", "8000"))})


def _earn_v1(gw: Gateway, fed: Federation, bitcoind: Bitcoind, data_dir: Path) -> tuple[str, User]:
    """A peg-in; notes for a user (a split, spent by the user); notes back from the user; a
    second peg-in sent and left unconfirmed: its address, and the user."""
    gw.post("/connect-fed", {"invite_code": fed.invite_code})
    peg_in(gw, fed.federation_id, bitcoind, 1_000_000)
    v1_user = User(data_dir)
    v1_user("join", fed.invite_code)
    fund_user(gw, fed.federation_id, v1_user, 50_000_000)
    back = v1_user("module", "mint", "spend", "10000000")
    gw.public("/receive_ecash", {"notes": back["notes"]})  # type: ignore[index]
    address = gw.post("/address", {"federation_id": fed.federation_id})["address"]
    bitcoind.send(address, PENDING_SAT)  # not mined: unconfirmed when the folder is lost
    return str(address), v1_user


def _wallet_rows(tree_: dict, fed: str, query: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{_wallet_file(tree_, fed)}?mode=ro", uri=True)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


Start = Callable[[str], list[str]]  # bob's invoice -> a payer's fedimint-cli arguments


def _paid_not_claimed(
    tree_: dict,
    payers: list[tuple[Federation, str, Start]],
    while_held: Callable[[], object] = lambda: None,
) -> list[str]:
    """Each payer pays a hold invoice of bob's through us (`start(bolt11)`: its client's
    arguments, online until our payment is under way) and goes offline; while bob holds the
    HTLCs (and `while_held` runs) each federation goes away; bob settles: our node has each
    preimage and no contract is claimed (the row of the flow's `table` is `paid`, or `paying`
    when its actor is down). The preimages, in order."""
    world = World(tree_["regtest"])
    ensure_lightning(world)
    preimages = [os.urandom(32) for _ in payers]
    paying = [f"/v1/nodes/gateway/payments/{hashlib.sha256(p).hexdigest()}" for p in preimages]

    def held(path: str) -> bool:
        return world.http.get(path).status_code == 200

    clients = []
    try:
        for (_, _, start), preimage in zip(payers, preimages, strict=True):
            payment_hash = hashlib.sha256(preimage).hexdigest()
            bob = world.post(
                "/v1/nodes/bob/invoices",
                {"amount_msat": IN_FLIGHT_MSAT, "payment_hash": payment_hash},
            )
            clients.append(
                subprocess.Popen(
                    [str(fedimint_bin("fedimint-cli")), *start(bob["bolt11"])],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env={**os.environ, "FM_IN_DEVIMINT": "1"},
                )
            )
        _until("our payments held by bob", 120, lambda: all(held(p) for p in paying))
    finally:
        for client in clients:
            client.kill()
            client.wait()
    while_held()
    for fed, _, _ in payers:
        fed.guardians[0].stop()  # the federation away: the contract cannot be claimed
    for preimage in preimages:
        payment_hash = hashlib.sha256(preimage).hexdigest()
        world.post(f"/v1/nodes/bob/invoices/{payment_hash}/settle", {"preimage": preimage.hex()})
    _until(
        "our payments settled",
        60,
        lambda: all(world.get(p)["status"] == "succeeded" for p in paying),
    )
    queries = [(fed.federation_id, f"SELECT state FROM {table}") for fed, table, _ in payers]
    _until("the preimages ours", 90, lambda: all(_wallet_rows(tree_, f, q) for f, q in queries))
    for fed, query in queries:
        assert _wallet_rows(tree_, fed, query) in ([("paid",)], [("paying",)])  # not claimed
    return [p.hex() for p in preimages]


class CrashLoop:
    """Our actors die at `CRASH` and `V1_CRASH` every time they get there, not once: the hook's
    markers (in GATEWAY_ACTOR_DATA_DIR) are removed as soon as they appear (until `stop`)."""

    def __init__(self, tree_: dict) -> None:
        self.markers = {n: tree_["data_dir"] / f"crashed-at-{n}" for n in (CRASH, V1_CRASH)}
        self.crashes, self._stop = dict.fromkeys(self.markers, 0), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for name, marker in self.markers.items():
                if marker.exists():
                    marker.unlink()
                    self.crashes[name] += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _unspent_msat(tree_: dict, fed: str) -> int:
    query = "SELECT COALESCE(SUM(1 << denomination), 0) FROM notes WHERE state = 'unspent'"
    return int(_wallet_rows(tree_, fed, query)[0][0])


def _funded_not_settled(
    tree_: dict, fed: Federation, table: str, invoice: str, crash: str, loop: CrashLoop
) -> dict:
    """A user's receive through us (its `invoice`), the user offline: alice pays it, we fund
    the contract and decrypt the preimage, and our actor dies (at `crash`) before it settles
    alice's HTLC, at every start (`loop`): alice's HTLC is held, the contract unspent, at the
    loss. The preimage, and our wallet then."""
    world = World(tree_["regtest"])

    def pay() -> None:  # alice's payment waits for our HTLC: its answer comes after the loss
        with contextlib.suppress(Exception):
            world.http.post("/v1/nodes/alice/pay", json={"bolt11": invoice, "timeout_s": 900})

    threading.Thread(target=pay, daemon=True).start()
    # it dies, and dies again whenever the router asks again for the HTLC (after its request's
    # timeout), until the loss
    _until(f"our actor dead at {crash}", 120, lambda: loop.crashes[crash] >= 1)
    query = f"SELECT state, preimage FROM {table}"
    ((state, preimage),) = _wallet_rows(tree_, fed.federation_id, query)
    assert state == "decrypted"  # the preimage known, the HTLC not settled
    payment_hash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
    assert world.get(f"/v1/nodes/alice/payments/{payment_hash}")["status"] == "pending"
    return {
        "payment_hash": payment_hash,
        "preimage": preimage,
        "funded_msat": _unspent_msat(tree_, fed.federation_id),
        "indexes": _key_indexes(tree_, fed.federation_id),
    }


def _receives_in_flight(
    tree_: dict, gw: Gateway, feds: tuple[Federation, Federation], users: tuple[User, User]
) -> tuple[dict, dict]:
    """An LNv2 receive of `users[0]` in `feds[0]` and an LNv1 `ln-invoice` of `users[1]` in
    `feds[1]` (v1), each funded by us and not settled (`_funded_not_settled`)."""
    loop = CrashLoop(tree_)
    (v2, v1), (user, v1_user) = feds, users
    url = _info(gw, v2.federation_id)["lnv2_gateway_url"]
    made = user("module", "lnv2", "receive", str(RECEIVE_MSAT), "--gateway", url)
    receive = _funded_not_settled(tree_, v2, "lnv2_receives", str(made[0]), CRASH, loop)  # type: ignore[index]
    receive["operation"] = str(made[1])  # type: ignore[index]
    gateway_id = v1_gateway_id(gw, v1.federation_id)
    made = v1_user(
        "ln-invoice", "--amount", str(V1_RECEIVE_MSAT), "--description", "in flight",
        "--gateway-id", gateway_id,
    )  # fmt: skip
    assert isinstance(made, dict)
    v1_receive = _funded_not_settled(tree_, v1, "lnv1_receives", made["invoice"], V1_CRASH, loop)
    v1_receive["operation"] = made["operation_id"]
    receive["loop"] = loop
    return receive, v1_receive


def _alice_paid(world: World, receive: dict) -> None:
    """Alice's payment of a receive in flight at the loss settled, with its preimage."""
    path = f"/v1/nodes/alice/payments/{receive['payment_hash']}"
    paid = _until(
        f"alice's payment {receive['payment_hash']} settled",
        120,
        lambda: (p := world.get(path))["status"] != "pending" and p,
    )
    assert paid["status"] == "succeeded" and paid["preimage"] == receive["preimage"]


@pytest.fixture(scope="module")
def lost(
    tree: dict,  # noqa: F811
    federation1: Federation,
    federation1_v1: Federation,
    user: User,
    bitcoind: Bitcoind,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict:
    """Both federations served and used, then the gateway's data folder lost and the tree
    started again with the same seed words: what was there before."""
    gw = Gateway(tree)
    _earn_v2(gw, federation1, user)
    _, v1_user = _earn_v1(gw, federation1_v1, bitcoind, tmp_path_factory.mktemp("v1-user"))
    # a walletv2 peg-in sent last (the v1 peg-in mined blocks), unconfirmed at the loss
    v2_address = gw.post("/address", {"federation_id": federation1.federation_id})["address"]
    bitcoind.send(v2_address, PENDING_SAT)
    feds = (federation1.federation_id, federation1_v1.federation_id)
    _until("nothing in flight", 60, lambda: all(_info(gw, f)["in_flight"] == 0 for f in feds))
    before = {f: {"balance": gw.balance(f), "indexes": _key_indexes(tree, f)} for f in feds}
    sent: dict[str, str] = {}

    def lnv2_send(bolt11: str) -> list[str]:
        url = _info(gw, federation1.federation_id)["lnv2_gateway_url"]
        sent["op"] = str(user("module", "lnv2", "send", bolt11, "--gateway", url))
        return ["--data-dir", str(user.data_dir), "module", "lnv2", "await-send", sent["op"]]

    gateway_id = v1_gateway_id(gw, federation1_v1.federation_id)
    v1_data = str(v1_user.data_dir)
    receive: dict = {}
    v1_receive: dict = {}

    def receives() -> None:
        got = _receives_in_flight(tree, gw, (federation1, federation1_v1), (user, v1_user))
        receive.update(got[0])
        v1_receive.update(got[1])

    v1_id = federation1_v1.federation_id
    preimages = _paid_not_claimed(
        tree,
        [
            (federation1, "lnv2_sends", lnv2_send),
            (
                federation1_v1,
                "lnv1_sends",
                lambda bolt11: [
                    "--data-dir",
                    v1_data,
                    "ln-pay",
                    bolt11,
                    "--gateway-id",
                    gateway_id,
                ],
            ),
        ],
        while_held=receives,
    )
    in_flight = {"operation": sent["op"], "preimage": preimages[0]}
    # paid, or paying if our actor was down (dying in the v1 receive) when bob settled
    assert _wallet_rows(tree, v1_id, "SELECT state FROM lnv1_sends") in ([("paid",)], [("paying",)])
    lose_gateway_disk(tree)  # the world runs on: alice's HTLC is still held by our node
    receive.pop("loop").stop()
    federation1.guardians[0].start()  # back, after the loss
    federation1_v1.guardians[0].start()
    return before | {
        "v2_address": v2_address,
        "in_flight": in_flight,
        "v1_preimage": preimages[1],
        "receive": receive,
        "v1_receive": v1_receive,
        "v1_user": v1_user,
    }


def test_connect_fed_recover_gives_back_every_msat(
    tree: dict,  # noqa: F811
    lost: dict,
    federation1: Federation,
    federation1_v1: Federation,
    bitcoind: Bitcoind,
) -> None:
    gw = Gateway(tree)
    v2, v1 = federation1.federation_id, federation1_v1.federation_id
    assert [f["federation_id"] for f in gw.post("/info", {})["federations"]] == []

    # v2 by gateway-cli, v1 by the API; /health is not ready until both are recovered
    out = _cli(tree, "connect-fed", "--recover", federation1.invite_code)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["state"] in ("recovering", "running")
    gw.post("/connect-fed", {"invite_code": federation1_v1.invite_code, "recover": True})

    def recovered() -> bool:
        infos = [_info(gw, f) for f in (v2, v1)]
        if any(i.get("recovering") for i in infos):
            assert gw.http.get("/health").status_code == 503
            return False
        return all(i["state"] == "running" for i in infos)

    _until("both federations recovered", 180, recovered)
    for fed in (v2, v1):
        info = _info(gw, fed)
        assert info["recovery"]["state"] == "done" and info["recovery"]["error"] is None
        assert info["recovery"]["items_done"] == info["recovery"]["items_total"] > 0
    # v2: the contract in flight found in the session history and claimed, nothing else
    claims = "SELECT amount_msat FROM operations WHERE kind = 'lnv2_claim' AND state = 'done'"
    _until("the contract in flight claimed", 120, lambda: _wallet_rows(tree, v2, claims))
    ((claim_msat,),) = _wallet_rows(tree, v2, claims)
    assert IN_FLIGHT_MSAT < claim_msat <= IN_FLIGHT_MSAT * 101 // 100  # the invoice and our 1 %
    # what the wallet held once the receive was funded, and the claim: every msat
    assert gw.balance(v2) == lost["receive"]["funded_msat"] + claim_msat
    assert _wallet_rows(tree, v2, "SELECT state FROM lnv2_sends") == [("claimed",)]
    # the receive we had funded: its preimage decrypted again, alice's HTLC (held by our node
    # all along) settled with it
    world = World(tree["regtest"])
    _alice_paid(world, lost["receive"])
    query = "SELECT state, htlc IS NOT NULL FROM lnv2_receives"
    assert _wallet_rows(tree, v2, query) == [("decrypted", 1)]
    # v1 the same: the LNv1 contract (the invoice and our fee) claimed less the ln module's
    # input fee, as change notes by the mint's rule; nothing else
    v1_claims = "SELECT outputs FROM operations WHERE kind = 'lnv1_claim' AND state = 'done'"
    _until("the LNv1 contract in flight claimed", 120, lambda: _wallet_rows(tree, v1, v1_claims))
    fees = _info(gw, v1)["registration"]["fees"]
    contract = IN_FLIGHT_MSAT + lnv1_fee_msat(
        fees["base_msat"], fees["proportional_millionths"], IN_FLIGHT_MSAT
    )
    sends = _wallet_rows(tree, v1, "SELECT amount_msat, state, preimage FROM lnv1_sends")
    assert sends == [(contract, "claimed", lost["v1_preimage"])]
    config = parse_client_config(federation1_v1.client_config)
    ln = Lnv1Config.from_bytes(config.modules[config.module_id("ln")].body)
    v1_credit = credit_for(federation1_v1, contract - ln.contract_input_fee_msat)
    v1_base = lost["v1_receive"]["funded_msat"]  # what the wallet held once it funded
    assert gw.balance(v1) == v1_base + v1_credit
    # the LNv1 receive we had funded: decrypted again, alice's HTLC (held by our node, then by
    # the router for the virtual scid no federation had until v1's recovery) settled with it
    _alice_paid(world, lost["v1_receive"])
    query = "SELECT state, htlc != '', amount_msat FROM lnv1_receives"
    assert _wallet_rows(tree, v1, query) == [("decrypted", 1, V1_RECEIVE_MSAT)]
    for fed in (v2, v1):
        assert _info(gw, fed)["recovery"]["modules"]["session_history"]["done"]
    assert _info(gw, v1)["in_flight"] == _info(gw, v2)["in_flight"] == 0
    # mint v1's note indexes as before (every index handed out was used) and past them the
    # claim's change notes; the peg-in tweak index past the last one used (1, the unconfirmed
    # deposit's: it is not on the federation's log) is the crate's 0 + 8
    indexes = _key_indexes(tree, v1)
    indexes_then = lost["v1_receive"]["indexes"]
    notes_before = {k: n for k, n in indexes_then.items() if k.startswith("mint_v1")}
    ((outputs,),) = _wallet_rows(tree, v1, v1_claims)
    for o in json.loads(outputs):
        name = f"{NOTE_INDEX}{1 << o['d']}"
        notes_before[name] = notes_before.get(name, 0) + 1
    assert {k: n for k, n in indexes.items() if k.startswith("mint_v1")} == notes_before
    assert indexes["wallet_v1_tweak"] == 8
    assert _until("/health ready", 60, lambda: gw.http.get("/health").status_code == 200)

    # the deposit sent before the loss is found on chain and claimed once it confirms
    def claimed() -> bool:
        bitcoind.mine(1)
        return gw.balance(v1) > v1_base + v1_credit

    _until("the unconfirmed peg-in claimed", 300, claimed)
    credit = credit_for(federation1_v1, PENDING_SAT * 1000 - PEG_IN_FEE_MSAT)
    assert gw.balance(v1) == v1_base + v1_credit + credit
    # walletv2 too: its seeded address is watched again, its deposit claimed once
    v2_deposit = {"federation_id": v2, "operation_id": lost["v2_address"]}

    def v2_claimed() -> dict | None:
        bitcoind.mine(1)
        answer = gw.http.post("/deposit", json=v2_deposit)
        return answer.json() if answer.status_code == 200 else None

    got = _until("the unconfirmed walletv2 peg-in claimed", 300, v2_claimed)
    assert 0 < got["credited_msat"] < PENDING_SAT * 1000
    assert gw.balance(v2) == lost["receive"]["funded_msat"] + claim_msat + got["credited_msat"]

    # a second recovery of a federation this data folder knows: refused in one line
    again = _cli(tree, "connect-fed", "--recover", federation1.invite_code)
    assert again.returncode == 2, again
    assert "is known to this gateway" in again.stderr and again.stderr.count("\n") <= 1


def test_recovered_notes_are_good(
    tree: dict,  # noqa: F811
    lost: dict,
    federation1: Federation,
    user: User,
) -> None:
    """After the recovery the notes are the federation's: a user takes them. The user whose
    send was in flight at the loss, back online, sees it succeed with bob's preimage."""
    gw = Gateway(tree)
    fed = federation1.federation_id
    sent = user("module", "lnv2", "await-send", lost["in_flight"]["operation"])
    assert sent == {"Success": lost["in_flight"]["preimage"]}
    assert user("module", "lnv2", "await-receive", lost["receive"]["operation"]) == "Claimed"
    got = lost["v1_user"]("await-invoice", lost["v1_receive"]["operation"])
    assert isinstance(got, dict) and "total_amount_msat" in got, got
    before = gw.balance(fed)
    spent = gw.post("/spend_ecash", {"federation_id": fed, "amount_msat": 30_000})
    assert user("module", "mintv2", "receive", spent["notes"]) == "Success"
    assert gw.balance(fed) <= before - spent["amount_msat"]
