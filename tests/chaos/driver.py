"""The chaos run: mixed payments through our gateway while processes die, and the books after.

Payments (op n's kind and amount drawn from the seed and n alone, so a seed names the same
payments whatever the threads' order):
  ln_send     a user pays bob's invoice through us (`module lnv2 send --gateway`, `await-send`)
  ln_receive  a user receives through us, alice's lnd paying (`module lnv2 receive`, `await-receive`)
  swap        a user of one federation pays a user of the other through us
  ecash_in    a user's e-cash to us (/receive_ecash, idempotent by its notes)
  ecash_out   our e-cash to a user (/spend_ecash with an idempotency key, then `mintv2 receive`)
  peg_in      bitcoind pays our peg-in address, claimed (/address, /deposit)
  withdraw    we send to a bitcoind address (/withdraw with an idempotency key)
Each ends settled or failed (a definite failure: nothing moved); anything else fails the run.

Meanwhile the killer, every 1-4 s (its own draws from the seed): SIGKILL to the router, an
actor, the API front (its gunicorn master or a worker) or the Lightning extension (supervisord
starts it again), or one guardian of the 4-guardian federation stopped as by a crash and
started again a few seconds later (3 of 4 keep the threshold).

The books, before and after, to the msat: lnd's channel balances of alice, the gateway node and
bob, the users' e-cash (fedimint-cli `info`), ours per federation (/info, our own records) and
each federation's net assets without its on-chain module (the guardians' `audit`: fees
collected, less notes and contracts outstanding; the wallet module's holdings move with
peg-ins and withdrawals, which enter and leave from outside). Their sum is the same at the end
as at the start: no e-cash credited twice or lost, no Lightning payment without its contract.
Also: no HTLC left pending on any channel; bob's invoices settled are exactly the ln_send and
their preimages; alice's payments succeeded are exactly the ln_receive settled."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from peers.harness.fedimintd import Federation

from .world import USER_FED, ChaosWorld

WEIGHTS = {
    "ln_send": 30,
    "ln_receive": 22,
    "swap": 10,
    "ecash_in": 16,
    "ecash_out": 16,
    "peg_in": 2,
    "withdraw": 4,
}
TARGETS = ("router", "actor", "api", "extension", "guardian")
# what marks each target's processes in their command line (under our gateway's session)
MARKS = {
    "router": "gateway-router",
    "actor": "gateway-actor",
    "api": "gunicorn",  # deploy.api_front execs gunicorn: its master and workers
    "extension": "gateway-lnrpc-extension",
}
WALLET_KINDS = ("walletv2", "wallet")


@dataclass
class Op:
    """One payment of the run; `detail` is one line."""

    n: int
    kind: str
    user: str
    fed: str
    msat: int
    state: str = "pending"  # -> settled | failed (definite: nothing moved)
    detail: str = ""
    invoice_hash: str = ""  # ln_send: bob's; ln_receive: the user's (alice paid it)
    took_s: float = 0.0


def payee_of(payer: str) -> str:
    """A swap's payee: a user of the other federation."""
    return "c" if USER_FED[payer] == "four" else "a"


def draw(seed: int, n: int) -> tuple[str, int, str]:
    """Op n's kind, amount (msat) and user."""
    rng = random.Random(seed * 1_000_003 + n)
    kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    user = rng.choice(sorted(USER_FED))
    if kind in ("ln_send", "ln_receive", "swap"):
        return kind, rng.randint(1, 40) * 1_000_000 // 4, user  # whole sats: lnd counts in sat
    if kind in ("peg_in", "withdraw"):
        return kind, rng.randint(20, 60) * 1_000_000, user
    return kind, rng.randint(1_000, 30_000_000), user


