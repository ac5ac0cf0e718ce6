"""docs/operating.md, followed: the guide's own commands (its `<!-- guide-step -->` blocks, run
by bash as written, with the test's values in `$VARIABLES`) deploy the gateway alone under
supervisord (deploy/gateway.conf) beside a real lnd (btcd regtest, `--requireinterceptor`, a
macaroon baked as the guide says), connect it to a real fedimintd federation, fund it by peg-in,
have the guardians add it for LNv2 and set its fees. Then a real fedimint-cli user receives
(alice pays from her lnd) and sends (to bob's lnd) through it, amounts exact; and both again with
the extension killed (kill -9) mid-payment: each payment ends settled once, no HTLC is left.
A stranger on the machine gets nothing from the deployed extension (no TCP port answers; its
unix socket is the gateway user's alone). Then a reboot (everything stopped, the run folder
lost) and supervisord killed outright: each time the next start serves every federation again,
from the router's database alone; a backup made while it runs is restored on a lost disk. And a
deployment of the previous release upgraded in place. (The guide's steps that need no node:
test_operating_guide_offline.py; the deployment itself: guide_world.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bus.dedup import REPLIES_DB
from fmclient.wallet import WALLET_DB
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation
from peers.harness.lnd import LndWorld
from peers.harness.procs import pid_alive
from services.actor.store import ACTOR_DB
from services.router.registry import ROUTER_DB
from services.router.supervisor import stop_and_wait
from tests.private_files import API_SECRETS, environ, loose_entries
from tests.strangers import assert_strangers_get_nothing

from .conftest import User
from .guide_world import REPO, Guide, deployment, health_ready, stop_gateway
from .test_gateway_fedimint import Gateway, _until

pytestmark = pytest.mark.timeout(900)
RECEIVE_FEE_PPM = SEND_FEE_PPM = 5_000  # the guide's `set-fees` step


@pytest.fixture
def deployed(lnd: LndWorld, tmp_path: Path) -> Iterator[dict]:
    """The gateway deployed by the guide's steps, up to `run`; stopped with SIGTERM after."""
    with deployment(lnd, tmp_path) as done:
        yield done


def _pid(rpc, program: str) -> int:  # type: ignore[no-untyped-def]
    return int(rpc.supervisor.getProcessInfo(program)["pid"])


def _kill_9(rpc, program: str) -> None:  # type: ignore[no-untyped-def]
    pid = _pid(rpc, program)
    os.kill(pid, signal.SIGKILL)
    _until(f"{program} restarted", 60, lambda: _pid(rpc, program) not in (0, pid))


def _keep(into: dict, work) -> None:  # type: ignore[no-untyped-def]
    try:
        into.update(work())
    except BaseException as exc:
        into["error"] = repr(exc)


class Books:
    """The gateway's e-cash and channel balance, and the user's e-cash, before a payment."""

    def __init__(self, gw: Gateway, fed: str, user: User) -> None:
        user("dev", "wait-complete")
        self.gw, self.fed, self.user = gw, fed, user
        self.ecash, self.ln = gw.balance(fed), _local_msat(gw)
        self.user_msat = int(user("info")["total_amount_msat"])  # type: ignore[index]

    def received(self, amount: int) -> None:
        contract = amount - amount * RECEIVE_FEE_PPM // 1_000_000
        _until("the channel settled", 30, lambda: _local_msat(self.gw) - self.ln == amount)
        spent = self.ecash - self.gw.balance(self.fed)
        assert contract + 1_000 <= spent <= contract + 1_000 + 100 * 40 + 512, spent
        self.user("dev", "wait-complete")
        got = int(self.user("info")["total_amount_msat"]) - self.user_msat  # type: ignore[index]
        assert contract - 1_000 - 100 * 30 - 512 <= got <= contract - 1_000, got

    def sent(self, amount: int) -> None:
        contract = amount + amount * SEND_FEE_PPM // 1_000_000
        _until("the channel settled", 30, lambda: self.ln - _local_msat(self.gw) >= amount)
        paid = self.ln - _local_msat(self.gw)
        assert amount <= paid <= amount + 10_000, paid  # the invoice and the route's fee, once
        low, high = contract - 1_000 - 100 * 30 - 512, contract - 1_000
        _until("the claim", 60, lambda: self.gw.balance(self.fed) - self.ecash >= low)
        claimed = self.gw.balance(self.fed) - self.ecash
        assert low <= claimed <= high, (low, claimed, high)


