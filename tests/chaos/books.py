"""The chaos run's books: what everyone holds, to the msat (tests/chaos/driver.py says why the
sum must not move), and the Lightning side's own checks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tests.fedimint.conftest import User

from .driver import WALLET_KINDS, Op
from .world import ChaosWorld

LN_NODES = ("alice", "gateway", "bob")


@dataclass
class Books:
    lightning_msat: dict[str, int]  # node -> its channels' local balances
    users_msat: dict[str, int]
    gateway_msat: dict[str, int]  # federation key -> our e-cash there
    federation_msat: dict[str, int]  # federation key -> net assets without its on-chain module
    pending_htlcs: int
    wallet_msat: dict[str, int] = field(default_factory=dict)  # the on-chain modules, shown only

    @property
    def total_msat(self) -> int:
        parts = (self.lightning_msat, self.users_msat, self.gateway_msat, self.federation_msat)
        return sum(sum(p.values()) for p in parts)

    def diff(self, before: Books) -> dict[str, int]:
        """Each holder's change since `before`."""
        out: dict[str, int] = {}
        for name in ("lightning_msat", "users_msat", "gateway_msat", "federation_msat"):
            now, then = getattr(self, name), getattr(before, name)
            for k in now.keys() | then.keys():
                out[f"{name[:-5]}.{k}"] = now.get(k, 0) - then.get(k, 0)
        return {k: v for k, v in sorted(out.items()) if v}


def _audit(world: ChaosWorld, key: str) -> tuple[int, int]:
    """(net assets without the on-chain module, the on-chain module's) by the federation's
    first guardian that answers (every one audits the same consensus)."""
    fed = world.feds[key]
    for g in fed.guardians:
        try:
            audit = g.call("audit", auth=True, timeout=10)
        except Exception:  # a guardian down: ask the next
            continue
        wallet = sum(
            int(m["net_assets"])
            for m in audit["module_summaries"].values()
            if m["kind"] in WALLET_KINDS
        )
        return int(audit["net_assets"]) - wallet, wallet
    raise RuntimeError(f"no guardian of {key} answers its audit")


def _ours(world: ChaosWorld) -> tuple[dict[str, int], int, dict[str, int], dict[str, tuple]]:
    """What moves without the users: lnd's balances, its pending HTLCs, our e-cash, the audits."""
    ln: dict[str, int] = {}
    htlcs = 0
    for name in LN_NODES:
        channels = world.lnd.node(name).cli("listchannels")["channels"]
        ln[name] = 1000 * sum(int(c["local_balance"]) for c in channels)
        htlcs += sum(len(c.get("pending_htlcs") or []) for c in channels)
    balances = world.gateway.balances()
    gateway = {k: balances.get(f.federation_id, 0) for k, f in world.feds.items()}
    return ln, htlcs, gateway, {k: _audit(world, k) for k in world.feds}


def drive(user: User, patience: float = 20) -> None:
    """Let the user's client run its operations to their end (`dev wait-complete`: the change
    of a payment is issued after the payment) for up to `patience` s. A receive whose invoice
    nobody paid waits for its expiry (a day): no money is in it, so that wait is cut short."""
    try:
        user("dev", "wait-complete", timeout=patience)
    except AssertionError as exc:
        if "no answer" not in str(exc):
            raise


def settled_books(world: ChaosWorld, timeout: float = 180) -> Books:
    """The books once nothing moves: every guardian up and answering; every user's operations
    driven to their end (`drive`; a user's e-cash moves only in its own commands after that);
    then lnd's balances, ours and the audits read again every 2 s until two reads agree and no
    HTLC is pending."""
    for fed in world.feds.values():
        for g in fed.guardians:
            if g.proc is None or not g.proc.alive():
                g.start()
            g.wait_answering(60)
    for cli in world.users.values():
        drive(cli)
    users = {u: int(cli("info")["total_amount_msat"]) for u, cli in world.users.items()}  # type: ignore[index]
    deadline = time.monotonic() + timeout
    last = None
    while True:
        now = _ours(world)
        if now == last and not now[1]:
            ln, htlcs, gateway, audits = now
            fed = {k: a[0] for k, a in audits.items()}
            return Books(ln, users, gateway, fed, htlcs, {k: a[1] for k, a in audits.items()})
        assert time.monotonic() < deadline, f"the books do not settle: {now}"
        last = now
        time.sleep(2)


def _mismatch(ops: list[Op], kind: str, done_by_lnd: set[str], who: str) -> list[str]:
    """The `kind` payments lnd counts done (among those asked) against those settled."""
    settled = {o.invoice_hash for o in ops if o.kind == kind and o.state == "settled"}
    done = done_by_lnd & {o.invoice_hash for o in ops if o.kind == kind}
    return [] if done == settled else [f"{who}: {sorted(done)}; settled {kind}: {sorted(settled)}"]


def lightning_checks(world: ChaosWorld, ops: list[Op]) -> list[str]:
    """What lnd says against what the ops say: bob's settled invoices are exactly the settled
    ln_send ops'; alice's succeeded payments exactly the settled ln_receive ops'. Problems, as
    lines (none: all well)."""
    bob = world.lnd.node("bob").cli("listinvoices", "--max_invoices=100000")["invoices"]
    alice = world.lnd.node("alice").cli("listpayments", "--max_payments=100000")["payments"]
    return _mismatch(
        ops, "ln_send", {i["r_hash"] for i in bob if i["state"] == "SETTLED"}, "bob settled"
    ) + _mismatch(
        ops,
        "ln_receive",
        {p["payment_hash"] for p in alice if p["status"] == "SUCCEEDED"},
        "alice paid",
    )