class Killer(threading.Thread):
    def __init__(self, world: ChaosWorld, seed: int, period: tuple[float, float] = (1.0, 4.0)):
        super().__init__(name="chaos-killer", daemon=True)
        self.world, self.rng, self.period = world, random.Random(seed), period
        self.stop_event = threading.Event()
        self.done: Counter[str] = Counter()
        self.missed: Counter[str] = Counter()  # drawn while none of its processes ran
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.wait(self.rng.uniform(*self.period)):
                target = self.rng.choice(TARGETS)
                if target == "guardian":
                    self._guardian_down(self.world.feds["four"])
                else:
                    pids = processes(self.world.leader, MARKS[target])
                    if pids:
                        os.kill(self.rng.choice(pids), signal.SIGKILL)
                        self.done[target] += 1
                    else:
                        self.missed[target] += 1
        except BaseException as exc:  # reported by the driver
            self.error = exc

    def _guardian_down(self, fed: Federation) -> None:
        g = self.rng.choice(fed.guardians)
        g.kill()
        self.done["guardian"] += 1
        self.stop_event.wait(self.rng.uniform(2.0, 6.0))
        g.start()
        g.wait_answering(60)


def processes(session: int, mark: str) -> list[int]:
    """Pids of the session's processes whose command line holds `mark`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session and mark in cmdline and fields[0] != "Z":
            found.append(int(entry.name))
    return found


class Driver:
    def __init__(self, world: ChaosWorld, seed: int, payments: int) -> None:
        self.world, self.seed, self.payments = world, seed, payments
        self.ops: list[Op] = []
        self.next_n = 0
        self.lock = threading.Lock()
        self.user_locks = {u: threading.Lock() for u in world.users}
        self.errors: list[BaseException] = []

    # --- the ops -------------------------------------------------------------------------
    def _cli(self, user: str, *args: str) -> object:
        return self.world.users[user](*args)

    def ln_send(self, op: Op) -> None:
        bob = self.world.lnd.node("bob")
        inv = bob.cli("addinvoice", f"--amt_msat={op.msat}")
        op.invoice_hash = inv["r_hash"]
        try:
            started = str(
                self._cli(
                    op.user,
                    "module",
                    "lnv2",
                    "send",
                    inv["payment_request"],
                    "--gateway",
                    self.world.lnv2_url[op.fed],
                )
            )
        except AssertionError as exc:  # refused before any contract was funded
            op.state, op.detail = "failed", str(exc)[:300]
            return
        outcome = self._cli(op.user, "module", "lnv2", "await-send", started)
        ok = isinstance(outcome, dict) and "Success" in outcome
        op.state, op.detail = ("settled" if ok else "failed"), json.dumps(outcome)[:300]

    def ln_receive(self, op: Op) -> None:
        try:
            invoice, started = self._cli(  # type: ignore[misc]
                op.user,
                "module",
                "lnv2",
                "receive",
                str(op.msat),
                "--gateway",
                self.world.lnv2_url[op.fed],
            )
        except AssertionError as exc:
            op.state, op.detail = "failed", str(exc)[:300]
            return
        alice = self.world.lnd.node("alice")
        op.invoice_hash = alice.cli("decodepayreq", str(invoice))["payment_hash"]
        paid = alice.lncli(
            "payinvoice", "--force", "--json", "--timeout=120s", str(invoice), timeout=240
        )
        status = json.loads(paid.stdout).get("status") if paid.stdout.strip() else None
        if status != "SUCCEEDED":
            op.state, op.detail = "failed", (paid.stdout or paid.stderr)[-300:]
            return
        outcome = self._cli(op.user, "module", "lnv2", "await-receive", str(started))
        op.state = "settled" if outcome == "Claimed" else "unknown"
        op.detail = json.dumps(outcome)[:300]

    def swap(self, op: Op) -> None:
        payer, payee = op.user, payee_of(op.user)
        try:
            invoice, receive_op = self._cli(  # type: ignore[misc]
                payee,
                "module",
                "lnv2",
                "receive",
                str(op.msat),
                "--gateway",
                self.world.lnv2_url[USER_FED[payee]],
            )
        except AssertionError as exc:
            op.state, op.detail = "failed", str(exc)[:300]
            return
        try:
            started = str(
                self._cli(
                    payer,
                    "module",
                    "lnv2",
                    "send",
                    str(invoice),
                    "--gateway",
                    self.world.lnv2_url[op.fed],
                )
            )
        except AssertionError as exc:
            op.state, op.detail = "failed", str(exc)[:300]
            return
        sent = self._cli(payer, "module", "lnv2", "await-send", started)
        if not (isinstance(sent, dict) and "Success" in sent):
            op.state, op.detail = "failed", json.dumps(sent)[:300]
            return
        got = self._cli(payee, "module", "lnv2", "await-receive", str(receive_op))
        op.state = "settled" if got == "Claimed" else "unknown"
        op.detail = json.dumps(got)[:300]

    def ecash_in(self, op: Op) -> None:
        notes = str(self._cli(op.user, "module", "mintv2", "send", str(op.msat)))
        r = self.world.gateway.post("/receive_ecash", {"notes": notes}, admin=False)
        if r.status_code == 200:
            op.state = "settled"
            return
        op.detail = f"{r.status_code} {r.text[:200]}"
        self._cli(op.user, "module", "mintv2", "receive", notes)  # the user takes them back
        op.state = "failed"

    def ecash_out(self, op: Op) -> None:
        body = {
            "federation_id": self.world.feds[op.fed].federation_id,
            "amount_msat": op.msat,
            "idempotency_key": f"chaos-{self.seed}-{op.n}",
        }
        r = self.world.gateway.post("/spend_ecash", body)
        if r.status_code != 200:
            op.state, op.detail = "failed", f"{r.status_code} {r.text[:200]}"
            return
        got = self._cli(op.user, "module", "mintv2", "receive", r.json()["notes"])
        op.state, op.detail = ("settled" if got == "Success" else "unknown"), json.dumps(got)

    def peg_in(self, op: Op) -> None:
        gw, node = self.world.gateway, self.world.bitcoind
        fid = self.world.feds[op.fed].federation_id
        address = gw.ok("/address", {"federation_id": fid})["address"]
        node.send(address, op.msat // 1000)
        node.mine(21)
        deadline = time.monotonic() + 300
        while (r := gw.post("/deposit", {"federation_id": fid})).status_code == 409:
            assert time.monotonic() < deadline, f"peg-in {op.n}: not claimed: {r.text}"
            node.mine(1)
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        op.state, op.detail = "settled", json.dumps(r.json())[:300]

    def withdraw(self, op: Op) -> None:
        body = {
            "federation_id": self.world.feds[op.fed].federation_id,
            "amount": op.msat // 1000,
            "address": self.world.bitcoind.new_address("bech32"),
            "idempotency_key": f"chaos-{self.seed}-{op.n}",
        }
        r = self.world.gateway.post("/withdraw", body)
        op.state = "settled" if r.status_code == 200 else "failed"
        op.detail = f"{r.status_code} {r.text[:200]}"

    # --- running them ----------------------------------------------------------------------
    def _take(self) -> Op | None:
        with self.lock:
            if self.next_n >= self.payments:
                return None
            n, self.next_n = self.next_n, self.next_n + 1
        kind, msat, user = draw(self.seed, n)
        op = Op(n, kind, user, USER_FED[user], msat)
        with self.lock:
            self.ops.append(op)
        return op

    def _worker(self) -> None:
        try:
            while (op := self._take()) is not None:
                t = time.monotonic()
                # one fedimint-cli command at a time per user (its database is locked)
                users = sorted({op.user, payee_of(op.user)} if op.kind == "swap" else {op.user})
                with contextlib.ExitStack() as held:
                    for u in users:
                        held.enter_context(self.user_locks[u])
                    getattr(self, op.kind)(op)
                op.took_s = round(time.monotonic() - t, 2)
        except BaseException as exc:
            self.errors.append(exc)

    def run(self, threads: int) -> None:
        workers = [threading.Thread(target=self._worker, name=f"chaos-{i}") for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if self.errors:
            raise self.errors[0]

    def report(self) -> dict:
        return {"ops": [asdict(o) for o in sorted(self.ops, key=lambda o: o.n)]}