def _local_msat(gw: Gateway) -> int:
    """Our channels' local side (waits for an extension that is restarting)."""
    r = _until(
        "the extension answering",
        60,
        lambda: (x := gw.http.post("/lightning", json={})).is_success and x,
    )
    return int(r.json()["balances"]["lightning_balance_msat"])


def test_the_operating_guide_on_a_real_lnd(
    deployed: dict,
    lnd: LndWorld,
    federation1: Federation,
    federation1_v1: Federation,
    user: User,
    bitcoind: Bitcoind,
    tmp_path: Path,
) -> None:
    guide: Guide = deployed["guide"]
    gw = Gateway({"api_url": deployed["url"], "password": deployed["password"]})
    gw_node, alice, bob = (lnd.node(n) for n in ("gateway", "alice", "bob"))
    info = guide.run("info")
    assert gw_node.pubkey in info and "regtest" in info
    # only the gateway may call the extension: a stranger on the machine gets nothing
    assert_strangers_get_nothing(
        _pid(deployed["rpc"], "gateway-lnrpc-extension"), deployed["run_dir"]
    )
    fed = federation1.federation_id
    connected = json.loads(guide.run("connect", INVITE_CODE=federation1.invite_code))
    assert connected["federation_id"] == fed
    # e-cash by peg-in, as the guide says: an address, bitcoin to it, the claim once confirmed
    address = json.loads(guide.run("peg-in-address", FED_ID=fed))["address"]
    bitcoind.send(address, 300_000)
    bitcoind.mine(21)

    def claimed() -> bool:
        try:
            guide.run("peg-in-claim", FED_ID=fed)
            return True
        except AssertionError:
            bitcoind.mine(1)
            return False

    _until("the peg-in claimed", 120, claimed)
    assert gw.balance(fed) >= 290_000_000
    url = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fed)[
        "lnv2_gateway_url"
    ]
    for g in federation1.guardians:  # each guardian, with its own password
        out = guide.run(
            "guardian-add",
            CLIENT_DIR=str(user.data_dir),
            PEER_ID=str(g.peer_id),
            GUARDIAN_PASSWORD=g.password,
            PUBLIC_URL=url,
        )
        assert out.strip() in ("true", "false")
    guide.run("fees", FED_ID=fed)
    routing = gw.public("/routing_info", fed)
    assert routing["receive_fee"] == {"base": 0, "parts_per_million": RECEIVE_FEE_PPM}
    assert routing["send_fee_default"] == {"base": 0, "parts_per_million": SEND_FEE_PPM}

    # a receive: the user's invoice (the client finds us through the guardians), alice pays it
    books = Books(gw, fed, user)
    invoice, op = user("module", "lnv2", "receive", "100000")  # type: ignore[misc]
    paid = alice.cli("payinvoice", "--force", "--json", "--timeout=60s", str(invoice), timeout=90)
    assert paid["status"] == "SUCCEEDED", paid
    assert user("module", "lnv2", "await-receive", str(op)) == "Claimed"
    books.received(100_000)

    # a send: bob's invoice, paid by the user through us
    books = Books(gw, fed, user)
    bob_inv = bob.cli("addinvoice", "--amt_msat=60000")
    send = str(user("module", "lnv2", "send", bob_inv["payment_request"]))
    result = user("module", "lnv2", "await-send", send)
    assert bob.cli("lookupinvoice", bob_inv["r_hash"])["state"] == "SETTLED"
    assert result == {"Success": bob.cli("lookupinvoice", bob_inv["r_hash"])["r_preimage"]}
    books.sent(60_000)

    rpc = deployed["rpc"]
    actor = connected["program"]
    # a receive whose HTLC our lnd holds while the extension is killed (the actor stopped so it
    # cannot answer first): the restarted extension finds the hold invoice, the HTLC is settled
    books = Books(gw, fed, user)
    invoice, op = user("module", "lnv2", "receive", "90000")  # type: ignore[misc]
    ph = alice.cli("decodepayreq", str(invoice))["payment_hash"]
    actor_pid = _pid(rpc, actor)
    os.kill(actor_pid, signal.SIGSTOP)
    outcome: dict = {}
    payer = threading.Thread(
        target=_keep,
        args=(
            outcome,
            lambda: alice.cli(
                "payinvoice", "--force", "--json", "--timeout=180s", str(invoice), timeout=240
            ),
        ),
    )
    payer.start()
    try:
        _until(
            "the HTLC held by our lnd",
            60,
            lambda: gw_node.cli("lookupinvoice", ph)["state"] == "ACCEPTED",
        )
        time.sleep(1)  # the router has asked the (stopped) actor
        _kill_9(rpc, "gateway-lnrpc-extension")
    finally:
        os.kill(actor_pid, signal.SIGCONT)
    payer.join(240)
    assert outcome.get("status") == "SUCCEEDED", outcome
    assert user("module", "lnv2", "await-receive", str(op)) == "Claimed"
    assert gw_node.cli("lookupinvoice", ph)["state"] == "SETTLED"
    books.received(90_000)

    # a send whose payment bob holds while the extension is killed; bob settles; the payment is
    # found settled, answered and claimed once
    books = Books(gw, fed, user)
    preimage = os.urandom(32)
    held = bob.cli("addholdinvoice", hashlib.sha256(preimage).hexdigest(), "--amt_msat=80000")
    send = str(user("module", "lnv2", "send", held["payment_request"]))
    waited: dict = {}
    waiter = threading.Thread(
        target=_keep,
        args=(waited, lambda: {"result": user("module", "lnv2", "await-send", send, timeout=300)}),
    )
    waiter.start()
    ph = hashlib.sha256(preimage).hexdigest()
    _until("bob holding the HTLC", 60, lambda: bob.cli("lookupinvoice", ph)["state"] == "ACCEPTED")
    _kill_9(rpc, "gateway-lnrpc-extension")
    bob.cli("settleinvoice", preimage.hex())
    waiter.join(300)
    assert waited.get("result") == {"Success": preimage.hex()}, waited
    books.sent(80_000)
    assert all(c["pending_htlcs"] == [] for c in gw_node.cli("listchannels")["channels"])

    status = guide.run("status", GATEWAY_RUN_DIR=str(deployed["data_dir"].parent / "run"))
    for program in ("gateway-router", "gateway-api", "gateway-lnrpc-extension", actor):
        assert re.search(rf"^{program}\s+RUNNING", status, re.M), status
    # monitoring as the guide says: /health ready (once the restarted extension's interceptor
    # is attached), /metrics with the token
    _until("/health ready again", 30, lambda: health_ready(deployed["url"]))
    metrics = httpx.get(
        deployed["url"] + "/metrics",
        headers={"Authorization": f"Bearer {deployed['metrics_token']}"},
        timeout=10,
    ).text
    assert "gateway_lightning_extension_connected 1.0" in metrics

    # secrets and files stay private: run and data folders 0700 throughout, files 0600, though
    # the gateway was started under umask 002; only the API front holds its secrets
    base = deployed["data_dir"].parent
    assert loose_entries(base / "run") == [] and loose_entries(base / "data") == []
    pids = {p["name"]: p["pid"] for p in rpc.supervisor.getAllProcessInfo() if p["pid"]}
    assert set(API_SECRETS) <= set(environ(pids.pop("gateway-api")))
    assert {n: set(API_SECRETS) & set(environ(pid)) for n, pid in pids.items()} == {
        n: set() for n in pids
    }

    # a reboot: a v1 federation served too; everything stopped as systemd stops the unit, the
    # run folder lost (tmpfs): started again, the router starts both actors from its database
    v1 = json.loads(guide.run("connect", INVITE_CODE=federation1_v1.invite_code))
    balances = {fed: gw.balance(fed), v1["federation_id"]: gw.balance(v1["federation_id"])}
    stop_gateway(deployed["procs"][-1])
    subprocess.run(["rm", "-rf", str(deployed["run_dir"])], check=True)
    deployed["start"]()  # /health ready: the extension and every federation's actor answer
    _served(deployed, gw, balances, actor, v1["program"])
    # an actor's program removed by hand: connect-fed again starts it (nothing else changes)
    rpc = deployed["rpc"]
    stop_and_wait(rpc, v1["program"])
    rpc.supervisor.removeProcessGroup(v1["program"])
    _until("/health degraded", 30, lambda: not health_ready(deployed["url"]))
    again = json.loads(guide.run("connect", INVITE_CODE=federation1_v1.invite_code))
    assert (again["scid"], again["state"]) == (v1["scid"], "running")
    _served(deployed, gw, balances, actor, v1["program"])

    # supervisord killed outright (SIGKILL, the OOM killer): its programs end with it (none is
    # left running beside the next ones), and the next start serves every federation again
    old = {p["name"]: p["pid"] for p in rpc.supervisor.getAllProcessInfo() if p["pid"]}
    os.kill(deployed["procs"][-1].pid, signal.SIGKILL)
    deployed["procs"][-1].wait(10)
    _until("its programs ended", 30, lambda: not [p for p in old.values() if pid_alive(p)])
    deployed["start"]()
    _served(deployed, gw, balances, actor, v1["program"])
    new = {p["name"]: p["pid"] for p in rpc.supervisor.getAllProcessInfo() if p["pid"]}
    assert set(new) == set(old) and not set(new.values()) & set(old.values())

    # a lost disk (section 8): backup, data folder gone, restore, start
    _lose_the_disk_and_restore(deployed, gw, balances, tmp_path)


