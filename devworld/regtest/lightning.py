"""The simulated Lightning network's state: nodes, channels, invoices.

Owns the Lightning tables of the world database and mirrors them in memory (one asyncio loop, so
no locks are needed between awaits). Every balance change goes through `move`, inside a database
transaction, so a restart finds the same balances. Payments and HTLCs are `payments.py`'s.

Invoices are real BOLT11 (`bolt11` package): signed by the node key, payment secret distinct from
the preimage, payment hash = SHA-256(preimage), expiry, min_final_cltv_expiry, route hints. An
invoice built elsewhere can be adopted: signed with the node key and held as a hold invoice (what
a Core Lightning plugin's `signinvoice` needs of a stand-in lightningd).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field

import coincurve
from bolt11 import Bolt11, MilliSatoshi
from bolt11 import decode as bolt11_decode
from bolt11 import encode as bolt11_encode
from bolt11.exceptions import Bolt11Exception
from bolt11.models.features import Feature, Features, FeatureState
from bolt11.models.routehint import Route, RouteHint
from bolt11.models.tags import TagChar, Tags

from . import bitcoin as btc
from .chain import Chain
from .errors import LnError, RpcError
from .store import WorldDB

DEFAULT_MIN_FINAL_CLTV = 18
MAX_CHANNEL_SAT = 16_777_215 * 100  # generous "wumbo" limit for the simulation


def scid_str(scid: int) -> str:
    return f"{scid >> 40}x{(scid >> 16) & 0xFFFFFF}x{scid & 0xFFFF}"


def parse_scid(value: str | int) -> int:
    if isinstance(value, int):
        return value
    if "x" in value:
        block, tx, out = (int(p) for p in value.split("x"))
        return (block << 40) | (tx << 16) | out
    return int(value)


@dataclass
class Policy:
    """How a node forwards out through one of its channels."""

    base_msat: int = 1000
    ppm: int = 1
    cltv_delta: int = 40
    htlc_min_msat: int = 1
    htlc_max_msat: int = 0  # 0 = the channel's capacity
    enabled: bool = True

    def fee(self, amount_msat: int) -> int:
        return self.base_msat + amount_msat * self.ppm // 1_000_000


@dataclass
class Node:
    name: str
    alias: str
    pubkey: str
    privkey: str
    wallet: str
    hold_unknown_scids: bool = False

    def info(self) -> dict:
        return {
            "name": self.name,
            "alias": self.alias,
            "pubkey": self.pubkey,
            "wallet": self.wallet,
            "hold_unknown_scids": self.hold_unknown_scids,
        }


@dataclass
class Channel:
    scid: int
    funding_txid: str
    funding_n: int
    node_a: str
    node_b: str
    capacity_sat: int
    bal_a_msat: int
    bal_b_msat: int
    policy_a: Policy = field(default_factory=Policy)
    policy_b: Policy = field(default_factory=Policy)
    state: str = "active"

    def has(self, node: str) -> bool:
        return node in (self.node_a, self.node_b)

    def peer_of(self, node: str) -> str:
        return self.node_b if node == self.node_a else self.node_a

    def balance_of(self, node: str) -> int:
        return self.bal_a_msat if node == self.node_a else self.bal_b_msat

    def policy_of(self, node: str) -> Policy:
        return self.policy_a if node == self.node_a else self.policy_b

    def max_htlc(self, node: str) -> int:
        return self.policy_of(node).htlc_max_msat or self.capacity_sat * 1000

    def info(self, locked_msat: int = 0) -> dict:
        return {
            "scid": scid_str(self.scid),
            "scid_int": self.scid,
            "funding_txid": self.funding_txid,
            "node_a": self.node_a,
            "node_b": self.node_b,
            "capacity_sat": self.capacity_sat,
            "balance_a_msat": self.bal_a_msat,
            "balance_b_msat": self.bal_b_msat,
            "in_flight_msat": locked_msat,
            "policy_a": asdict(self.policy_a),
            "policy_b": asdict(self.policy_b),
            "state": self.state,
        }


class Network:
    """Nodes, channels and invoices, persisted in the world database."""

    def __init__(self, db: WorldDB, chain: Chain) -> None:
        self.db = db
        self.chain = chain
        self.nodes: dict[str, Node] = {}
        self.by_pubkey: dict[str, Node] = {}
        self.channels: dict[int, Channel] = {}
        for r in db.all("SELECT * FROM ln_nodes ORDER BY created"):
            self._add_node(
                Node(
                    r["name"],
                    r["alias"],
                    r["pubkey"],
                    r["privkey"],
                    r["wallet"],
                    bool(r["hold_unknown_scids"]),
                )
            )
        for r in db.all("SELECT * FROM channels"):
            self.channels[r["scid"]] = Channel(
                r["scid"],
                r["funding_txid"],
                r["funding_n"],
                r["node_a"],
                r["node_b"],
                r["capacity_sat"],
                r["bal_a_msat"],
                r["bal_b_msat"],
                Policy(**json.loads(r["policy_a"])),
                Policy(**json.loads(r["policy_b"])),
                r["state"],
            )

    def _add_node(self, node: Node) -> None:
        self.nodes[node.name] = node
        self.by_pubkey[node.pubkey] = node

    # --- nodes --------------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        node = self.nodes.get(name)
        if node is None:
            raise LnError("unknown_node", f"no node named {name!r}", 404)
        return node

    def create_node(self, name: str, alias: str = "", *, hold_unknown_scids: bool = False) -> Node:
        if not name or len(name) > 32 or not name.replace("-", "").replace("_", "").isalnum():
            raise LnError("invalid_input", "node name: 1-32 letters, digits, '-' or '_'")
        if name in self.nodes:
            raise LnError("node_exists", f"node {name!r} already exists", 409)
        key = coincurve.PrivateKey()
        wallet = f"ln-{name}"
        if not self.chain.wallet_exists(wallet):
            self.chain.create_wallet(wallet)
        node = Node(
            name,
            alias or name,
            key.public_key.format().hex(),
            key.secret.hex(),
            wallet,
            hold_unknown_scids,
        )
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO ln_nodes (name, alias, privkey, pubkey, wallet, hold_unknown_scids, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    node.alias,
                    node.privkey,
                    node.pubkey,
                    wallet,
                    int(hold_unknown_scids),
                    int(time.time() * 1000),
                ),
            )
        self._add_node(node)
        return node

    def set_hold_unknown_scids(self, name: str, hold: bool) -> Node:
        node = self.node(name)
        with self.db.tx() as c:
            c.execute(
                "UPDATE ln_nodes SET hold_unknown_scids = ? WHERE name = ?", (int(hold), name)
            )
        node.hold_unknown_scids = hold
        return node

    def channels_of(self, name: str) -> list[Channel]:
        return [c for c in self.channels.values() if c.has(name)]

    # --- channels -----------------------------------------------------------------------------
    def open_channel(
        self,
        opener: str,
        peer: str,
        capacity_sat: int,
        *,
        push_msat: int = 0,
        policy_opener: Policy | None = None,
        policy_peer: Policy | None = None,
    ) -> Channel:
        """Fund a channel from the opener's on-chain wallet and confirm it in a new block."""
        a, b = self.node(opener), self.node(peer)
        if a.name == b.name:
            raise LnError("invalid_input", "a node cannot open a channel to itself")
        if not isinstance(capacity_sat, int) or not 20_000 <= capacity_sat <= MAX_CHANNEL_SAT:
            raise LnError("invalid_input", f"capacity must be 20000..{MAX_CHANNEL_SAT} sat")
        if not isinstance(push_msat, int) or not 0 <= push_msat <= capacity_sat * 1000:
            raise LnError("invalid_input", "push must be between 0 and the capacity")
        script = b"\x00\x20" + btc.sha256(
            bytes.fromhex(a.pubkey) + bytes.fromhex(b.pubkey) + os.urandom(8)
        )
        try:
            txid = self.chain.send(a.wallet, [(script, capacity_sat)])
        except RpcError as exc:
            raise LnError(
                "insufficient_funds" if exc.code == -6 else "funding_failed",
                f"{a.name}'s wallet cannot fund {capacity_sat} sat: {exc.message}",
                409,
            ) from None
        self.chain.mine(1, self.chain.new_address(a.wallet))
        tx = self.chain.tx(txid)
        assert tx is not None and tx["height"] is not None
        n = next(o["n"] for o in self.chain.txouts(txid) if bytes(o["script"]) == script)
        scid = (tx["height"] << 40) | (tx["pos"] << 16) | n
        ch = Channel(
            scid,
            txid,
            n,
            a.name,
            b.name,
            capacity_sat,
            capacity_sat * 1000 - push_msat,
            push_msat,
            policy_opener or Policy(),
            policy_peer or Policy(),
        )
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO channels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    scid,
                    txid,
                    n,
                    a.name,
                    b.name,
                    capacity_sat,
                    ch.bal_a_msat,
                    ch.bal_b_msat,
                    json.dumps(asdict(ch.policy_a)),
                    json.dumps(asdict(ch.policy_b)),
                    "active",
                    int(time.time() * 1000),
                ),
            )
        self.channels[scid] = ch
        return ch

    def set_policy(self, node: str, scid: int, **changes: int | bool) -> Channel:
        ch = self.channels.get(scid)
        if ch is None or not ch.has(node):
            raise LnError("unknown_channel", f"{node} has no channel {scid_str(scid)}", 404)
        pol = ch.policy_of(node)
        for k, v in changes.items():
            if not hasattr(pol, k) or (k != "enabled" and (not isinstance(v, int) or v < 0)):
                raise LnError("invalid_input", f"bad policy field {k}={v!r}")
            setattr(pol, k, v)
        col = "policy_a" if node == ch.node_a else "policy_b"
        with self.db.tx() as c:
            c.execute(
                f"UPDATE channels SET {col} = ? WHERE scid = ?", (json.dumps(asdict(pol)), scid)
            )
        return ch

    def save_balances(self, ch: Channel) -> None:
        """Persist a channel's balances (call inside the transaction that changed them)."""
        self.db.conn.execute(
            "UPDATE channels SET bal_a_msat = ?, bal_b_msat = ? WHERE scid = ?",
            (ch.bal_a_msat, ch.bal_b_msat, ch.scid),
        )

    def node_balance_msat(self, name: str) -> int:
        return sum(c.balance_of(name) for c in self.channels_of(name))

    # --- invoices -----------------------------------------------------------------------------
    def create_invoice(
        self,
        node_name: str,
        amount_msat: int | None,
        *,
        description: str = "",
        expiry_s: int = 3600,
        preimage: bytes | None = None,
        payment_hash: str | None = None,
        route_hints: list[list[dict]] | None = None,
        min_final_cltv: int = DEFAULT_MIN_FINAL_CLTV,
        description_hash: str | None = None,
    ) -> dict:
        """A signed BOLT11 invoice. Give `payment_hash` alone for a hold invoice."""
        node = self.node(node_name)
        if amount_msat is not None and (not isinstance(amount_msat, int) or amount_msat <= 0):
            raise LnError("invalid_input", "amount_msat must be a positive integer")
        if not isinstance(expiry_s, int) or not 1 <= expiry_s <= 31_536_000:
            raise LnError("invalid_input", "expiry must be 1..31536000 seconds")
        if not isinstance(min_final_cltv, int) or not 9 <= min_final_cltv <= 2016:
            raise LnError("invalid_input", "min_final_cltv must be 9..2016")
        hold = payment_hash is not None
        if hold:
            if preimage is not None:
                raise LnError("invalid_input", "give a preimage or a payment hash, not both")
            try:
                if len(bytes.fromhex(payment_hash)) != 32:
                    raise ValueError
            except ValueError:
                raise LnError("invalid_input", "payment_hash must be 32 bytes of hex") from None
        else:
            preimage = preimage if preimage is not None else os.urandom(32)
            if len(preimage) != 32:
                raise LnError("invalid_input", "preimage must be 32 bytes")
            payment_hash = hashlib.sha256(preimage).hexdigest()
        if self.db.one(
            "SELECT 1 FROM invoices WHERE node = ? AND payment_hash = ?", node.name, payment_hash
        ):
            raise LnError("invoice_exists", "an invoice with this payment hash exists", 409)
        secret = os.urandom(32).hex()
        now = int(time.time())
        tags = Tags()
        tags.add(TagChar.payment_hash, payment_hash)
        tags.add(TagChar.payment_secret, secret)
        if description_hash is not None:
            try:
                if len(bytes.fromhex(description_hash)) != 32:
                    raise ValueError
            except (ValueError, TypeError):
                raise LnError("invalid_input", "description_hash must be 32 bytes of hex") from None
            tags.add(TagChar.description_hash, description_hash)
        else:
            tags.add(TagChar.description, description)
        tags.add(TagChar.expire_time, expiry_s)
        tags.add(TagChar.min_final_cltv_expiry, min_final_cltv)
        tags.add(
            TagChar.features,
            Features.from_feature_list(
                {
                    Feature.var_onion_optin: FeatureState.required,
                    Feature.payment_secret: FeatureState.required,
                }
            ),
        )
        for hint in route_hints or []:
            try:
                routes = [
                    Route(
                        h["pubkey"],
                        scid_str(parse_scid(h["scid"])),
                        int(h["base_msat"]),
                        int(h["ppm"]),
                        int(h["cltv_delta"]),
                    )
                    for h in hint
                ]
            except (KeyError, ValueError, TypeError) as exc:
                raise LnError("invalid_input", f"bad route hint: {exc}") from None
            tags.add(TagChar.route_hint, RouteHint(routes))
        inv = Bolt11(
            currency="bcrt",
            date=now,
            tags=tags,
            amount_msat=MilliSatoshi(amount_msat) if amount_msat else None,
        )
        bolt11 = bolt11_encode(inv, node.privkey)
        pre = preimage.hex() if preimage else None
        values = (node.name, payment_hash, bolt11, pre, secret, amount_msat, description, now)
        return self._store_invoice((*values, expiry_s, min_final_cltv, int(hold)))

    def adopt_invoice(self, node_name: str, bolt11: str) -> dict:
        """Sign an invoice built elsewhere with the node's key (its own signature is ignored, as
        CLN's `signinvoice` does) and hold its HTLCs as a hold invoice: payment hash, payment
        secret, amount, description, date, expiry and min_final_cltv are the invoice's. The same
        invoice again returns the same; another one for a hash in use is `invoice_exists`."""
        node = self.node(node_name)
        try:
            inv = bolt11_decode(bolt11)
            signed = bolt11_encode(inv, node.privkey)  # the recovered payee is not re-encoded
        except (Bolt11Exception, ValueError, TypeError, KeyError, IndexError) as exc:
            raise LnError("invalid_invoice", f"cannot sign invoice: {exc}") from None
        if not inv.is_regtest():
            raise LnError("invalid_invoice", f"invoice is for {inv.currency!r}, not regtest")
        old = self.db.one(
            "SELECT bolt11 FROM invoices WHERE node = ? AND payment_hash = ?",
            node.name,
            inv.payment_hash,
        )
        if old is not None:
            if old["bolt11"] != signed:
                raise LnError("invoice_exists", "an invoice with this payment hash exists", 409)
            return self.invoice(node.name, inv.payment_hash)
        amount = int(inv.amount_msat) if inv.amount_msat else None
        values = (node.name, inv.payment_hash, signed, None, inv.payment_secret, amount)
        return self._store_invoice(
            (*values, inv.description or "", inv.date, inv.expiry, inv.min_final_cltv_expiry, 1)
        )

    def _store_invoice(self, values: tuple) -> dict:
        """Insert an open invoice: (node, payment_hash, bolt11, preimage, payment_secret,
        amount_msat, description, created, expiry, min_final_cltv, hold)."""
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO invoices (node, payment_hash, bolt11, preimage, payment_secret, amount_msat, description,"
                " created, expiry, min_final_cltv, hold, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')",
                values,
            )
        return self.invoice(values[0], values[1])

    def invoice(self, node_name: str, payment_hash: str) -> dict:
        row = self.db.one(
            "SELECT * FROM invoices WHERE node = ? AND payment_hash = ?", node_name, payment_hash
        )
        if row is None:
            raise LnError("unknown_invoice", "no such invoice", 404)
        return self.invoice_json(row)

    @staticmethod
    def invoice_json(row) -> dict:  # type: ignore[no-untyped-def]
        return {
            "node": row["node"],
            "payment_hash": row["payment_hash"],
            "bolt11": row["bolt11"],
            "preimage": row["preimage"],
            "amount_msat": row["amount_msat"],
            "description": row["description"],
            "created": row["created"],
            "expiry": row["expiry"],
            "expires_at": row["created"] + row["expiry"],
            "min_final_cltv": row["min_final_cltv"],
            "state": row["state"],
            "hold": bool(row["hold"]),
            "amount_received_msat": row["amount_received_msat"],
            "settled_at": row["settled_at"],
            "htlc": None
            if row["htlc_chan"] is None
            else {  # the HTLC a hold invoice holds (state accepted)
                "incoming_chan_id": row["htlc_chan"],
                "incoming_htlc_id": row["htlc_id"],
                "incoming_expiry": row["htlc_expiry"],
            },
        }

    def invoices_of(self, node_name: str) -> list[dict]:
        self.node(node_name)
        return [
            self.invoice_json(r)
            for r in self.db.all(
                "SELECT * FROM invoices WHERE node = ? ORDER BY created", node_name
            )
        ]
