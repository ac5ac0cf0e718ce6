"""The chaos run: mixed payments through our gateway while processes die, and the books after.

Payments (op n's kind and amount drawn from the seed and n alone, so a seed names the same
payments whatever the threads' order):
  ln_send     a user pays bob's invoice through us (`module lnv2 send --gateway`, `await-send`;
              the user of the v1 federation by LNv1: `ln-pay --gateway-id`)
  ln_receive  a user receives through us, alice's lnd paying (`module lnv2 receive`,
              `await-receive`; by LNv1 `ln-invoice`, `await-invoice`)
  swap        a user of one federation pays a user of another through us
  ecash_in    a user's e-cash to us (/receive_ecash, idempotent by its notes)
  ecash_out   our e-cash to a user (/spend_ecash with an idempotency key, then `mintv2 receive`)
  peg_in      bitcoind pays our peg-in address, claimed (/address, /deposit)
  withdraw    we send to a bitcoind address (/withdraw with an idempotency key)
Each ends settled or failed (a definite failure: nothing moved); anything else fails the run.

Meanwhile the killer, after every 1-2 payments ended (its own draws from the seed; at least 1 s
apart; each kind once in every round of five): SIGKILL to the router, an
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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from peers.harness.fedimintd import Federation

from .world import USER_FED, ChaosWorld, peg_in

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
    """A swap's payee: a user of another federation ("d", in "v1", pays by LNv1)."""
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
    """Kills at a pace set by the payments, not the clock: after every `every` (drawn in that
    range) payments ended, and at least `gap_s` after the last kill, then up to a second
    later. A run on a busy machine (the suite's) lasts longer but is killed about as often per
    payment, rather than ever more as it slows down (each restart costing CPU in turn)."""

    def __init__(
        self,
        world: ChaosWorld,
        seed: int,
        ended: Callable[[], int],
        every: tuple[int, int] = (1, 2),
        gap_s: float = 1.0,
    ):
        super().__init__(name="chaos-killer", daemon=True)
        self.world, self.rng, self.ended = world, random.Random(seed), ended
        self.every, self.gap_s = every, gap_s
        self.stop_event = threading.Event()
        self.done: Counter[str] = Counter()
        self.missed: Counter[str] = Counter()  # drawn while none of its processes ran
        self.error: BaseException | None = None

    def _next(self) -> bool:
        """Wait for the next kill's moment; False once stopped."""
        due = self.ended() + self.rng.randint(*self.every)
        if self.stop_event.wait(self.gap_s):
            return False
        while self.ended() < due:
            if self.stop_event.wait(0.1):
                return False
        return not self.stop_event.wait(self.rng.uniform(0.0, 1.0))

    def run(self) -> None:
        targets: list[str] = []
        try:
            while self._next():
                if not targets:  # every kind once in each round of kills, in a drawn order
                    targets = self.rng.sample(TARGETS, len(TARGETS))
                target = targets.pop()
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
    def __init__(
        self, world: ChaosWorld, seed: int, payments: int, progress_every: int = 0
    ) -> None:
        """`progress_every`: print a line each time that many payments have ended (0: never)."""
        self.world, self.seed, self.payments = world, seed, payments
        self.progress_every, self.ended = progress_every, 0
        self.ops: list[Op] = []
        self.next_n = 0
        self.lock = threading.Lock()
        self.user_locks = {u: threading.Lock() for u in world.users}
        self.errors: list[BaseException] = []
        self.stopping = False  # set on Ctrl-C: no more payments are begun

    # --- the ops -------------------------------------------------------------------------
    def _cli(self, user: str, *args: str) -> object:
        return self.world.users[user](*args)

    def _pay(self, op: Op, payer: str, bolt11: str) -> None:
        """`payer` pays `bolt11` through us: LNv2 (`send`, `await-send`), or in "v1" LNv1
        (`ln-pay`, which waits). Settled on the preimage; failed otherwise (refused before a
        contract was funded, or refunded)."""
        try:
            if USER_FED[payer] == "v1":
                outcome = self._cli(
                    payer, "ln-pay", bolt11, "--gateway-id", self.world.lnv1_gateway_id
                )
            else:
                url = self.world.lnv2_url[USER_FED[payer]]
                started = str(self._cli(payer, "module", "lnv2", "send", bolt11, "--gateway", url))
                outcome = self._cli(payer, "module", "lnv2", "await-send", started)
        except AssertionError as exc:
            if "no answer" in str(exc):  # timed out: not a definite failure (reported unknown)
                raise
            op.state, op.detail = "failed", str(exc)[:300]
            return
        ok = isinstance(outcome, dict) and "Success" in outcome
        op.state, op.detail = ("settled" if ok else "failed"), json.dumps(outcome)[:300]

    def _invoice(self, op: Op, payee: str) -> tuple[str, str] | None:
        """An invoice of ours for `payee` (LNv2 `receive`, or LNv1 `ln-invoice`): (bolt11,
        the payee's operation); None (the op failed: nothing made) if refused."""
        try:
            if USER_FED[payee] == "v1":
                made = self._cli(
                    payee,
                    "ln-invoice",
                    "--amount",
                    str(op.msat),
                    "--description",
                    f"chaos {op.n}",
                    "--gateway-id",
                    self.world.lnv1_gateway_id,
                )
                return str(made["invoice"]), str(made["operation_id"])  # type: ignore[index]
            url = self.world.lnv2_url[USER_FED[payee]]
            invoice, started = self._cli(  # type: ignore[misc]
                payee, "module", "lnv2", "receive", str(op.msat), "--gateway", url
            )
            return str(invoice), str(started)
        except AssertionError as exc:
            if "no answer" in str(exc):  # timed out: not a definite failure (reported unknown)
                raise
            op.state, op.detail = "failed", str(exc)[:300]
            return None

    def _claimed(self, op: Op, payee: str, started: str) -> None:
        if USER_FED[payee] == "v1":
            got = self._cli(payee, "await-invoice", started)
            ok = isinstance(got, dict) and "total_amount_msat" in got
        else:
            got = self._cli(payee, "module", "lnv2", "await-receive", started)
            ok = got == "Claimed"
        op.state, op.detail = ("settled" if ok else "unknown"), json.dumps(got)[:300]

    def ln_send(self, op: Op) -> None:
        inv = self.world.lnd.node("bob").cli("addinvoice", f"--amt_msat={op.msat}")
        op.invoice_hash = inv["r_hash"]
        self._pay(op, op.user, inv["payment_request"])

    def ln_receive(self, op: Op) -> None:
        made = self._invoice(op, op.user)
        if made is None:
            return
        invoice, started = made
        alice = self.world.lnd.node("alice")
        op.invoice_hash = alice.cli("decodepayreq", invoice)["payment_hash"]
        paid = alice.lncli(
            "payinvoice", "--force", "--json", "--timeout=120s", invoice, timeout=240
        )
        status = json.loads(paid.stdout).get("status") if paid.stdout.strip() else None
        if status != "SUCCEEDED":
            op.state, op.detail = "failed", (paid.stdout or paid.stderr)[-300:]
            return
        self._claimed(op, op.user, started)

    def swap(self, op: Op) -> None:
        """The user pays a user of another federation through us (no Lightning between)."""
        payee = payee_of(op.user)
        made = self._invoice(op, payee)
        if made is None:
            return
        invoice, started = made
        self._pay(op, op.user, invoice)
        if op.state == "settled":
            self._claimed(op, payee, started)

    def _spend(self, user: str, msat: int) -> str:
        if USER_FED[user] == "v1":
            # mint v1 spends exact notes: an amount they cannot make is rounded up (fedimint-cli
            # refuses it otherwise), as a user would
            spent = self._cli(user, "module", "mint", "spend", str(msat), "--allow-overpay")
            return str(spent["notes"])  # type: ignore[index]
        return str(self._cli(user, "module", "mintv2", "send", str(msat)))

    def _reissue(self, user: str, notes: str) -> bool:
        if USER_FED[user] == "v1":
            return isinstance(self._cli(user, "module", "mint", "reissue", notes), int)
        return self._cli(user, "module", "mintv2", "receive", notes) == "Success"

    def ecash_in(self, op: Op) -> None:
        try:
            notes = self._spend(op.user, op.msat)
        except AssertionError as exc:  # the user's client refused (more than it holds)
            op.state, op.detail = "failed", str(exc)[:300]
            return
        r = self.world.gateway.post("/receive_ecash", {"notes": notes}, admin=False)
        if r.status_code == 200:
            op.state = "settled"
            return
        op.detail = f"{r.status_code} {r.text[:200]}"
        assert self._reissue(op.user, notes), op.detail  # the user takes them back
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
        op.state = "settled" if self._reissue(op.user, r.json()["notes"]) else "unknown"

    def peg_in(self, op: Op) -> None:
        fid = self.world.feds[op.fed].federation_id
        got = peg_in(self.world.gateway, self.world.bitcoind, fid, op.msat // 1000, op.fed == "v1")
        op.state, op.detail = "settled", json.dumps(got)[:300]

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
            if self.next_n >= self.payments or self.stopping:
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
                    try:
                        getattr(self, op.kind)(op)
                    except Exception as exc:  # a payment the run cannot account for: reported
                        op.state, op.detail = "unknown", f"{type(exc).__name__}: {exc}"[:600]
                op.took_s = round(time.monotonic() - t, 2)
                self._ended()
        except BaseException as exc:
            self.errors.append(exc)

    def _ended(self) -> None:
        with self.lock:
            self.ended += 1
            if self.progress_every and self.ended % self.progress_every == 0:
                states = Counter(o.state for o in self.ops)
                print(
                    f"  {time.strftime('%H:%M:%S')}  {self.ended} ended: {dict(states)}", flush=True
                )

    def run(self, threads: int) -> None:
        workers = [
            threading.Thread(target=self._worker, name=f"chaos-{i}", daemon=True)
            for i in range(threads)
        ]
        for w in workers:
            w.start()
        try:
            for w in workers:
                while w.is_alive():
                    w.join(0.5)  # with a timeout, so that Ctrl-C reaches this thread
        except BaseException:
            self.stopping = True  # the payments begun end on their own (or with the world)
            raise
        if self.errors:
            raise self.errors[0]

    def report(self) -> dict:
        return {"ops": [asdict(o) for o in sorted(self.ops, key=lambda o: o.n)]}