def _served(deployed: dict, gw: Gateway, balances: dict[str, int], *programs: str) -> None:
    """Every federation served after a start: its actor program running and answering (its
    e-cash balance, unchanged), /health ready."""

    def running() -> bool:  # an actor may answer before supervisord's startsecs has passed
        status = deployed["guide"].run("status", GATEWAY_RUN_DIR=str(deployed["run_dir"]))
        return all(re.search(rf"^{p}\s+RUNNING", status, re.M) for p in programs)

    _until("the actors' programs RUNNING", 10, running)
    assert {fed: gw.balance(fed) for fed in balances} == balances
    health = httpx.get(deployed["url"] + "/health", timeout=5).json()
    assert health["status"] == "ready" and set(health["federations"]) == set(balances), health


def _lose_the_disk_and_restore(
    deployed: dict, gw: Gateway, balances: dict[str, int], tmp_path: Path
) -> None:
    """The guide's backup while the gateway runs; the gateway stopped and its data folder lost
    (left empty, as systemd's StateDirectory= makes it); the guide's restore with the seed's
    words on stdin (other words first: refused, nothing written); started again: every
    federation's e-cash the same to the msat, every federation served."""
    guide: Guide = deployed["guide"]
    (steady,) = _until("settled balances", 60, lambda: _steady(gw, balances))
    backups = tmp_path / "backups"
    backups.mkdir()
    made = json.loads(guide.run("backup", BACKUP_DIR=str(backups)))
    assert _balances(gw, balances) == steady  # nothing moved while it was made
    backup = Path(made["file"])
    assert backup.parent == backups and backup.stat().st_size == made["size"]
    data_dir = deployed["data_dir"]
    dbs = [p for p in data_dir.rglob("*.sqlite")]
    assert made["files"] >= len(dbs) + 2 >= 8  # the seed, the session secret, each database
    assert b"SQLite format 3" not in backup.read_bytes()  # encrypted
    words = (data_dir / "gateway-seed").read_text()
    deployed["stop"]()
    shutil.rmtree(data_dir)
    data_dir.mkdir(mode=0o700)
    other = " ".join(["abandon"] * 11 + ["about"])  # valid words, another seed
    with pytest.raises(AssertionError, match="not the seed this backup was made with"):
        guide.run("restore", stdin=other + "\n", BACKUP_FILE=str(backup))
    assert list(data_dir.iterdir()) == []
    restored = json.loads(guide.run("restore", stdin=words, BACKUP_FILE=str(backup)))
    assert restored["files"] == made["files"]
    assert sorted(data_dir.rglob("*.sqlite")) == sorted(dbs)
    deployed["start"]()
    assert _balances(gw, balances) == steady
    states = {f["federation_id"]: f["state"] for f in gw.post("/info", {})["federations"]}
    assert states == dict.fromkeys(balances, "running")


def _balances(gw: Gateway, feds: dict[str, int]) -> dict[str, int]:
    return {fed: gw.balance(fed) for fed in feds}


def _steady(gw: Gateway, feds: dict[str, int]) -> tuple[dict[str, int]] | None:
    """The federations' e-cash balances, once two readings a second apart agree (change being
    reissued has come in)."""
    first = _balances(gw, feds)
    time.sleep(1)
    return (first,) if _balances(gw, feds) == first else None


# the last release before schema versions: every database it made is version 1 (no user_version)
PREVIOUS_RELEASE = "04c549e"


def _release(commit: str, folder: Path) -> Path:
    """The source of `commit`, as a checkout of that release (git archive)."""
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True, timeout=60
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True, timeout=60)
    return folder


def _versions(data_dir: Path) -> dict[str, int]:
    out = {}
    for path in sorted(data_dir.rglob("*.sqlite")):
        db = sqlite3.connect(path)
        try:
            out[str(path.relative_to(data_dir))] = db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
    return out


def test_an_upgrade_of_a_deployment_made_by_the_previous_schema(
    lnd: LndWorld, federation1: Federation, user: User, tmp_path: Path
) -> None:
    """The previous release (PREVIOUS_RELEASE, before schema versions) deployed by its own
    guide, serving the federation with e-cash; stopped; this release started on its folders
    (docs/operating.md, section 10): every database carries its schema's version, the router's
    migrated (its federations' order kept apart from their scids) after a copy of it as it
    was, the e-cash is the same to the msat, and the federation is served."""
    previous = _release(PREVIOUS_RELEASE, tmp_path / "previous")
    fed = federation1.federation_id
    with deployment(lnd, tmp_path, src=previous) as deployed:
        gw = Gateway({"api_url": deployed["url"], "password": deployed["password"]})
        connected = json.loads(
            deployed["guide"].run("connect", INVITE_CODE=federation1.invite_code)
        )
        assert connected["federation_id"] == fed
        got = gw.public("/receive_ecash", {"notes": str(user("module", "mintv2", "send", "30000"))})
        (steady,) = _until("a settled balance", 60, lambda: _steady(gw, {fed: 0}))
        balance = steady[fed]
        assert balance == got["amount_msat"] > 0
        deployed["stop"]()
        actor = f"actors/{fed[:16]}"
        made = {
            "router.sqlite": 0,
            f"{actor}/actor.sqlite": 0,
            f"{actor}/bus-replies.sqlite": 0,
            f"{actor}/fedimint.sqlite": 0,
        }
        assert _versions(deployed["data_dir"]) == made
        env = {k: v for k, v in deployed["guide"].env.items() if k != "PYTHONPATH"}
        deployed["start"](Guide(env))  # this release, on the previous one's folders
        assert _versions(deployed["data_dir"]) == {
            "router.sqlite": ROUTER_DB.version,
            f"{actor}/actor.sqlite": ACTOR_DB.version,
            f"{actor}/bus-replies.sqlite": REPLIES_DB.version,
            f"{actor}/fedimint.sqlite": WALLET_DB.version,
        }
        data = deployed["data_dir"]
        assert list(data.rglob("*.bak")) == [data / "router.sqlite.v1.bak"]
        assert gw.balance(fed) == balance
        more = gw.public(
            "/receive_ecash", {"notes": str(user("module", "mintv2", "send", "20000"))}
        )
        assert gw.balance(fed) == balance + more["amount_msat"]
